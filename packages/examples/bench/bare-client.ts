/**
 * Benchmark role `bare-zmq`, client side: a DEALER connected to the server, one ZeroMQ message per call, an
 * awaited send queue and a `for await` receive loop driving the closed loop.
 *
 * @since 0.1.0
 */
import * as zmq from "zeromq"
import { awaitedSendQueue, ClosedLoop, die, reportToParent, serveControl } from "./harness.ts"

const endpoint = process.argv[2] ?? die(new Error("usage: bare-client.ts <endpoint>"))
const dealer = new zmq.Dealer({ linger: 0 })
dealer.connect(endpoint)
const loop = new ClosedLoop(awaitedSendQueue((payload: Uint8Array) => dealer.send(payload)))

serveControl(loop)
reportToParent({ type: "ready", endpoint })

for await (const [frame] of dealer) loop.onReply(frame!)
