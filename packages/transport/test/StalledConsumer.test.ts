// A consumer that stops taking what DEALER/ROUTER input delivers while a peer goes away. With a libzmq receive limit
// the connection's input stops, and libzmq 4.3.5 aborts the process when that connection then fails a heartbeat or
// its peer closes ("Assertion failed: !_io_error"): these tests crashed their worker before the transport took the
// limit over. They also show what replaces ZeroMQ's back-pressure there: a bound, and counted drops beyond it.
import { assert, describe, it } from "@effect/vitest"
import { Effect, Stream } from "effect"
import * as zmq from "zeromq"
import * as BatchFrame from "../src/BatchFrame.ts"
import type { TransportEvent } from "../src/TransportEvent.ts"
import { waitUntil } from "../src/testing/ProcessHarness.ts"
import * as ZmqTransport from "../src/ZmqTransport.ts"

const wait = (predicate: () => boolean, what: string, timeoutMs = 5000) =>
  Effect.promise(() => waitUntil(predicate, timeoutMs, what))

const sleep = (ms: number) => Effect.promise(() => new Promise((resolve) => setTimeout(resolve, ms)))

/** A batch frame holding one payload: the index of the message. */
const numbered = (i: number): Buffer => {
  const payload = Buffer.alloc(4)
  payload.writeUInt32BE(i)
  return BatchFrame.encode([payload], 0, 1, payload.length, undefined)
}

const SENT = 3000
const HWM = 500
/** The consumer's queue (1,024 batches) plus the receive high-water mark. */
const HELD = 1024 + HWM

/** A plain zeromq.js ROUTER bound to a free loopback port, closed with the scope. */
const boundRouter = (linger: number) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const socket = new zmq.Router({ linger })
      await socket.bind("tcp://127.0.0.1:*")
      return socket
    }),
    (socket) => Effect.sync(() => socket.close()),
  )

/** Records a transport's events. */
const recordEvents = (events: Stream.Stream<TransportEvent>) =>
  Effect.gen(function* () {
    const seen: Array<TransportEvent> = []
    yield* Stream.runForEach(events, (e) => Effect.sync(() => seen.push(e))).pipe(Effect.forkScoped)
    return seen
  })

