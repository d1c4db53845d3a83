/**
 * Benchmark role `zactor-rpc`, server side: a zactor node (default options, ZeroMQ transport on a free loopback
 * port) serving the benchmark's `Calculator` contract with ordinary Effect handlers, and hosting the `Adder` actor
 * (for the `ask` workload). Payloads are decoded and validated, results encoded, by the contracts' Schemas,
 * exactly as in an application.
 *
 * @since 0.1.0
 */
import { Actor, Node } from "@zactor/core"
import { Effect } from "effect"
import { die, reportToParent, serveControl, transportOptions } from "./harness.ts"
import { ADDER_NAME, Adder, Calculator, SERVER_ID } from "./rpc-contract.ts"

/** An actor with state, as actors have: it counts the sums it answered. One message at a time, from its mailbox. */
const AdderActor = Actor.make(Adder, {
  initialState: 0,
  handlers: {
    add: ({ a, b }, ctx) =>
      Effect.sync(() => {
        ctx.setState(ctx.state + 1)
        return a + b
      }),
  },
})

// Optional: transport options as JSON (rpc.bench.ts --max-batch, --early-batch), for experiments.
const transport = transportOptions(process.argv[2])

const program = Effect.gen(function* () {
  const node = yield* Node.Node
  yield* node.serve(Calculator, {
    add: ({ a, b }) => Effect.succeed(a + b),
    addWait: ({ a, b }) => Effect.as(Effect.yieldNow, a + b),
    echo: (text) => Effect.succeed(text),
    echoBytes: (bytes) => Effect.succeed(bytes),
  })
  yield* Actor.spawnOn(node, AdderActor, ADDER_NAME)
  serveControl(undefined, () => ({ ...node.transport.metrics() }))
  reportToParent({ type: "ready", endpoint: node.endpoints()[0] ?? die(new Error("the node bound no endpoint")) })
  yield* Effect.never
}).pipe(Effect.scoped, Effect.provide(Node.layerZmq({ id: SERVER_ID, transport })))

Effect.runPromise(program).catch(die)
