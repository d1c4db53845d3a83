/**
 * Benchmark role `zactor-transport`, server side: the same workload through ZmqTransport. Received batches
 * are handled synchronously, one pass per array (no fiber or Effect per message), and each reply is offered to
 * the inbound peer it came from; the transport coalesces the replies of one event-loop turn.
 *
 * @since 0.1.0
 */
import { ZmqTransport } from "@zactor/transport"
import { Effect, Stream } from "effect"
import { decodeRequest, die, encodeReply, reportToParent, serveControl } from "./harness.ts"

const program = Effect.gen(function* () {
  const transport = yield* ZmqTransport.make()
  const endpoint = yield* transport.bind("tcp://127.0.0.1:*")
  serveControl(undefined)
  reportToParent({ type: "ready", endpoint })
  yield* Stream.runForEachArray(transport.received, (batches) =>
    Effect.sync(() => {
      for (const { peer, payloads } of batches) {
        for (const payload of payloads) {
          const refused = transport.offer(peer.id, encodeReply(decodeRequest(payload)))
          if (refused !== undefined) die(refused)
        }
      }
    }),
  )
}).pipe(Effect.scoped)

Effect.runPromise(program).catch(die)
