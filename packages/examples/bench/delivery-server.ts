/**
 * Benchmark role of delivery.bench.ts, server side: a zactor node (default options, ZeroMQ on a free loopback
 * port) serving `Adder`, with the default in-memory dedupe window (`memory`) or a `FileDedupeStore` on a
 * directory (`file <directory> <ttl ms>`).
 *
 * Control (IPC): reports `{ type: "ready", endpoint }`; answers `{ type: "cpu" }` with `{ type: "cpu", cpuUs }`
 * (user + system CPU of the whole process since it started) and `{ type: "stats" }` with the node's counters.
 *
 * @since 0.1.0
 */
import { DedupeStore, FileDedupeStore, Node } from "@zactor/core"
import { Effect, Layer } from "effect"
import { Adder } from "./delivery-contract.ts"

const [store = "memory", directory, ttlMs] = process.argv.slice(2)
const send = (message: Record<string, unknown>) => process.send?.(message)
const fail = (error: unknown): never => {
  console.error(`delivery-server ${process.pid} failed:`, error)
  process.exit(1)
}

const dedupe =
  store === "file"
    ? FileDedupeStore.layer({
        directory: directory ?? fail(new Error("file store without a directory")),
        ttl: Number(ttlMs ?? 5000),
      })
    : Layer.succeed(DedupeStore.DedupeStore, DedupeStore.memory())

const program = Effect.gen(function* () {
  const node = yield* Node.Node
  yield* node.serve(Adder, { add: ({ a, b }) => Effect.succeed(a + b) })
  process.on("message", (message: { type: string }) => {
    if (message.type === "cpu") {
      const cpu = process.cpuUsage()
      send({ type: "cpu", cpuUs: cpu.user + cpu.system })
    } else if (message.type === "stats") send({ type: "stats", metrics: node.metrics() })
    else if (message.type === "stop") process.exit(0)
  })
  process.once("disconnect", () => process.exit(0))
  send({ type: "ready", endpoint: node.endpoints()[0] ?? fail(new Error("no endpoint")) })
  yield* Effect.never
}).pipe(Effect.scoped, Effect.provide(Node.layerZmq({ id: `delivery-server-${store}` }).pipe(Layer.provide(dedupe))))

Effect.runPromise(program).catch(fail)
