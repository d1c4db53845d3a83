/**
 * Benchmark role `zactor-transport`, client side: `connect` once, `offer` per call, and the closed loop driven
 * synchronously from the `received` stream, one pass per array of batches.
 *
 * @since 0.1.0
 */
import { ZmqTransport } from "@zactor/transport"
import { Effect, Stream } from "effect"
import { ClosedLoop, die, reportToParent, serveControl } from "./harness.ts"

const endpoint = process.argv[2] ?? die(new Error("usage: zactor-client.ts <endpoint>"))

const program = Effect.gen(function* () {
  const transport = yield* ZmqTransport.make()
  const peer = yield* transport.connect(endpoint)
  const loop = new ClosedLoop((payload) => {
    const refused = transport.offer(peer.id, payload)
    if (refused !== undefined) die(refused)
  })
  serveControl(loop)
  reportToParent({ type: "ready", endpoint })
  yield* Stream.runForEachArray(transport.received, (batches) =>
    Effect.sync(() => {
      for (const { payloads } of batches) for (const payload of payloads) loop.onReply(payload)
    }),
  )
}).pipe(Effect.scoped)

Effect.runPromise(program).catch(die)
