/**
 * Benchmark role `bare-zmq-batch`, client side: zeromq.js used at its best, with none of a framework's work. The
 * calls issued in one microtask turn leave as one ZeroMQ message (a msgpack array of the encoded calls), sent
 * synchronously (`sendTimeout: 0`, no queue). The floor any framework on zeromq.js is measured against.
 *
 * @since 0.1.0
 */
import { pack, unpack } from "msgpackr"
import * as zmq from "zeromq"
import { ClosedLoop, die, reportToParent, serveControl, turnBatcher } from "./harness.ts"

const endpoint = process.argv[2] ?? die(new Error("usage: bare-batch-client.ts <endpoint>"))
const dealer = new zmq.Dealer({ linger: 0, sendTimeout: 0 })
dealer.connect(endpoint)
const loop = new ClosedLoop(turnBatcher((batch) => dealer.send(pack(batch)).catch(die)))

serveControl(loop)
reportToParent({ type: "ready", endpoint })

for await (const [frame] of dealer) {
  for (const reply of unpack(frame!) as Array<Uint8Array>) loop.onReply(reply)
}
