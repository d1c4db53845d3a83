/**
 * Benchmark role `bare-zmq`, server side: the reference use of zeromq.js. A ROUTER answers each request with
 * one ZeroMQ message, read with `for await` and written through an awaited send queue; `addWait` is answered
 * from a `setImmediate` callback (a handler that waits a turn).
 *
 * @since 0.1.0
 */
import * as zmq from "zeromq"
import { awaitedSendQueue, decodeRequest, die, encodeReply, reportToParent, serveControl } from "./harness.ts"

const router = new zmq.Router({ linger: 0 })
await router.bind("tcp://127.0.0.1:*")
const send = awaitedSendQueue((message: [Buffer, Uint8Array]) => router.send(message))

serveControl(undefined)
reportToParent({ type: "ready", endpoint: router.lastEndpoint ?? die(new Error("bound ROUTER has no endpoint")) })

for await (const [routingId, frame] of router) {
  const request = decodeRequest(frame!)
  if (request.method === "addWait") setImmediate(() => send([routingId!, encodeReply(request)]))
  else send([routingId!, encodeReply(request)])
}
