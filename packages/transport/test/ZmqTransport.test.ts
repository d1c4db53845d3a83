import { randomBytes } from "node:crypto"
import { connect as netConnect } from "node:net"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Stream } from "effect"
import * as zmq from "zeromq"
import * as BatchFrame from "../src/BatchFrame.ts"
import * as Peer from "../src/Peer.ts"
import type { TransportShape } from "../src/Transport.ts"
import type { TransportEvent } from "../src/TransportEvent.ts"
import type { TransportOptions } from "../src/TransportOptions.ts"
import { waitUntil } from "../src/testing/ProcessHarness.ts"
import * as ZmqTransport from "../src/ZmqTransport.ts"

/** A bound echo server plus recorders of its events. */
const echoServer = (options: TransportOptions = {}) =>
  Effect.gen(function* () {
    const server = yield* ZmqTransport.make(options)
    const endpoint = yield* server.bind("tcp://127.0.0.1:*")
    const events: Array<TransportEvent> = []
    yield* Stream.runForEach(server.events, (e) => Effect.sync(() => events.push(e))).pipe(Effect.forkScoped)
    yield* Stream.runForEach(server.received, (r) =>
      Effect.sync(() => {
        for (const p of r.payloads) server.offer(r.peer.id, p)
      }),
    ).pipe(Effect.forkScoped)
    return { server, endpoint, events }
  })

/** A client that records the payloads it receives as strings. */
const recordingClient = (transport: TransportShape) =>
  Effect.gen(function* () {
    const received: Array<string> = []
    yield* Stream.runForEach(transport.received, (r) =>
      Effect.sync(() => {
        for (const p of r.payloads) received.push(Buffer.from(p).toString())
      }),
    ).pipe(Effect.forkScoped)
    return received
  })

const wait = (predicate: () => boolean, what: string, timeoutMs = 5000) =>
  Effect.promise(() => waitUntil(predicate, timeoutMs, what))

/** A raw zeromq DEALER for sending hand-made (bad) frames. */
const rawDealer = (endpoint: string) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const socket = new zmq.Dealer({ linger: 0 })
      socket.connect(endpoint)
      return socket
    }),
    (socket) => Effect.sync(() => socket.close()),
  )

/** Proves the server still serves a well-behaved client. */
const assertStillServes = (endpoint: string) =>
  Effect.gen(function* () {
    const client = yield* ZmqTransport.make({})
    const received = yield* recordingClient(client)
    const peer = yield* client.connect(endpoint)
    yield* client.send(peer.id, Buffer.from("healthy"))
    yield* wait(() => received.includes("healthy"), "the server to answer a good client")
  })

describe("ZmqTransport bad input", () => {
  it.live("rejects garbage, unknown versions, overruns and extra frames, counts them, and keeps serving", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { server, endpoint, events } = yield* echoServer()
        const raw = yield* rawDealer(endpoint)
        yield* Effect.promise(() => raw.send(Buffer.from([0xff, 0xfe, 0xfd])))
        yield* Effect.promise(() => raw.send(Buffer.from([9, 0, 0, 0, 0, 1, 65])))
        yield* Effect.promise(() => raw.send(Buffer.from([1, 0, 0, 0, 0, 99, 65])))
        yield* Effect.promise(() => raw.send([Buffer.from([1, 0, 0, 0, 0, 1, 65]), Buffer.from("extra")]))
        yield* Effect.promise(() => raw.send(Buffer.from([1, 0x80, 0, 0, 0, 1, 65])))
        yield* wait(() => server.metrics().rejected === 5, "five rejections")
        const reasons = events.flatMap((e) => (e._tag === "InputRejected" ? [e.reason] : []))
        assert.deepStrictEqual(reasons.sort(), [
          "Malformed",
          "Malformed",
          "Malformed",
          "Malformed",
          "UnsupportedVersion",
        ])
        yield* assertStillServes(endpoint)
      }),
    ),
  )

  it.live("rejects a payload above maxMessageBytes on receive and on send", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { server, endpoint, events } = yield* echoServer({ maxMessageBytes: 1024, maxFrameBytes: 64 * 1024 })
        const raw = yield* rawDealer(endpoint)
        const big = new Uint8Array(2048)
        yield* Effect.promise(() => raw.send(BatchFrame.encode([big], 0, 1, big.length, undefined)))
        yield* wait(() => events.some((e) => e._tag === "InputRejected" && e.reason === "TooLarge"), "TooLarge")
        const error = yield* Effect.flip(server.send(Peer.makeId("outbound", "any"), big))
        assert.strictEqual(error.reason, "MessageTooLarge")
        yield* assertStillServes(endpoint)
      }),
    ),
  )

  it.live("drops a connection whose frame exceeds maxFrameBytes without growing memory or crashing", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { endpoint } = yield* echoServer({ maxMessageBytes: 1024, maxFrameBytes: 4096 })
        const raw = yield* rawDealer(endpoint)
        yield* Effect.promise(() => raw.send(Buffer.alloc(1024 * 1024)))
        yield* assertStillServes(endpoint)
      }),
    ),
  )

  it.live("survives random bytes and an HTTP request on its TCP port", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { endpoint } = yield* echoServer()
        const port = Number(endpoint.split(":").pop())
        for (const junk of [randomBytes(4096), Buffer.from("GET / HTTP/1.1\r\nHost: x\r\n\r\n")]) {
          yield* Effect.promise(
            () =>
              new Promise<void>((resolve) => {
                const socket = netConnect(port, "127.0.0.1", () => socket.write(junk))
                // ZeroMQ drops most garbage at once; a connection it keeps waiting is closed by us after 1 s.
                const timer = setTimeout(() => socket.destroy(), 1000)
                socket.on("close", () => {
                  clearTimeout(timer)
                  resolve()
                })
                socket.on("error", () => {})
              }),
          )
        }
        yield* assertStillServes(endpoint)
      }),
    ),
  )
})

