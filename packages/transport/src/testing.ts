/**
 * The transport conformance suite: one vitest suite that every Transport implementation runs (the memory
 * transport, and ZeroMQ over tcp, ipc and inproc), so that upper layers tested on one can trust the others.
 * It checks the contract stated on `TransportShape`: round trips, bind and endpoint errors, send timeouts,
 * per-peer ordering, batching, size and queue limits, close, isolation between peers, PUB/SUB, reconnect and
 * CURVE admission.
 *
 * It owns no implementation and makes no assumption about one: every wait is a condition with a deadline (real
 * time, `it.live`, since implementations may use real timers), never a sleep that hopes something happened.
 * It does not check monitor-only details (`Connected`, `Accepted`) that some ZeroMQ transports do not report.
 *
 * @since 0.1.0
 */
import { assert, describe, it } from "@effect/vitest"
import { Clock, Duration, Effect, Fiber, type Scope, Stream } from "effect"
import * as Curve from "./Curve.ts"
import * as Peer from "./Peer.ts"
import type { Published, Received, TransportShape } from "./Transport.ts"
import type { TransportError } from "./TransportError.ts"
import type { TransportEvent } from "./TransportEvent.ts"
import type { TransportOptions } from "./TransportOptions.ts"

/**
 * An implementation under test.
 *
 * @since 0.1.0
 */
export interface ConformanceTarget {
  /** Builds a transport; it must close when the scope closes. */
  readonly make: (options?: TransportOptions) => Effect.Effect<TransportShape, TransportError, Scope.Scope>
  /** A fresh bindable endpoint, e.g. `tcp://127.0.0.1:*`, a unique ipc path or a unique inproc name. */
  readonly endpoint: () => string
  /** Whether the CURVE cases run (`options.curve`, `ConnectOptions.serverPublicKey`). */
  readonly supportsCurve: boolean
  /** Whether the PUB/SUB cases run. Default: true. */
  readonly supportsPubSub?: boolean | undefined
  /** Whether an outbound peer reconnects to an endpoint that is bound again after its server closed. Default: true. */
  readonly supportsReconnect?: boolean | undefined
  /**
   * Wraps every case, e.g. to give it a fresh in-process network (see `test/Conformance.memory.test.ts`, which
   * provides a new `MemoryNetwork.Current` per case). Default: none.
   */
  readonly around?: <A, E>(test: Effect.Effect<A, E, Scope.Scope>) => Effect.Effect<A, E, Scope.Scope>
}

// ---- helpers ---------------------------------------------------------------------------------------------

/** How long any single condition may take before the case fails. */
const DEADLINE = Duration.seconds(5)

const encoder = new TextEncoder()
const decoder = new TextDecoder()
const bytes = (text: string): Uint8Array => encoder.encode(text)
const text = (payload: Uint8Array): string => decoder.decode(payload)

const u32 = (n: number): Uint8Array => {
  const payload = new Uint8Array(4)
  new DataView(payload.buffer).setUint32(0, n)
  return payload
}
const readU32 = (payload: Uint8Array): number => new DataView(payload.buffer, payload.byteOffset, 4).getUint32(0)

/** Fails the case (as a defect, so it never mixes with the errors under test) unless `effect` ends in time. */
const within = <A, E, R>(what: string, effect: Effect.Effect<A, E, R>, duration: Duration.Input = DEADLINE) =>
  Effect.timeoutOrElse(effect, {
    duration,
    orElse: () =>
      Effect.die(new Error(`timed out after ${Duration.format(Duration.fromInputUnsafe(duration))}: ${what}`)),
  })

/** Waits until `condition` holds, checking every few milliseconds, or fails the case at the deadline. */
const waitUntil = (what: string, condition: () => boolean, duration: Duration.Input = DEADLINE) =>
  within(
    what,
    Effect.gen(function* () {
      while (!condition()) yield* Effect.sleep(Duration.millis(5))
    }),
    duration,
  )

/** Lets the event loop run a macrotask, so that what follows happens in a later turn. */
const nextTurn = Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))

/** Everything a stream emits, collected by a fiber of the case's scope; `fiber` ends when the stream ends. */
interface Collector<A> {
  readonly items: Array<A>
  readonly fiber: Fiber.Fiber<void>
}

