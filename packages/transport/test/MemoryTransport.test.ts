/**
 * Behaviour of the memory transport beyond the shared conformance suite: networks and their isolation, fake
 * tcp ports, reconnects when an endpoint is bound again, the events it reports (as ZeroMQ's monitor would), CURVE
 * refusal details, the bounded subscriber buffer, and `sendTimeout` under `TestClock`.
 */
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, type Scope, Stream } from "effect"
import { TestClock } from "effect/testing"
import * as Curve from "../src/Curve.ts"
import * as MemoryNetwork from "../src/MemoryNetwork.ts"
import * as MemoryTransport from "../src/MemoryTransport.ts"
import * as Peer from "../src/Peer.ts"
import { Transport } from "../src/Transport.ts"
import type { TransportEvent } from "../src/TransportEvent.ts"

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text)
const text = (payload: Uint8Array): string => new TextDecoder().decode(payload)

const collect = <A>(stream: Stream.Stream<A>) =>
  Effect.gen(function* () {
    const items: Array<A> = []
    const fiber = yield* Effect.forkScoped(
      Stream.runForEach(stream, (item) => Effect.sync(() => void items.push(item))),
    )
    yield* Effect.yieldNow
    yield* Effect.yieldNow
    return { items, fiber }
  })

/** Polls a condition with a real-time deadline; memory delivery is microtask-fast, so this is generous. */
const waitUntil = (what: string, condition: () => boolean) =>
  Effect.timeoutOrElse(
    Effect.gen(function* () {
      while (!condition()) yield* Effect.sleep(Duration.millis(2))
    }),
    { duration: Duration.seconds(2), orElse: () => Effect.die(new Error(`timed out: ${what}`)) },
  )

/** One macrotask: every microtask-scheduled flush and attach of the memory network has run. */
const settle = Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))

const tags = (events: ReadonlyArray<TransportEvent>) => events.map((event) => event._tag)
const texts = (received: ReadonlyArray<{ readonly payloads: ReadonlyArray<Uint8Array> }>) =>
  received.flatMap((r) => r.payloads.map(text))

const onNetwork = <A, E>(f: (network: MemoryNetwork.MemoryNetwork) => Effect.Effect<A, E, Scope.Scope>) =>
  Effect.flatMap(MemoryNetwork.make(), f)