describe("ZmqTransport connections", () => {
  it.live("binding an endpoint in use fails with BindFailed", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { endpoint } = yield* echoServer()
        const other = yield* ZmqTransport.make({})
        const error = yield* Effect.flip(other.bind(endpoint))
        assert.strictEqual(error.reason, "BindFailed")
      }),
    ),
  )

  it.live("reports ConnectRetried while nobody listens, then Connected once a server binds", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const probe = new zmq.Router()
        yield* Effect.promise(() => probe.bind("tcp://127.0.0.1:*"))
        const endpoint = probe.lastEndpoint!
        probe.close()
        // Retries at most 200 ms apart: with the default backoff (up to 5 s) a slow start of the test can leave the
        // client waiting seconds for its next attempt after the server binds.
        const client = yield* ZmqTransport.make({ reconnectIntervalMax: "200 millis" })
        const events: Array<TransportEvent> = []
        yield* Stream.runForEach(client.events, (e) => Effect.sync(() => events.push(e))).pipe(Effect.forkScoped)
        const received = yield* recordingClient(client)
        const peer = yield* client.connect(endpoint)
        yield* client.send(peer.id, Buffer.from("early"))
        yield* wait(() => events.some((e) => e._tag === "ConnectRetried"), "ConnectRetried")
        const server = yield* ZmqTransport.make({})
        yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 50)))
        yield* server.bind(endpoint)
        yield* Stream.runForEach(server.received, (r) =>
          Effect.sync(() => {
            for (const p of r.payloads) server.offer(r.peer.id, p)
          }),
        ).pipe(Effect.forkScoped)
        yield* wait(() => received.includes("early"), "the early payload after the server came up")
        // Connection events come from the monitor socket, which may be read after the payload's answer.
        yield* wait(() => events.some((e) => e._tag === "Connected" && e.peer === peer.id), "Connected")
      }),
    ),
  )

  it.live("a peer that stops reading gets Overloaded on send, bounded, without blocking the event loop", () =>
    Effect.scoped(
      Effect.gen(function* () {
        // A raw ROUTER that never reads: its receive HWM fills, then ours, then the outbox.
        const sink = new zmq.Router({ receiveHighWaterMark: 1, linger: 0 })
        yield* Effect.addFinalizer(() => Effect.sync(() => sink.close()))
        yield* Effect.promise(() => sink.bind("tcp://127.0.0.1:*"))
        const client = yield* ZmqTransport.make({
          sendHighWaterMark: 1,
          maxQueuedMessages: 200,
          maxBatchMessages: 1,
          sendTimeout: 60_000,
        })
        const peer = yield* client.connect(sink.lastEndpoint!)
        const payload = Buffer.alloc(64 * 1024)
        let overloaded = 0
        let lagMs = 0
        for (let round = 0; round < 200 && overloaded === 0; round++) {
          for (let i = 0; i < 50; i++) {
            const error = client.offer(peer.id, payload)
            if (error?.reason === "Overloaded") overloaded++
          }
          const before = performance.now()
          yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 1)))
          lagMs = Math.max(lagMs, performance.now() - before)
        }
        assert.isAbove(overloaded, 0)
        assert.isAtMost(client.metrics().queuedMessages, 200)
        assert.isAbove(client.metrics().overloaded, 0)
        assert.isBelow(lagMs, 200, "the event loop stays responsive")
      }),
    ),
  )

  it.live("drops what waited sendTimeout for an unreachable peer and reports it", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const client = yield* ZmqTransport.make({ sendTimeout: 200 })
        const events: Array<TransportEvent> = []
        yield* Stream.runForEach(client.events, (e) => Effect.sync(() => events.push(e))).pipe(Effect.forkScoped)
        const peer = yield* client.connect("tcp://127.0.0.1:9")
        for (let i = 0; i < 10; i++) yield* client.send(peer.id, Buffer.from(`m${i}`))
        yield* wait(() => events.some((e) => e._tag === "SendFailed"), "SendFailed")
        const failed = events.find((e) => e._tag === "SendFailed")
        assert.deepStrictEqual(failed, { _tag: "SendFailed", peer: peer.id, messages: 10, reason: "Timeout" })
        assert.strictEqual(client.metrics().sendFailed, 10)
        assert.strictEqual(client.metrics().queuedMessages, 0)
      }),
    ),
  )
})