const collect = <A>(stream: Stream.Stream<A>): Effect.Effect<Collector<A>, never, Scope.Scope> =>
  Effect.gen(function* () {
    const items: Array<A> = []
    const fiber = yield* Effect.forkScoped(
      Stream.runForEach(stream, (item) => Effect.sync(() => void items.push(item))),
    )
    // The forked fiber subscribes when it first runs; yielding lets it do so before the case goes on.
    yield* Effect.yieldNow
    yield* Effect.yieldNow
    return { items, fiber }
  })

const payloadsOf = (received: ReadonlyArray<Received>): Array<Uint8Array> => received.flatMap((r) => r.payloads)
const textsOf = (received: ReadonlyArray<Received>): Array<string> => payloadsOf(received).map(text)
const topicsOf = (published: ReadonlyArray<Published>): Array<string> =>
  published.flatMap((p) => p.payloads.map((payload) => `${p.topic}=${text(payload)}`))

const eventsTagged = <T extends TransportEvent["_tag"]>(events: ReadonlyArray<TransportEvent>, tag: T) =>
  events.filter((event): event is Extract<TransportEvent, { _tag: T }> => event._tag === tag)

// ---- the suite -------------------------------------------------------------------------------------------

/**
 * Registers the conformance suite for one implementation as a vitest `describe` block named `name`.
 *
 * @example
 * ```ts
 * import { ZmqTransport } from "@zactor/transport"
 * import { transportConformance } from "@zactor/transport/testing"
 *
 * transportConformance("zmq tcp", { make: ZmqTransport.make, endpoint: () => "tcp://127.0.0.1:*", supportsCurve: true })
 * ```
 *
 * @since 0.1.0
 */