describe("MemoryNetwork", () => {
  it.live("networks are isolated: the same endpoint can be bound on each, and traffic stays on its network", () =>
    Effect.gen(function* () {
      const red = yield* MemoryNetwork.make()
      const blue = yield* MemoryNetwork.make()
      const redServer = yield* MemoryTransport.make({ network: red })
      const blueServer = yield* MemoryTransport.make({ network: blue })
      const redIn = yield* collect(redServer.received)
      const blueIn = yield* collect(blueServer.received)
      assert.strictEqual(yield* redServer.bind("inproc://svc"), "inproc://svc")
      assert.strictEqual(yield* blueServer.bind("inproc://svc"), "inproc://svc")
      assert.deepStrictEqual(red.bound(), ["inproc://svc"])

      const blueClient = yield* MemoryTransport.make({ network: blue })
      const peer = yield* blueClient.connect("inproc://svc")
      yield* blueClient.send(peer.id, bytes("blue"))
      yield* waitUntil("the blue server receives", () => blueIn.items.length > 0)
      yield* settle
      assert.deepStrictEqual(texts(blueIn.items), ["blue"])
      assert.strictEqual(redIn.items.length, 0)
    }),
  )

  it.live("transports without a network use MemoryNetwork.Current: the global network unless provided", () =>
    Effect.gen(function* () {
      const name = `inproc://global-${Math.random().toString(36).slice(2)}`
      const server = yield* MemoryTransport.make()
      yield* server.bind(name)
      assert.include(MemoryNetwork.global.bound(), name)

      const network = yield* MemoryNetwork.make()
      const scoped = yield* MemoryTransport.make().pipe(Effect.provideService(MemoryNetwork.Current, network))
      yield* scoped.bind(name)
      assert.deepStrictEqual(network.bound(), [name])

      const viaLayer = yield* Effect.gen(function* () {
        const current = yield* MemoryNetwork.Current
        return current
      }).pipe(Effect.provide(MemoryNetwork.layer))
      assert.isTrue(MemoryNetwork.isMemoryNetwork(viaLayer))
      assert.notStrictEqual(viaLayer, MemoryNetwork.global)
    }),
  )

  it.live("tcp wildcards get distinct fake ports; a 0.0.0.0 bind serves every host on its port", () =>
    onNetwork((network) =>
      Effect.gen(function* () {
        const server = yield* MemoryTransport.make({ network })
        const serverIn = yield* collect(server.received)
        const a = yield* server.bind("tcp://127.0.0.1:*")
        const b = yield* server.bind("tcp://127.0.0.1:*")
        assert.notStrictEqual(a, b)
        assert.match(a, /^tcp:\/\/127\.0\.0\.1:\d+$/)
        const any = yield* server.bind("tcp://*:*")
        assert.match(any, /^tcp:\/\/0\.0\.0\.0:\d+$/)
        const port = any.slice(any.lastIndexOf(":") + 1)

        const other = yield* MemoryTransport.make({ network })
        assert.strictEqual((yield* Effect.flip(other.bind(`tcp://10.0.0.1:${port}`))).reason, "BindFailed")
        assert.strictEqual((yield* Effect.flip(other.bind(`tcp://127.0.0.1:${port}`))).reason, "BindFailed")
        assert.strictEqual((yield* Effect.flip(other.connect("tcp://127.0.0.1:*"))).reason, "ConnectFailed")

        const peer = yield* other.connect(`tcp://localhost:${port}`)
        yield* other.send(peer.id, bytes("via localhost"))
        yield* waitUntil("the wildcard bind receives", () => serverIn.items.length > 0)
      }),
    ),
  )
})

