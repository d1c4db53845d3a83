/**
 * Benchmark role `zactor-rpc`, client side: a zactor node connected to the server, calling it through the typed
 * client (`node.client(Calculator, { endpoint })`), or asking its actor through a ref (`ask`). The closed loop is
 * `c` fibers, each calling in a loop (`yield* client.add(...)`), so exactly `c` calls are outstanding; every
 * result is checked. Each call goes through everything an application call does: Schema encode of the payload,
 * envelope, deadline timer, correlation, Schema decode of the reply, and resumption of the calling fiber.
 *
 * @since 0.1.0
 */
import { ActorRef, Node } from "@zactor/core"
import { Cause, Effect } from "effect"
import {
  CallRecorder,
  die,
  ECHO_BYTES,
  ECHO_STRING,
  type LoadGenerator,
  reportToParent,
  serveControl,
  transportOptions,
  type Workload,
} from "./harness.ts"
import { ADDER_NAME, Adder, Calculator, SERVER_ID } from "./rpc-contract.ts"

const endpoint = process.argv[2] ?? die(new Error("usage: rpc-client.ts <endpoint> [transport options as JSON]"))
const transport = transportOptions(process.argv[3])

const program = Effect.gen(function* () {
  const node = yield* Node.Node
  yield* node.connect(endpoint)
  const calculator = node.client(Calculator, { endpoint })
  // A ref known by other means (the server's endpoint and id), as for a well-known actor; asks are typed by it.
  const adder = ActorRef.ask(node, ActorRef.make(Adder, { name: ADDER_NAME, node: SERVER_ID, endpoints: [endpoint] }))
  const recorder = new CallRecorder()

  /**
   * The loop a caller runs: one call of the workload at a time, its result checked, as application code would
   * write it (a fresh payload and call effect each time, no wrappers).
   */
  const caller = <A>(call: () => Effect.Effect<A, unknown>, ok: (result: A) => boolean) =>
    Effect.gen(function* () {
      for (;;) {
        const startedAt = performance.now()
        if (!ok(yield* call())) return yield* Effect.die(new Error("wrong result"))
        recorder.record(startedAt)
      }
    })
  const callers: Record<Workload, () => Effect.Effect<void, unknown>> = {
    add: () =>
      caller(
        () => calculator.add({ a: 1, b: 2 }),
        (sum) => sum === 3,
      ),
    "add-wait": () =>
      caller(
        () => calculator.addWait({ a: 1, b: 2 }),
        (sum) => sum === 3,
      ),
    ask: () =>
      caller(
        () => adder.add({ a: 1, b: 2 }),
        (sum) => sum === 3,
      ),
    "echo-str": () =>
      caller(
        () => calculator.echo(ECHO_STRING),
        (text) => text.length === ECHO_STRING.length,
      ),
    "echo-bin": () =>
      caller(
        () => calculator.echoBytes(ECHO_BYTES),
        (bytes) => bytes.length === ECHO_BYTES.length,
      ),
  }

  const generator: LoadGenerator = {
    start: (concurrency, workload) => {
      for (let i = 0; i < concurrency; i++) {
        Effect.runFork(
          callers[workload]().pipe(Effect.catchCause((cause) => Effect.sync(() => die(Cause.pretty(cause))))),
        )
      }
    },
    mark: () => recorder.mark(),
  }
  serveControl(generator, () => ({ ...node.transport.metrics() }))
  reportToParent({ type: "ready", endpoint })
  yield* Effect.never
}).pipe(Effect.scoped, Effect.provide(Node.layerZmq({ id: "bench-client", bind: [], transport })))

Effect.runPromise(program).catch(die)