export const transportConformance = (name: string, impl: ConformanceTarget): void => {
  const around = impl.around ?? (<A, E>(test: Effect.Effect<A, E, Scope.Scope>) => test)
  const test = <A, E>(title: string, body: () => Effect.Effect<A, E, Scope.Scope>, runIf = true) =>
    it.live.runIf(runIf)(title, () => around(Effect.suspend(body)))

  /** A concrete endpoint nobody listens on: bound once (so it is valid for the implementation), then released. */
  const vacantEndpoint = Effect.scoped(
    Effect.gen(function* () {
      const holder = yield* impl.make()
      const endpoint = yield* holder.bind(impl.endpoint())
      yield* holder.close
      return endpoint
    }),
  )

  /** A server and a client with a live connection (one payload went through). */
  const connectedPair = (serverOptions?: TransportOptions, clientOptions?: TransportOptions) =>
    Effect.gen(function* () {
      const server = yield* impl.make(serverOptions)
      const client = yield* impl.make(clientOptions)
      const serverIn = yield* collect(server.received)
      const endpoint = yield* server.bind(impl.endpoint())
      const peer = yield* client.connect(endpoint)
      yield* client.send(peer.id, bytes("hello"))
      yield* waitUntil("the first payload reaches the server", () => serverIn.items.length > 0)
      return { server, client, serverIn, endpoint, peer }
    })

  describe(`transport conformance: ${name}`, () => {
    test("round trip: client to server, server replies to the inbound peer", () =>
      Effect.gen(function* () {
        const server = yield* impl.make()
        const client = yield* impl.make()
        const serverIn = yield* collect(server.received)
        const clientIn = yield* collect(client.received)
        const endpoint = yield* server.bind(impl.endpoint())
        assert.include(server.endpoints(), endpoint)
        const peer = yield* client.connect(endpoint)
        assert.strictEqual(peer.direction, "outbound")
        assert.strictEqual((yield* client.connect(endpoint)).id, peer.id, "connecting twice returns the same peer")

        yield* client.send(peer.id, bytes("ping"))
        yield* waitUntil("the server receives ping", () => serverIn.items.length > 0)
        const from = serverIn.items[0]!.peer
        assert.strictEqual(from.direction, "inbound")
        assert.isTrue(Peer.isInbound(from.id))
        assert.deepStrictEqual(textsOf(serverIn.items), ["ping"])

        yield* server.send(from.id, bytes("pong"))
        yield* waitUntil("the client receives pong", () => clientIn.items.length > 0)
        assert.strictEqual(clientIn.items[0]!.peer.id, peer.id)
        assert.deepStrictEqual(textsOf(clientIn.items), ["pong"])
        assert.isAtLeast(client.metrics().messagesSent, 1)
        assert.isAtLeast(server.metrics().messagesReceived, 1)
      }))

    test("binding an endpoint that is already bound fails with BindFailed", () =>
      Effect.gen(function* () {
        const first = yield* impl.make()
        const second = yield* impl.make()
        const endpoint = yield* first.bind(impl.endpoint())
        const error = yield* Effect.flip(second.bind(endpoint))
        assert.strictEqual(error.reason, "BindFailed")
        assert.strictEqual((yield* Effect.flip(first.bind(endpoint))).reason, "BindFailed")
      }))

    test("malformed endpoints fail with InvalidEndpoint", () =>
      Effect.gen(function* () {
        const transport = yield* impl.make()
        const invalid = ["udp://x:1", "tcp://host:notaport", "tcp://1.2.3.4:99999", "inproc://", "ipc://", "nonsense"]
        for (const endpoint of invalid) {
          assert.strictEqual((yield* Effect.flip(transport.bind(endpoint))).reason, "InvalidEndpoint", endpoint)
          assert.strictEqual((yield* Effect.flip(transport.connect(endpoint))).reason, "InvalidEndpoint", endpoint)
          if (impl.supportsPubSub !== false) {
            assert.strictEqual((yield* Effect.flip(transport.bindPublisher(endpoint))).reason, "InvalidEndpoint")
            assert.strictEqual((yield* Effect.flip(transport.connectSubscriber(endpoint))).reason, "InvalidEndpoint")
          }
        }
      }))

    test("payloads to an endpoint nobody listens on are queued, then dropped with SendFailed Timeout", () =>
      Effect.gen(function* () {
        const client = yield* impl.make({ sendTimeout: Duration.millis(300) })
        const events = yield* collect(client.events)
        const peer = yield* client.connect(yield* vacantEndpoint)
        const start = yield* Clock.currentTimeMillis
        for (let i = 0; i < 3; i++) yield* client.send(peer.id, bytes(`lost-${i}`))
        const failed = () =>
          eventsTagged(events.items, "SendFailed").filter(
            (event) => event.peer === peer.id && event.reason === "Timeout",
          )
        const dropped = () => failed().reduce((sum, event) => sum + event.messages, 0)
        yield* waitUntil("SendFailed Timeout for the three payloads", () => dropped() === 3)
        const elapsed = (yield* Clock.currentTimeMillis) - start
        assert.isAtLeast(elapsed, 250, "payloads are dropped only after sendTimeout")
        assert.strictEqual(client.metrics().sendFailed, 3)
        assert.strictEqual(client.metrics().queuedMessages, 0)
      }))

    test("per-peer ordering: 5,000 payloads in one burst, then 5,000 across turns", () =>
      Effect.gen(function* () {
        const { client, serverIn, peer } = yield* connectedPair()
        const total = 10_000
        yield* Effect.sync(() => {
          for (let i = 0; i < 5_000; i++) assert.isUndefined(client.offer(peer.id, u32(i)))
        })
        for (let i = 5_000; i < total; i++) {
          yield* client.send(peer.id, u32(i))
          if (i % 250 === 0) yield* nextTurn
        }
        const received = () => payloadsOf(serverIn.items).length - 1 // minus "hello"
        yield* waitUntil(`the server receives ${total} payloads`, () => received() === total, Duration.seconds(10))
        const order = payloadsOf(serverIn.items).slice(1).map(readU32)
        const firstOutOfOrder = order.findIndex((n, index) => n !== index)
        assert.strictEqual(firstOutOfOrder, -1, `payload ${firstOutOfOrder} arrived out of order`)
      }))

    test("payloads sent in one turn arrive batched", () =>
      Effect.gen(function* () {
        const { client, serverIn, peer } = yield* connectedPair()
        const before = serverIn.items.length
        yield* Effect.sync(() => {
          for (let i = 0; i < 100; i++) assert.isUndefined(client.offer(peer.id, bytes(`b-${i}`)))
        })
        yield* waitUntil(
          "the server receives 100 payloads",
          () => payloadsOf(serverIn.items.slice(before)).length === 100,
        )
        const batches = serverIn.items.slice(before)
        assert.isBelow(batches.length, 100, "one turn's payloads travel in fewer messages than payloads")
        assert.isTrue(batches.some((batch) => batch.payloads.length > 1))
        assert.deepStrictEqual(
          textsOf(batches),
          Array.from({ length: 100 }, (_, i) => `b-${i}`),
        )
      }))

    test("a payload larger than maxMessageBytes is refused with MessageTooLarge", () =>
      Effect.gen(function* () {
        const client = yield* impl.make({ maxMessageBytes: 1024 })
        const peer = yield* client.connect(yield* vacantEndpoint)
        assert.strictEqual((yield* Effect.flip(client.send(peer.id, new Uint8Array(1025)))).reason, "MessageTooLarge")
        assert.strictEqual(client.offer(peer.id, new Uint8Array(1025))?.reason, "MessageTooLarge")
        yield* client.send(peer.id, new Uint8Array(1024))
        if (impl.supportsPubSub !== false) {
          assert.strictEqual((yield* Effect.flip(client.publish("t", new Uint8Array(1025)))).reason, "MessageTooLarge")
        }
      }))

    test("a receiver rejects payloads above its own maxMessageBytes and keeps serving the peer", () =>
      Effect.gen(function* () {
        const { server, client, serverIn, peer } = yield* connectedPair({ maxMessageBytes: 1024 })
        const events = yield* collect(server.events)
        yield* client.send(peer.id, new Uint8Array(2048))
        yield* waitUntil("the server rejects the large payload", () => server.metrics().rejected > 0)
        assert.isTrue(eventsTagged(events.items, "InputRejected").some((event) => event.reason === "TooLarge"))
        yield* nextTurn
        yield* client.send(peer.id, bytes("after"))
        yield* waitUntil("a later payload still arrives", () => textsOf(serverIn.items).includes("after"))
        assert.isFalse(payloadsOf(serverIn.items).some((payload) => payload.length === 2048))
      }))

    test("send fails with Overloaded beyond maxQueuedMessages or maxQueuedBytes", () =>
      Effect.gen(function* () {
        const endpoint = yield* vacantEndpoint
        const byCount = yield* impl.make({ maxQueuedMessages: 10, sendTimeout: Duration.seconds(5) })
        const peer = yield* byCount.connect(endpoint)
        yield* Effect.sync(() => {
          for (let i = 0; i < 10; i++) assert.isUndefined(byCount.offer(peer.id, bytes(`q-${i}`)))
          assert.strictEqual(byCount.offer(peer.id, bytes("q-10"))?.reason, "Overloaded")
        })
        assert.strictEqual((yield* Effect.flip(byCount.send(peer.id, bytes("q-11")))).reason, "Overloaded")
        assert.strictEqual(byCount.metrics().overloaded, 2)

        const byBytes = yield* impl.make({ maxQueuedBytes: 1000, sendTimeout: Duration.seconds(5) })
        const other = yield* byBytes.connect(endpoint)
        yield* byBytes.send(other.id, new Uint8Array(600))
        assert.strictEqual((yield* Effect.flip(byBytes.send(other.id, new Uint8Array(600)))).reason, "Overloaded")
        assert.strictEqual(byBytes.metrics().overloaded, 1)
      }))

    test("send to a peer id nobody knows fails with PeerUnknown", () =>
      Effect.gen(function* () {
        const transport = yield* impl.make()
        const error = yield* Effect.flip(transport.send(Peer.makeId("outbound", "9999:tcp://127.0.0.1:1"), bytes("x")))
        assert.strictEqual(error.reason, "PeerUnknown")
      }))

    test("close with sends pending: completes in bounded time, reports the drop, ends streams, then fails Closed", () =>
      Effect.gen(function* () {
        const client = yield* impl.make({ linger: Duration.millis(100), sendTimeout: Duration.seconds(10) })
        const events = yield* collect(client.events)
        const received = yield* collect(client.received)
        const published = yield* collect(client.published)
        const peer = yield* client.connect(yield* vacantEndpoint)
        for (let i = 0; i < 100; i++) yield* client.send(peer.id, bytes(`pending-${i}`))
        yield* nextTurn
        yield* within("close", client.close, Duration.seconds(2))
        yield* within("the events stream ends", Fiber.join(events.fiber))
        yield* within("the received stream ends", Fiber.join(received.fiber))
        yield* within("the published stream ends", Fiber.join(published.fiber))
        const dropped = eventsTagged(events.items, "SendFailed")
          .filter((event) => event.peer === peer.id && event.reason === "Closed")
          .reduce((sum, event) => sum + event.messages, 0)
        assert.strictEqual(dropped, 100)
        assert.strictEqual(client.metrics().sendFailed, 100)

        yield* within("close again", client.close, Duration.seconds(2))
        assert.strictEqual((yield* Effect.flip(client.send(peer.id, bytes("late")))).reason, "Closed")
        assert.strictEqual(client.offer(peer.id, bytes("late"))?.reason, "Closed")
        assert.strictEqual((yield* Effect.flip(client.bind(impl.endpoint()))).reason, "Closed")
        assert.strictEqual((yield* Effect.flip(client.connect(impl.endpoint()))).reason, "Closed")
        assert.strictEqual((yield* Effect.flip(client.publish("t", bytes("late")))).reason, "Closed")
        assert.strictEqual((yield* Effect.flip(client.subscribe("t"))).reason, "Closed")
        yield* within("a stream taken after close is empty", Stream.runCollect(client.events))
      }))

    test("two clients of one server each get their own replies", () =>
      Effect.gen(function* () {
        const server = yield* impl.make()
        const endpoint = yield* server.bind(impl.endpoint())
        const senders = new Set<string>()
        yield* Effect.forkScoped(
          Stream.runForEach(server.received, (batch) =>
            Effect.gen(function* () {
              senders.add(batch.peer.id)
              for (const payload of batch.payloads) yield* server.send(batch.peer.id, payload)
            }),
          ),
        )
        const clients = yield* Effect.forEach(["A", "B"], (label) =>
          Effect.gen(function* () {
            const client = yield* impl.make()
            const replies = yield* collect(client.received)
            const peer = yield* client.connect(endpoint)
            return { label, client, replies, peer }
          }),
        )
        for (let i = 0; i < 100; i++) {
          for (const { label, client, peer } of clients) yield* client.send(peer.id, bytes(`${label}-${i}`))
          if (i % 10 === 0) yield* nextTurn
        }
        for (const { label, replies } of clients) {
          yield* waitUntil(`client ${label} gets 100 replies`, () => payloadsOf(replies.items).length === 100)
          assert.deepStrictEqual(
            textsOf(replies.items),
            Array.from({ length: 100 }, (_, i) => `${label}-${i}`),
          )
        }
        assert.strictEqual(senders.size, 2, "each client is its own inbound peer")
      }))

    test(
      "a client reconnects when its server restarts on the same endpoint",
      () =>
        Effect.gen(function* () {
          const client = yield* impl.make()
          const endpoint = yield* vacantEndpoint
          const { first, peer } = yield* Effect.gen(function* () {
            const first = yield* impl.make()
            const firstIn = yield* collect(first.received)
            yield* first.bind(endpoint)
            const peer = yield* client.connect(endpoint)
            yield* client.send(peer.id, bytes("before"))
            yield* waitUntil("the first server receives", () => firstIn.items.length > 0)
            return { first, peer }
          })
          yield* first.close
          const second = yield* impl.make()
          const secondIn = yield* collect(second.received)
          yield* second.bind(endpoint)
          // At most once: a payload written into the dying connection may be lost, so probe until one arrives.
          let probes = 0
          yield* within(
            "a payload reaches the restarted server",
            Effect.gen(function* () {
              while (secondIn.items.length === 0) {
                yield* client.send(peer.id, bytes(`after-${probes++}`))
                yield* Effect.sleep(Duration.millis(50))
              }
            }),
          )
          assert.isTrue(textsOf(secondIn.items).every((payload) => payload.startsWith("after-")))
        }),
      impl.supportsReconnect !== false,
    )

    test(
      "PUB/SUB: fan-out to two subscribers with prefix filters",
      () =>
        Effect.gen(function* () {
          const publisher = yield* impl.make()
          const events = yield* collect(publisher.events)
          const endpoint = yield* publisher.bindPublisher(impl.endpoint())
          const narrow = yield* impl.make()
          const wide = yield* impl.make()
          const narrowIn = yield* collect(narrow.published)
          const wideIn = yield* collect(wide.published)
          yield* narrow.subscribe("a.")
          yield* narrow.connectSubscriber(endpoint)
          yield* wide.connectSubscriber(endpoint)
          yield* wide.subscribe("")
          const subscribed = (topic: string) => () =>
            eventsTagged(events.items, "SubscriptionChanged").some((e) => e.topic === topic && e.subscribed)
          // Waiting for the subscriptions to reach the publisher avoids the slow-joiner race.
          yield* waitUntil(`the publisher sees "a."`, subscribed("a."))
          yield* waitUntil(`the publisher sees ""`, subscribed(""))

          yield* publisher.publish("a.x", bytes("1"))
          yield* publisher.publish("b.x", bytes("2"))
          yield* waitUntil("the wide subscriber gets both", () => topicsOf(wideIn.items).length === 2)
          assert.deepStrictEqual(topicsOf(wideIn.items), ["a.x=1", "b.x=2"])
          // A later matching message is the sentinel: per-publisher order means b.x would have come first.
          yield* publisher.publish("a.end", bytes("3"))
          yield* waitUntil("the narrow subscriber gets the sentinel", () =>
            topicsOf(narrowIn.items).includes("a.end=3"),
          )
          assert.deepStrictEqual(topicsOf(narrowIn.items), ["a.x=1", "a.end=3"])

          yield* narrow.unsubscribe("a.")
          yield* waitUntil(`the publisher sees "a." dropped`, () =>
            eventsTagged(events.items, "SubscriptionChanged").some((e) => e.topic === "a." && !e.subscribed),
          )
        }),
      impl.supportsPubSub !== false,
    )

    test(
      "PUB/SUB: a subscriber that never reads does not block the publisher",
      () =>
        Effect.gen(function* () {
          const publisher = yield* impl.make()
          const events = yield* collect(publisher.events)
          const endpoint = yield* publisher.bindPublisher(impl.endpoint())
          const idle = yield* impl.make({ receiveHighWaterMark: 10 })
          yield* idle.subscribe("")
          yield* idle.connectSubscriber(endpoint)
          yield* waitUntil("the publisher sees the subscription", () =>
            eventsTagged(events.items, "SubscriptionChanged").some((e) => e.topic === "" && e.subscribed),
          )
          yield* within(
            "publishing 20,000 payloads to an idle subscriber",
            Effect.gen(function* () {
              for (let turn = 0; turn < 200; turn++) {
                for (let i = 0; i < 100; i++) yield* publisher.publish("t", new Uint8Array(256))
                yield* nextTurn
              }
            }),
          )
          assert.strictEqual(publisher.metrics().messagesSent, 20_000)
        }),
      impl.supportsPubSub !== false,
    )

    const curveCases = impl.supportsCurve
    test(
      "CURVE: an allowed client is admitted and its inbound peer carries its key",
      () =>
        Effect.gen(function* () {
          const serverKeys = Curve.generateKeyPair()
          const clientKeys = Curve.generateKeyPair()
          const server = yield* impl.make({ curve: { ...serverKeys, allowedClientKeys: [clientKeys.publicKey] } })
          const client = yield* impl.make({ curve: clientKeys })
          const serverIn = yield* collect(server.received)
          const clientIn = yield* collect(client.received)
          const endpoint = yield* server.bind(impl.endpoint())
          const peer = yield* client.connect(endpoint, { serverPublicKey: serverKeys.publicKey })
          assert.strictEqual(peer.publicKey, serverKeys.publicKey)
          yield* client.send(peer.id, bytes("secret"))
          yield* waitUntil("the server receives from the allowed client", () => serverIn.items.length > 0)
          const inbound = serverIn.items[0]!.peer
          assert.strictEqual(inbound.publicKey, clientKeys.publicKey)
          yield* server.send(inbound.id, bytes("reply"))
          yield* waitUntil("the client receives the reply", () => clientIn.items.length > 0)
          assert.deepStrictEqual(textsOf(clientIn.items), ["reply"])
          const missingKey = yield* Effect.flip(client.connect(yield* vacantEndpoint))
          assert.strictEqual(missingKey.reason, "InvalidOptions", "a CURVE client must name the server key")
        }),
      curveCases,
    )

    test(
      "CURVE: with allowedServerKeys, only the listed servers are connected to; another key is Untrusted, counted",
      () =>
        Effect.gen(function* () {
          const trustedKeys = Curve.generateKeyPair()
          const strangerKeys = Curve.generateKeyPair()
          const clientKeys = Curve.generateKeyPair()
          const trusted = yield* impl.make({ curve: { ...trustedKeys, allowedClientKeys: [clientKeys.publicKey] } })
          const stranger = yield* impl.make({ curve: { ...strangerKeys, allowedClientKeys: [clientKeys.publicKey] } })
          const client = yield* impl.make({ curve: { ...clientKeys, allowedServerKeys: [trustedKeys.publicKey] } })
          const clientIn = yield* collect(client.received)
          const trustedIn = yield* collect(trusted.received)
          const strangerEndpoint = yield* stranger.bind(impl.endpoint())
          const refused = yield* Effect.flip(
            client.connect(strangerEndpoint, { serverPublicKey: strangerKeys.publicKey }),
          )
          assert.strictEqual(refused.reason, "Untrusted")
          assert.strictEqual(client.metrics().authFailures, 1)
          const endpoint = yield* trusted.bind(impl.endpoint())
          const peer = yield* client.connect(endpoint, { serverPublicKey: trustedKeys.publicKey })
          yield* client.send(peer.id, bytes("hello"))
          yield* waitUntil("the trusted server receives", () => trustedIn.items.length > 0)
          yield* trusted.send(trustedIn.items[0]!.peer.id, bytes("hi"))
          yield* waitUntil("the client receives the reply", () => clientIn.items.length > 0)
          const badOption = yield* Effect.flip(impl.make({ curve: { ...clientKeys, allowedServerKeys: ["nope"] } }))
          assert.strictEqual(badOption.reason, "InvalidOptions")
        }),
      curveCases,
    )

    test(
      "CURVE: a client with a key not allowed, or without CURVE, gets nothing through",
      () =>
        Effect.gen(function* () {
          const serverKeys = Curve.generateKeyPair()
          const goodKeys = Curve.generateKeyPair()
          const server = yield* impl.make({ curve: { ...serverKeys, allowedClientKeys: [goodKeys.publicKey] } })
          const serverIn = yield* collect(server.received)
          const endpoint = yield* server.bind(impl.endpoint())
          const good = yield* impl.make({ curve: goodKeys })
          const goodPeer = yield* good.connect(endpoint, { serverPublicKey: serverKeys.publicKey })

          const intruders = [
            { label: "unknown key", options: { curve: Curve.generateKeyPair() } },
            { label: "plaintext", options: {} },
          ]
          for (const { label, options } of intruders) {
            const authFailuresBefore = server.metrics().authFailures
            const intruder = yield* impl.make(options)
            const intruderEvents = yield* collect(intruder.events)
            const peer = yield* intruder.connect(endpoint, { serverPublicKey: serverKeys.publicKey })
            yield* intruder.send(peer.id, bytes(`intruder-${label}`))
            yield* waitUntil(
              `the ${label} client is refused`,
              () =>
                server.metrics().authFailures > authFailuresBefore ||
                eventsTagged(intruderEvents.items, "HandshakeFailed").length > 0,
            )
            // The admitted client's later payload is the sentinel for "nothing else arrived before it".
            yield* good.send(goodPeer.id, bytes(`sentinel-${label}`))
            yield* waitUntil("the sentinel arrives", () => textsOf(serverIn.items).includes(`sentinel-${label}`))
          }
          assert.isFalse(textsOf(serverIn.items).some((payload) => payload.startsWith("intruder-")))
        }),
      curveCases,
    )
  })
}
