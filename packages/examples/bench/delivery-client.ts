/**
 * Benchmark role of delivery.bench.ts, client side: a zactor node connected to every server given on the command
 * line. On `{ type: "run", endpoint, mode, concurrency, warmupMs, measureMs }` it keeps `concurrency` calls of
 * `Adder.add` outstanding against that server (one fiber each, calling in a loop, every result checked) for
 * `warmupMs`, then measures for `measureMs`, stops its fibers and reports
 * `{ type: "result", calls, elapsedMs, p50Us, p99Us, cpuUs }` (cpuUs: this process, user + system, while measuring).
 *
 * `mode` is `plain` (the method's default: at most once, no ACK, no key) or `at-least-once` (ACK requested,
 * retried on a lost ACK, and an idempotency key per call, which the server looks up in its dedupe store).
 *
 * @since 0.1.0
 */
import { Node } from "@zactor/core"
import { Effect, Fiber } from "effect"
import { Adder } from "./delivery-contract.ts"

const endpoints = process.argv.slice(2)
const send = (message: Record<string, unknown>) => process.send?.(message)
const fail = (error: unknown): never => {
  console.error(`delivery-client ${process.pid} failed:`, error)
  process.exit(1)
}

interface Run {
  readonly type: "run"
  readonly endpoint: string
  readonly mode: "plain" | "at-least-once"
  readonly concurrency: number
  readonly warmupMs: number
  readonly measureMs: number
}

const percentile = (sorted: Float64Array, p: number): number | undefined =>
  sorted.length === 0 ? undefined : sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(sorted.length * p) - 1))]

const program = Effect.gen(function* () {
  const node = yield* Node.Node
  for (const endpoint of endpoints) yield* node.connect(endpoint)
  let runId = 0

  const run = (command: Run) =>
    Effect.gen(function* () {
      const adder = node.client(Adder, { endpoint: command.endpoint })
      const prefix = `${process.pid}-${++runId}-`
      let next = 0
      let measuring = false
      const latencies: Array<number> = []
      const call =
        command.mode === "plain"
          ? () => adder.add({ a: 1, b: 2 })
          : () => adder.add({ a: 1, b: 2 }, { delivery: "at-least-once", idempotencyKey: prefix + next++ })
      const caller = Effect.gen(function* () {
        for (;;) {
          const startedAt = performance.now()
          if ((yield* call()) !== 3) return yield* Effect.die(new Error("wrong result"))
          if (measuring) latencies.push(performance.now() - startedAt)
        }
      })
      const fibers = yield* Effect.forEach(Array.from({ length: command.concurrency }), () => Effect.forkChild(caller))
      yield* Effect.sleep(command.warmupMs)
      measuring = true
      const cpuBefore = process.cpuUsage()
      const startedAt = performance.now()
      yield* Effect.sleep(command.measureMs)
      measuring = false
      const elapsedMs = performance.now() - startedAt
      const cpu = process.cpuUsage(cpuBefore)
      const calls = latencies.length
      yield* Effect.forEach(fibers, Fiber.interrupt)
      const sorted = Float64Array.from(latencies).sort()
      const p50 = percentile(sorted, 0.5)
      const p99 = percentile(sorted, 0.99)
      send({
        type: "result",
        calls,
        elapsedMs,
        p50Us: p50 === undefined ? undefined : p50 * 1000,
        p99Us: p99 === undefined ? undefined : p99 * 1000,
        cpuUs: cpu.user + cpu.system,
        metrics: node.metrics(),
      })
    })

  process.on("message", (message: Run | { readonly type: "stop" }) => {
    if (message.type === "stop") process.exit(0)
    else if (message.type === "run")
      Effect.runFork(run(message).pipe(Effect.catchCause((cause) => Effect.sync(() => fail(cause)))))
  })
  process.once("disconnect", () => process.exit(0))
  send({ type: "ready" })
  yield* Effect.never
}).pipe(Effect.scoped, Effect.provide(Node.layerZmq({ id: "delivery-client", bind: [] })))

Effect.runPromise(program).catch(fail)
