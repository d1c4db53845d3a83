import { assert, describe, it } from "@effect/vitest"
import * as Harness from "@zactor/transport/testing/harness"
import { Effect, Fiber } from "effect"
import { afterEach } from "vitest"
import type { RpcError } from "../src/RpcError.ts"
import { Calculator, DivisionByZero, Echo, Relay, waitFor, zmqNode } from "./fixtures.ts"

const fixture = new URL("./fixtures/calculator-node.ts", import.meta.url).pathname
const startNode = (id: string) => Effect.promise(() => Harness.start(fixture, { args: [id] }))
const ask = (process: Harness.FixtureProcess, message: Harness.FixtureMessage, reply: string) =>
  Effect.promise(() => {
    const before = process.messages.length
    process.send(message)
    return process.waitForMessage((m) => m.type === reply && process.messages.indexOf(m) >= before, 10_000)
  })
const metricsOf = (process: Harness.FixtureProcess) =>
  ask(process, { type: "metrics" }, "metrics").pipe(
    Effect.map((m) => m as unknown as { metrics: Record<string, number>; interrupted: Array<string> }),
  )

afterEach(() => Harness.stopAll())

describe("nodes in separate processes", () => {
  it.live("two processes call each other, by service name, both directions", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const child = yield* startNode("child")
        const parent = yield* zmqNode({ id: "parent" })
        yield* parent.serve(Echo, { echo: ({ text }) => Effect.succeed(`parent says ${text}`) })
        const remote = yield* parent.connect(String(child.ready.endpoint))
        assert.strictEqual(remote.info?.id, "child")
        const calculator = parent.client(Calculator)
        assert.strictEqual(yield* calculator.add({ a: 20, b: 22 }), 42)
        const error = yield* Effect.flip(calculator.divide({ a: 1, b: 0 }))
        assert.instanceOf(error, DivisionByZero)
        // The child learned the parent's endpoint from its HELLO and calls back by service name.
        const connected = yield* ask(child, { type: "connect", endpoint: parent.endpoints()[0]! }, "connected")
        assert.strictEqual(connected.id, "parent")
        const echoed = yield* ask(child, { type: "call-echo", text: "hi" }, "echoed")
        assert.strictEqual(echoed.text, "parent says hi")
      }),
    ),
  )

  it.live(
    "three processes: a call relayed through a second node to a third (the relay passes its remaining deadline on)",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const [b, c] = yield* Effect.all([startNode("b"), startNode("c")], { concurrency: 2 })
          yield* ask(b, { type: "connect", endpoint: String(c.ready.endpoint) }, "connected")
          const a = yield* zmqNode({ id: "a" })
          yield* a.connect(String(b.ready.endpoint))
          const relay = a.client(Relay, { endpoint: String(b.ready.endpoint) })
          assert.strictEqual(yield* relay.add({ a: 1, b: 2 }, { headers: { via: "c" } }), 3)
          const cMetrics = yield* metricsOf(c)
          assert.strictEqual(cMetrics.metrics.requestsServed, 1)
        }),
      ),
  )

  it.live("a deadline crosses processes: the caller fails on time and the callee's handler is stopped", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const child = yield* startNode("slow")
        const parent = yield* zmqNode({ id: "impatient" })
        yield* parent.connect(String(child.ready.endpoint))
        const started = Date.now()
        const error = yield* Effect.flip(parent.client(Calculator).sleep({ ms: 5000 }, { timeout: 300 }))
        const elapsed = Date.now() - started
        assert.strictEqual((error as RpcError).code, "deadline_exceeded")
        assert.isAtLeast(elapsed, 290)
        assert.isBelow(elapsed, 1500)
        yield* Effect.promise(() =>
          Harness.waitUntil(
            async () => (await Effect.runPromise(metricsOf(child))).interrupted.length === 1,
            5000,
            "the callee's handler to be interrupted",
            50,
          ),
        )
      }),
    ),
  )

  it.live(
    "a caller frozen mid-call (SIGSTOP): the server stops its handler within the heartbeat bound, a keyed one finishes",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const child = yield* startNode("frozen-caller")
          const parent = yield* zmqNode({ id: "served" })
          const [started, interrupted, finished] = [[] as Array<string>, [] as Array<string>, [] as Array<string>]
          yield* parent.serve(Echo, {
            echo: ({ text }) =>
              Effect.sync(() => started.push(text)).pipe(
                Effect.andThen(Effect.sleep(3000)),
                Effect.andThen(Effect.sync(() => finished.push(text))),
                Effect.as(text),
                Effect.onInterrupt(() => Effect.sync(() => interrupted.push(text))),
              ),
          })
          yield* ask(child, { type: "connect", endpoint: parent.endpoints()[0]! }, "connected")
          child.send({ type: "call-echo", text: "plain" })
          child.send({ type: "call-echo", text: "keyed", key: "k-1" })
          yield* waitFor(() => started.length === 2, 5000, "both calls to start")
          child.freeze()
          const frozenAt = Date.now()
          // Silent past the 1 s heartbeat timeout (pings every 250 ms stop with the process), seen on a 50 ms tick.
          yield* waitFor(() => interrupted.length === 1, 4000, "the plain call's handler to be stopped")
          const stoppedAfterMs = Date.now() - frozenAt
          console.log(`[caller-silent] the plain call's handler was stopped ${stoppedAfterMs} ms after the freeze`)
          assert.deepStrictEqual(interrupted, ["plain"])
          assert.isAtLeast(stoppedAfterMs, 700)
          assert.isBelow(stoppedAfterMs, 2500)
          assert.strictEqual(parent.metrics().requestsAbandoned, 1)
          // The keyed call runs to its end: its outcome waits in the window for the caller's retry.
          yield* waitFor(() => finished.includes("keyed"), 5000, "the keyed call to finish")
          assert.deepStrictEqual(interrupted, ["plain"])
          child.thaw()
        }),
      ),
    20_000,
  )

  it.live("cancelling a call interrupts the handler in the other process", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const child = yield* startNode("cancellable")
        const parent = yield* zmqNode({ id: "canceller" })
        yield* parent.connect(String(child.ready.endpoint))
        const fiber = yield* Effect.forkChild(parent.client(Calculator).sleep({ ms: 10_000 }))
        yield* Effect.promise(() =>
          Harness.waitUntil(
            async () => (await Effect.runPromise(metricsOf(child))).metrics.requestsServed === 1,
            5000,
            "the call to start",
            20,
          ),
        )
        yield* Fiber.interrupt(fiber)
        yield* Effect.promise(() =>
          Harness.waitUntil(
            async () => (await Effect.runPromise(metricsOf(child))).metrics.requestsCancelled === 1,
            5000,
            "the callee to see the cancel",
            20,
          ),
        )
        assert.deepStrictEqual((yield* metricsOf(child)).interrupted, ["Calculator/sleep"])
      }),
    ),
  )

  it.live("a callee killed mid-call fails the call promptly with unavailable, not at the deadline", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const child = yield* startNode("doomed")
        const parent = yield* zmqNode({ id: "survivor" })
        yield* parent.connect(String(child.ready.endpoint))
        const fiber = yield* Effect.forkChild(
          Effect.flip(parent.client(Calculator).sleep({ ms: 30_000 }, { timeout: 60_000 })),
        )
        yield* Effect.promise(() =>
          Harness.waitUntil(
            async () => (await Effect.runPromise(metricsOf(child))).metrics.requestsServed === 1,
            5000,
            "the call to start",
            20,
          ),
        )
        const killedAt = Date.now()
        yield* Effect.promise(() => child.kill())
        const error = yield* Fiber.join(fiber)
        const detectedMs = Date.now() - killedAt
        assert.strictEqual((error as RpcError).code, "unavailable")
        assert.isBelow(detectedMs, 1000)
      }),
    ),
  )
})
