/**
 * Benchmark role `bare-zmq-batch`, server side: a ROUTER that answers each batch of calls (a msgpack array) with
 * one ZeroMQ message holding the replies, sent synchronously (`sendTimeout: 0`). `addWait` is answered from a
 * `setImmediate` callback, one message per call.
 *
 * @since 0.1.0
 */
import { pack, unpack } from "msgpackr"
import * as zmq from "zeromq"
import { decodeRequest, die, encodeReply, reportToParent, serveControl } from "./harness.ts"

const router = new zmq.Router({ linger: 0, sendTimeout: 0 })
await router.bind("tcp://127.0.0.1:*")

serveControl(undefined)
reportToParent({ type: "ready", endpoint: router.lastEndpoint ?? die(new Error("bound ROUTER has no endpoint")) })

for await (const [routingId, frame] of router) {
  const replies: Array<Uint8Array> = []
  for (const payload of unpack(frame!) as Array<Uint8Array>) {
    const request = decodeRequest(payload)
    if (request.method === "addWait") {
      setImmediate(() => router.send([routingId!, pack([encodeReply(request)])]).catch(die))
    } else {
      replies.push(encodeReply(request))
    }
  }
  if (replies.length > 0) router.send([routingId!, pack(replies)]).catch(die)
}