describe("MemoryTransport", () => {
  it.live("events: Listening, Accepted, PeerSeen once, Connected; Disconnected on both sides when one closes", () =>
    onNetwork((network) =>
      Effect.gen(function* () {
        const server = yield* MemoryTransport.make({ network })
        const client = yield* MemoryTransport.make({ network })
        const serverEvents = yield* collect(server.events)
        const clientEvents = yield* collect(client.events)
        const serverIn = yield* collect(server.received)
        const endpoint = yield* server.bind("inproc://events")
        const peer = yield* client.connect(endpoint)
        yield* client.send(peer.id, bytes("1"))
        yield* settle
        yield* client.send(peer.id, bytes("2"))
        yield* waitUntil("both payloads arrive", () => texts(serverIn.items).length === 2)
        assert.deepStrictEqual(tags(serverEvents.items), ["Listening", "Accepted", "PeerSeen"])
        assert.deepStrictEqual(clientEvents.items, [{ _tag: "Connected", peer: peer.id, endpoint }])
        const inbound = serverIn.items[0]!.peer
        assert.deepStrictEqual(serverEvents.items[2], { _tag: "PeerSeen", peer: inbound.id, publicKey: undefined })

        yield* server.close
        yield* waitUntil("the client sees the server go", () => tags(clientEvents.items).includes("Disconnected"))
        assert.deepStrictEqual(clientEvents.items[1], { _tag: "Disconnected", peer: peer.id, endpoint })
        assert.strictEqual(client.metrics().disconnects, 1)

        // The other direction: a client closing is seen by the server, without a peer id (as ZeroMQ's monitor).
        const server2 = yield* MemoryTransport.make({ network })
        const events2 = yield* collect(server2.events)
        yield* server2.bind("inproc://events-2")
        const client2 = yield* MemoryTransport.make({ network })
        yield* client2.connect("inproc://events-2")
        yield* waitUntil("the server accepts", () => tags(events2.items).includes("Accepted"))
        yield* client2.close
        yield* waitUntil("the server sees the client go", () => tags(events2.items).includes("Disconnected"))
        assert.deepStrictEqual(events2.items.at(-1), {
          _tag: "Disconnected",
          peer: undefined,
          endpoint: "inproc://events-2",
        })
      }),
    ),
  )

  it.live("reconnects when the endpoint is bound again, delivering what was queued meanwhile", () =>
    onNetwork((network) =>
      Effect.gen(function* () {
        const client = yield* MemoryTransport.make({ network })
        const clientEvents = yield* collect(client.events)
        const first = yield* MemoryTransport.make({ network })
        yield* first.bind("ipc:///tmp/zactor-memory-reconnect")
        const peer = yield* client.connect("ipc:///tmp/zactor-memory-reconnect")
        yield* waitUntil("connected", () => tags(clientEvents.items).includes("Connected"))
        yield* first.close
        yield* waitUntil("disconnected", () => tags(clientEvents.items).includes("Disconnected"))

        yield* client.send(peer.id, bytes("queued while away"))
        yield* settle
        assert.strictEqual(client.metrics().queuedMessages, 1)

        const second = yield* MemoryTransport.make({ network })
        const secondIn = yield* collect(second.received)
        yield* second.bind("ipc:///tmp/zactor-memory-reconnect")
        yield* waitUntil("the queued payload reaches the new server", () => secondIn.items.length > 0)
        assert.deepStrictEqual(texts(secondIn.items), ["queued while away"])
        assert.deepStrictEqual(tags(clientEvents.items), ["Connected", "Disconnected", "Connected"])
        assert.strictEqual(client.metrics().reconnects, 1)
        assert.strictEqual(client.metrics().queuedMessages, 0)
        assert.strictEqual(client.metrics().sendFailed, 0)
      }),
    ),
  )

  it.live("disconnect drops the queue (SendFailed Closed), forgets the peer, and the server sees it go", () =>
    onNetwork((network) =>
      Effect.gen(function* () {
        const server = yield* MemoryTransport.make({ network })
        const serverEvents = yield* collect(server.events)
        yield* server.bind("inproc://bye")
        const client = yield* MemoryTransport.make({ network })
        const clientEvents = yield* collect(client.events)
        const peer = yield* client.connect("inproc://nobody")
        yield* client.send(peer.id, bytes("never"))
        yield* client.disconnect(peer.id)
        assert.deepStrictEqual(clientEvents.items.at(-1), {
          _tag: "SendFailed",
          peer: peer.id,
          messages: 1,
          reason: "Closed",
        })
        assert.strictEqual((yield* Effect.flip(client.send(peer.id, bytes("x")))).reason, "PeerUnknown")
        yield* client.disconnect(peer.id)

        const linked = yield* client.connect("inproc://bye")
        assert.notStrictEqual(linked.id, peer.id)
        yield* waitUntil("accepted", () => tags(serverEvents.items).includes("Accepted"))
        yield* client.disconnect(linked.id)
        yield* waitUntil("the server sees the disconnect", () => tags(serverEvents.items).includes("Disconnected"))
        assert.strictEqual(client.metrics().sendFailed, 1)
      }),
    ),
  )

  it.live("replies to an inbound peer that left are dropped as Unreachable, then the peer is unknown", () =>
    onNetwork((network) =>
      Effect.gen(function* () {
        const server = yield* MemoryTransport.make({ network })
        const serverEvents = yield* collect(server.events)
        const serverIn = yield* collect(server.received)
        yield* server.bind("inproc://gone")
        const client = yield* MemoryTransport.make({ network })
        const peer = yield* client.connect("inproc://gone")
        yield* client.send(peer.id, bytes("hi"))
        yield* waitUntil("received", () => serverIn.items.length > 0)
        const inbound = serverIn.items[0]!.peer
        assert.isTrue(Peer.isInbound(inbound.id))
        yield* client.close
        yield* server.send(inbound.id, bytes("too late"))
        yield* waitUntil("the reply is reported lost", () => tags(serverEvents.items).includes("SendFailed"))
        assert.deepStrictEqual(serverEvents.items.at(-1), {
          _tag: "SendFailed",
          peer: inbound.id,
          messages: 1,
          reason: "Unreachable",
        })
        assert.strictEqual((yield* Effect.flip(server.send(inbound.id, bytes("x")))).reason, "PeerUnknown")
      }),
    ),
  )

  it.effect("sendTimeout runs on the Effect Clock, so TestClock drives it", () =>
    onNetwork((network) =>
      Effect.gen(function* () {
        const client = yield* MemoryTransport.make({ network, sendTimeout: Duration.seconds(1) })
        const events = yield* collect(client.events)
        const peer = yield* client.connect("inproc://nobody")
        yield* client.send(peer.id, bytes("a"))
        yield* client.send(peer.id, bytes("b"))
        yield* settle
        yield* TestClock.adjust(Duration.millis(999))
        assert.strictEqual(client.metrics().sendFailed, 0)
        yield* TestClock.adjust(Duration.millis(1))
        yield* Effect.yieldNow
        assert.strictEqual(client.metrics().sendFailed, 2)
        assert.deepStrictEqual(events.items, [{ _tag: "SendFailed", peer: peer.id, messages: 2, reason: "Timeout" }])
      }),
    ),
  )

  it.live("CURVE refusals are reported the way ZeroMQ reports them", () =>
    onNetwork((network) =>
      Effect.gen(function* () {
        const serverKeys = Curve.generateKeyPair()
        const allowed = Curve.generateKeyPair()
        const server = yield* MemoryTransport.make({
          network,
          curve: { ...serverKeys, allowedClientKeys: [allowed.publicKey] },
        })
        const serverEvents = yield* collect(server.events)
        const endpoint = yield* server.bind("inproc://curve")
        const refusal = (options: MemoryTransport.MemoryTransportOptions, serverPublicKey: string) =>
          Effect.gen(function* () {
            const client = yield* MemoryTransport.make({ ...options, network })
            const events = yield* collect(client.events)
            const peer = yield* client.connect(endpoint, { serverPublicKey })
            yield* waitUntil("refused", () => tags(events.items).includes("HandshakeFailed"))
            const event = events.items.find((e) => e._tag === "HandshakeFailed")
            assert.strictEqual(event?._tag === "HandshakeFailed" ? event.peer : undefined, peer.id)
            return { reason: event?._tag === "HandshakeFailed" ? event.reason : undefined, client }
          })

        const unknown = yield* refusal({ curve: Curve.generateKeyPair() }, serverKeys.publicKey)
        assert.strictEqual(unknown.reason, "Auth")
        assert.strictEqual(unknown.client.metrics().authFailures, 1)
        const wrongServerKey = yield* refusal({ curve: allowed }, Curve.generateKeyPair().publicKey)
        assert.strictEqual(wrongServerKey.reason, "Protocol")
        const plaintext = yield* refusal({}, serverKeys.publicKey)
        assert.strictEqual(plaintext.reason, "Protocol")
        assert.strictEqual(
          plaintext.client.metrics().authFailures,
          0,
          "only a side with CURVE on counts protocol errors",
        )
        assert.strictEqual(server.metrics().authFailures, 3)
        assert.deepStrictEqual(
          serverEvents.items.filter((e) => e._tag === "HandshakeFailed").map((e) => e.peer),
          [undefined, undefined, undefined],
        )

        // A CURVE client against a plaintext server is a mechanism mismatch as well.
        const plainServer = yield* MemoryTransport.make({ network })
        yield* plainServer.bind("inproc://plain")
        const curveClient = yield* MemoryTransport.make({ network, curve: allowed })
        const curveEvents = yield* collect(curveClient.events)
        yield* curveClient.connect("inproc://plain", { serverPublicKey: serverKeys.publicKey })
        yield* waitUntil("refused", () => tags(curveEvents.items).includes("HandshakeFailed"))
        assert.strictEqual(plainServer.metrics().authFailures, 0)
        assert.strictEqual(curveClient.metrics().authFailures, 1)
      }),
    ),
  )

  it.live("a subscriber's buffer is bounded: batches beyond it are dropped and counted by the publisher", () =>
    onNetwork((network) =>
      Effect.gen(function* () {
        const publisher = yield* MemoryTransport.make({ network })
        const events = yield* collect(publisher.events)
        yield* publisher.bindPublisher("inproc://feed")
        const slow = yield* MemoryTransport.make({ network, receiveHighWaterMark: 2 })
        yield* slow.subscribe("")
        yield* slow.connectSubscriber("inproc://feed")
        yield* waitUntil("subscribed", () => tags(events.items).includes("SubscriptionChanged"))
        for (let turn = 0; turn < 5; turn++) {
          yield* publisher.publish("t", bytes(`${turn}-a`))
          yield* publisher.publish("t", bytes(`${turn}-b`))
          yield* settle
        }
        assert.strictEqual(publisher.metrics().batchesSent, 5)
        assert.strictEqual(publisher.metrics().sendFailed, 6)
        const kept = yield* Stream.runCollect(Stream.take(slow.published, 2))
        assert.deepStrictEqual(texts(kept), ["0-a", "0-b", "1-a", "1-b"])
      }),
    ),
  )

  it.live("SubscriptionChanged follows XPUB's default: first subscriber in, last subscriber out", () =>
    onNetwork((network) =>
      Effect.gen(function* () {
        const publisher = yield* MemoryTransport.make({ network })
        const events = yield* collect(publisher.events)
        yield* publisher.bindPublisher("inproc://topics")
        const one = yield* MemoryTransport.make({ network })
        const two = yield* MemoryTransport.make({ network })
        for (const subscriber of [one, two]) {
          yield* subscriber.connectSubscriber("inproc://topics")
          yield* subscriber.subscribe("a.")
          yield* subscriber.subscribe("a.")
        }
        yield* waitUntil(
          "two subscribers accepted",
          () => tags(events.items).filter((t) => t === "Accepted").length === 2,
        )
        yield* settle
        yield* one.close
        yield* two.unsubscribe("a.")
        yield* settle
        assert.strictEqual(tags(events.items).filter((t) => t === "SubscriptionChanged").length, 1)
        yield* two.unsubscribe("a.")
        yield* waitUntil("unsubscribed", () =>
          events.items.some((e) => e._tag === "SubscriptionChanged" && e.topic === "a." && !e.subscribed),
        )
      }),
    ),
  )

  it.live("a DEALER-style connect never links to a publisher endpoint", () =>
    onNetwork((network) =>
      Effect.gen(function* () {
        const publisher = yield* MemoryTransport.make({ network })
        yield* publisher.bindPublisher("inproc://pub-only")
        const client = yield* MemoryTransport.make({ network, sendTimeout: Duration.millis(50) })
        const events = yield* collect(client.events)
        const peer = yield* client.connect("inproc://pub-only")
        yield* client.send(peer.id, bytes("x"))
        yield* waitUntil("timed out", () => tags(events.items).includes("SendFailed"))
        assert.deepStrictEqual(tags(events.items), ["SendFailed"])
      }),
    ),
  )

  it.live("layer provides the Transport service and closes it with the layer", () =>
    onNetwork((network) =>
      Effect.gen(function* () {
        const endpoint = yield* Effect.scoped(
          Effect.gen(function* () {
            const transport = yield* Transport
            const endpoint = yield* transport.bind("inproc://layered")
            assert.deepStrictEqual(transport.endpoints(), [endpoint])
            return endpoint
          }).pipe(Effect.provide(MemoryTransport.layer({ network }))),
        )
        assert.strictEqual(endpoint, "inproc://layered")
        assert.deepStrictEqual(network.bound(), [], "released with the layer")
      }),
    ),
  )

  it.live("invalid options fail with InvalidOptions", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(MemoryTransport.make({ maxQueuedMessages: 0 }))
      assert.strictEqual(error.reason, "InvalidOptions")
    }),
  )
})
