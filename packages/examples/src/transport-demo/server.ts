/**
 * The demo's server role: binds a ZmqTransport and answers every `add` call it receives with the sum, replying
 * to the peer the call came from. It keeps no state per call, so a restarted server simply carries on.
 *
 * Run alone: `node --conditions=@zactor/source --import tsx src/transport-demo/server.ts [endpoint]`
 * (default `tcp://127.0.0.1:*`, which picks a free port). Under `main.ts` it reports the bound endpoint over IPC.
 *
 * @since 0.1.0
 */
import { ZmqTransport } from "@zactor/transport"
import { Effect, Stream } from "effect"
import { decodeRequest, encodeReply, report, runRole } from "./protocol.ts"

const bindTo = process.argv[2] ?? "tcp://127.0.0.1:*"
let served = 0

const program = Effect.gen(function* () {
  const transport = yield* ZmqTransport.make()
  const endpoint = yield* transport.bind(bindTo)
  if (process.send === undefined) console.log(`server ${process.pid} listening on ${endpoint}`)
  report({ type: "listening", endpoint })
  // One synchronous pass per array of batches: no fiber or Effect per message on the hot path.
  yield* Stream.runForEachArray(transport.received, (batches) =>
    Effect.sync(() => {
      for (const { peer, payloads } of batches) {
        for (const payload of payloads) {
          const request = decodeRequest(payload)
          // A refused reply (client gone, queue full) surfaces as the client's call timeout; nothing to do here.
          transport.offer(peer.id, encodeReply(request.id, request.args[0] + request.args[1]))
          served++
        }
      }
    }),
  )
}).pipe(Effect.ensuring(Effect.sync(() => report({ type: "stopped", served }))), Effect.scoped)

runRole("server", program)
