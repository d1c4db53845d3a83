// A subscriber whose consumer stalls under a flood: its SUB pipe fills and libzmq stops reading the connection.
// With ZMTP heartbeats on the PUB/SUB sockets, libzmq 4.3.5 then tears the connection down while input is stopped
// and aborts the whole process ("_input_stopped" or "!_io_error" assertions, libzmq issues #3937, #4767, #4364).
// The transport's PUB/SUB sockets run without ZMTP heartbeats for that reason (internal/zmqSocketOptions.ts):
// this test must not crash, and the subscriber must receive again once its consumer resumes.

import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Stream } from "effect"
import * as ZmqTransport from "../src/ZmqTransport.ts"

describe("subscriber under a flood", () => {
  it.live("survives a consumer that stops reading for 3 s, then receives again", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const options = { receiveHighWaterMark: 10, sendHighWaterMark: 10 }
        const publisher = yield* ZmqTransport.make(options)
        const endpoint = yield* publisher.bindPublisher("tcp://127.0.0.1:*")
        const subscriber = yield* ZmqTransport.make(options)
        yield* subscriber.connectSubscriber(endpoint)
        yield* subscriber.subscribe("flood")
        const payload = new Uint8Array(4096)
        let published = 0
        const flood = yield* Effect.promise(async () => {
          const until = Date.now() + 5000
          while (Date.now() < until) {
            // One payload per turn: one ZeroMQ message each, enough to fill every buffer on the way.
            for (let i = 0; i < 20; i++) {
              await new Promise((resolve) => setImmediate(resolve))
              if (Effect.runSyncExit(publisher.publish("flood", payload))._tag === "Success") published++
            }
          }
        }).pipe(Effect.forkScoped)
        // Nobody reads `published` for 3 s: the receive queue fills, then the SUB pipe, then libzmq stops reading.
        yield* Effect.sleep(3000)
        let received = 0
        const reader = yield* Stream.runForEach(subscriber.published, (batch) =>
          Effect.sync(() => {
            received += batch.payloads.length
          }),
        ).pipe(Effect.forkScoped)
        yield* Fiber.join(flood)
        yield* Effect.sleep(500)
        const afterFlood = received
        for (let i = 0; i < 10; i++) yield* publisher.publish("flood", payload)
        yield* Effect.sleep(500)
        yield* Fiber.interrupt(reader)
        assert.isAbove(published, 1000)
        assert.isAbove(received, 0)
        assert.strictEqual(received - afterFlood, 10)
      }),
    ),
  )
})
