/**
 * Benchmark role `zactor-transport`, client side: `connect` once, `offer` per call, and the closed loop driven
 * synchronously from the transport's poll/await pull API.
 *
 * @since 0.1.0
 */
import { ZmqTransport } from "@zactor/transport"
import { Effect } from "effect"
import { ClosedLoop, die, reportToParent, serveControl, transportOptions } from "./harness.ts"

const endpoint = process.argv[2] ?? die(new Error("usage: zactor-client.ts <endpoint> [transport options as JSON]"))

const program = Effect.gen(function* () {
  const transport = yield* ZmqTransport.make(transportOptions(process.argv[3]))
  const peer = yield* transport.connect(endpoint)
  const loop = new ClosedLoop((payload) => {
    const refused = transport.offer(peer.id, payload)
    if (refused !== undefined) die(refused)
  })
  serveControl(loop, () => ({ ...transport.metrics() }))
  reportToParent({ type: "ready", endpoint })
  // The hot-path pull API: drain what is waiting, then wait once (a microtask wake-up, no scheduler turn).
  yield* Effect.promise(async () => {
    for (;;) {
      let received = transport.pollReceived()
      while (received !== undefined) {
        for (const payload of received.payloads) loop.onReply(payload)
        received = transport.pollReceived()
      }
      if (!(await transport.awaitReceived())) return
    }
  })
}).pipe(Effect.scoped)

Effect.runPromise(program).catch(die)