describe("ZmqTransport with a stalled consumer", () => {
  it.live("a client whose consumer stopped survives its server closing, and reports it", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const router = yield* boundRouter(5000)
        const client = yield* ZmqTransport.make({ receiveHighWaterMark: HWM })
        const events = yield* recordEvents(client.events)
        const peer = yield* client.connect(router.lastEndpoint!)
        yield* client.send(peer.id, Buffer.from("hello"))
        const [routingId] = yield* Effect.promise(() => router.receive())
        // Nobody takes what the client receives.
        for (let i = 0; i < SENT; i++) yield* Effect.promise(() => router.send([routingId!, numbered(i)]))
        yield* wait(() => client.metrics().batchesReceived >= SENT, "the client to read every batch")
        router.close()
        const closedAt = performance.now()
        yield* wait(() => events.some((e) => e._tag === "Disconnected" && e.peer === peer.id), "Disconnected")
        assert.isBelow(performance.now() - closedAt, 1500, "the loss is reported promptly")

        // The first HELD batches wait for the consumer, in order; the rest were dropped, counted, reported once.
        const overloaded = events.filter((e) => e._tag === "InputRejected" && e.reason === "Overloaded")
        assert.strictEqual(overloaded.length, 1)
        assert.strictEqual(client.metrics().rejected, SENT - HELD)
        const taken: Array<number> = []
        for (let batch = client.pollReceived(); batch !== undefined; batch = client.pollReceived()) {
          for (const payload of batch.payloads) taken.push(Buffer.from(payload).readUInt32BE(0))
        }
        assert.deepStrictEqual(
          taken,
          Array.from({ length: HELD }, (_, i) => i),
        )
      }),
    ),
  )

  it.live("a server whose consumer stopped survives a client closing, and serves again once it reads", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const server = yield* ZmqTransport.make({ receiveHighWaterMark: HWM })
        const endpoint = yield* server.bind("tcp://127.0.0.1:*")
        const events = yield* recordEvents(server.events)
        const dealer = new zmq.Dealer({ linger: 5000 })
        dealer.connect(endpoint)
        for (let i = 0; i < SENT; i++) yield* Effect.promise(() => dealer.send(numbered(i)))
        yield* wait(() => server.metrics().batchesReceived >= SENT, "the server to read every batch")
        dealer.close()
        yield* wait(() => events.some((e) => e._tag === "Disconnected"), "the client's disconnect")
        // Past ZMTP's heartbeat timeout (1 s): the moment libzmq aborted at when it had stopped reading.
        yield* sleep(1500)
        assert.strictEqual(server.metrics().rejected, SENT - HELD)

        // The consumer catches up; a new client is served.
        let taken = 0
        for (let batch = server.pollReceived(); batch !== undefined; batch = server.pollReceived()) taken++
        assert.strictEqual(taken, HELD)
        yield* Stream.runForEach(server.received, (r) =>
          Effect.sync(() => {
            for (const p of r.payloads) server.offer(r.peer.id, p)
          }),
        ).pipe(Effect.forkScoped)
        const client = yield* ZmqTransport.make({})
        const received: Array<string> = []
        yield* Stream.runForEach(client.received, (r) =>
          Effect.sync(() => {
            for (const p of r.payloads) received.push(Buffer.from(p).toString())
          }),
        ).pipe(Effect.forkScoped)
        const peer = yield* client.connect(endpoint)
        yield* client.send(peer.id, Buffer.from("after"))
        yield* wait(() => received.includes("after"), "the echo of a new client")
      }),
    ),
  )

  it.live("received batches are bounded in bytes too: a stalled client holds maxReceivedBytes, not 2,024 batches", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const router = yield* boundRouter(0)
        const PAYLOAD = 64 * 1024
        const client = yield* ZmqTransport.make({ maxReceivedBytes: 16 * PAYLOAD })
        const events = yield* recordEvents(client.events)
        const peer = yield* client.connect(router.lastEndpoint!)
        yield* client.send(peer.id, Buffer.from("hello"))
        const [routingId] = yield* Effect.promise(() => router.receive())
        const big = (i: number): Buffer => {
          const payload = Buffer.alloc(PAYLOAD, i & 0xff)
          return BatchFrame.encode([payload], 0, 1, payload.length, undefined)
        }
        const sendBatches = (from: number, count: number) =>
          Effect.promise(async () => {
            for (let i = from; i < from + count; i++) await router.send([routingId!, big(i)])
          })
        yield* sendBatches(0, 100)
        yield* wait(() => client.metrics().batchesReceived >= 100, "the client to read every batch")
        // 16 batches of 64 KiB fill the budget; the other 84 were dropped, counted, and reported once.
        assert.strictEqual(client.metrics().rejected, 84)
        const overloaded = () => events.filter((e) => e._tag === "InputRejected" && e.reason === "Overloaded")
        yield* wait(() => overloaded().length === 1, "the overload report")
        assert.include((overloaded()[0] as { detail: string }).detail, `16 batches (${16 * PAYLOAD} bytes)`)
        const take = () => {
          const firstBytes: Array<number> = []
          for (let batch = client.pollReceived(); batch !== undefined; batch = client.pollReceived()) {
            for (const payload of batch.payloads) firstBytes.push(payload[0]!)
          }
          return firstBytes
        }
        assert.deepStrictEqual(
          take(),
          Array.from({ length: 16 }, (_, i) => i),
        )

        // Once the consumer has caught up the budget is free again; a new overflow is a new report.
        yield* sendBatches(100, 20)
        yield* wait(() => client.metrics().batchesReceived >= 120, "the second burst")
        assert.strictEqual(client.metrics().rejected, 84 + 4)
        yield* wait(() => overloaded().length === 2, "the second overload report")
        assert.deepStrictEqual(
          take(),
          Array.from({ length: 16 }, (_, i) => 100 + i),
        )
      }),
    ),
  )
})
