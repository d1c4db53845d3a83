// A connection reported lost while the peer's answer is already received but not yet handled: the node answers
// the call with it, and fails only what got no answer. Monitor events and messages arrive on different sockets,
// so a disconnect can be read first; the transport is wrapped here to put them in exactly that order.

import { assert, describe, it } from "@effect/vitest"
import {
  MemoryNetwork,
  MemoryTransport,
  type Peer,
  type Received,
  Transport,
  type TransportEvent,
} from "@zactor/transport"
import { Effect, Fiber, Queue, Stream } from "effect"
import * as Node from "../src/Node.ts"
import { RpcError } from "../src/RpcError.ts"
import { Calculator, waitFor } from "./fixtures.ts"

describe("a disconnect reported after an answer arrived", () => {
  it.live("the call gets its answer; calls without one fail unavailable", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const network = MemoryNetwork.makeUnsafe()
        const server = yield* Node.make({ id: "server" }).pipe(
          Effect.provideServiceEffect(Transport, MemoryTransport.make({ network })),
        )
        yield* server.serve(Calculator, {
          add: ({ a, b }) => Effect.succeed(a + b),
          divide: ({ a, b }) => Effect.succeed(a / b),
          sleep: ({ ms }) => Effect.as(Effect.sleep(ms), "slept"),
        })

        // The client's transport, holding back what it receives while `holding`, with events of the test's own.
        const inner = yield* MemoryTransport.make({ network })
        const held: Array<Received> = []
        let holding = false
        const extraEvents = yield* Queue.unbounded<TransportEvent.TransportEvent>()
        const peerIds = new Map<string, Peer.PeerId>()
        const wrapped: Transport["Service"] = {
          ...inner,
          connect: (endpoint, options) =>
            Effect.tap(inner.connect(endpoint, options), (peer) => Effect.sync(() => peerIds.set(endpoint, peer.id))),
          pollReceived: () => {
            if (!holding) return held.shift() ?? inner.pollReceived()
            for (let r = inner.pollReceived(); r !== undefined; r = inner.pollReceived()) held.push(r)
            return undefined
          },
          events: Stream.merge(inner.events, Stream.fromQueue(extraEvents)),
        }
        const client = yield* Node.make({ id: "client" }).pipe(Effect.provideService(Transport, wrapped))
        const remote = yield* client.connect(server.endpoints()[0]!)
        const calculator = client.client(Calculator)
        assert.strictEqual(yield* calculator.add({ a: 1, b: 1 }), 2)

        holding = true
        const answered = yield* Effect.forkChild(calculator.add({ a: 2, b: 3 }))
        const unanswered = yield* Effect.forkChild(calculator.sleep({ ms: 5000 }))
        yield* waitFor(() => held.length > 0, 2000, "the answer to reach the client")
        holding = false
        // The disconnect is read first; the answer waits in the receive buffer, not yet handled.
        const peer = peerIds.get(remote.endpoint)
        yield* Queue.offer(extraEvents, { _tag: "Disconnected", peer, endpoint: remote.endpoint })

        assert.strictEqual(yield* Fiber.join(answered), 5)
        const lost = yield* Effect.flip(Fiber.join(unanswered))
        assert.isTrue(RpcError.is(lost) && lost.code === "unavailable", String(lost))
      }),
    ),
  )
})
