/**
 * Benchmark role `zactor-transport`, server side: the same workload through ZmqTransport. Received batches
 * are handled synchronously, one pass per array (no fiber or Effect per message), and each reply is offered to
 * the inbound peer it came from; the transport coalesces the replies of one event-loop turn.
 *
 * @since 0.1.0
 */
import { ZmqTransport } from "@zactor/transport"
import { Effect } from "effect"
import { decodeRequest, die, encodeReply, reportToParent, serveControl, transportOptions } from "./harness.ts"

const program = Effect.gen(function* () {
  const transport = yield* ZmqTransport.make(transportOptions(process.argv[2]))
  const endpoint = yield* transport.bind("tcp://127.0.0.1:*")
  serveControl(undefined, () => ({ ...transport.metrics() }))
  reportToParent({ type: "ready", endpoint })
  yield* Effect.promise(async () => {
    for (;;) {
      let received = transport.pollReceived()
      while (received !== undefined) {
        for (const payload of received.payloads) {
          const refused = transport.offer(received.peer.id, encodeReply(decodeRequest(payload)))
          if (refused !== undefined) die(refused)
        }
        received = transport.pollReceived()
      }
      if (!(await transport.awaitReceived())) return
    }
  })
}).pipe(Effect.scoped)

Effect.runPromise(program).catch(die)
