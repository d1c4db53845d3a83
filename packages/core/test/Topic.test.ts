import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Schema, Scope, Stream } from "effect"
import * as Topic from "../src/Topic.ts"
import {
  collect,
  eventsOf,
  fastTopics,
  gapsOf,
  memoryNode,
  missedOf,
  network,
  Prices,
  publisherAndSubscriber,
  registryNetwork,
  Ticks,
  waitFor,
} from "./topicFixtures.ts"

const up = (messages: ReadonlyArray<Topic.Message<unknown>>, publisher: string) =>
  messages.some((m) => m._tag === "PublisherUp" && m.publisher === publisher)

describe("topics on the memory transport", () => {
  it.live("delivers typed events in order from a connected publisher, no gaps", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { pub, publisher, sub } = yield* publisherAndSubscriber(Ticks)
        const messages = yield* collect(sub.topics.subscribe(Ticks))
        yield* waitFor(() => up(messages, "pub"), "publisher up")
        for (let n = 1; n <= 1000; n++) assert.isUndefined(publisher.offer({ n }))
        yield* publisher.publish({ n: 1001 })
        yield* waitFor(() => eventsOf(messages).length === 1001, "1001 events")
        const events = eventsOf(messages)
        assert.deepStrictEqual(
          events.map((e) => [e.seq, e.value.n]),
          Array.from({ length: 1001 }, (_, i) => [i + 1, i + 1]),
        )
        assert.isTrue(events.every((e) => e.publisher === "pub" && e.epoch === publisher.epoch && !e.fromSnapshot))
        assert.deepStrictEqual(gapsOf(messages), [])
        assert.strictEqual(messages[0]?._tag, "PublisherUp")
        assert.strictEqual(publisher.lastSeq(), 1001)
        const metrics = sub.topics.metrics()
        assert.strictEqual(metrics.eventsReceived, 1001)
        assert.strictEqual(metrics.gaps, 0)
        assert.strictEqual(pub.topics.metrics().eventsPublished, 1001)
        // 1001 events published in two turns: a handful of batches, not one per event.
        assert.isBelow(pub.topics.metrics().batchesPublished, 10)
      }),
    ),
  )

  it.live("finds publishers through discovery, with no endpoint configured, whichever starts first", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { node } = registryNetwork()
        const sub = yield* node({ id: "sub" })
        const messages = yield* collect(sub.topics.subscribe(Ticks))
        const early = yield* node({ id: "early" })
        const a = yield* early.topics.publisher(Ticks)
        yield* waitFor(() => up(messages, "early"), "early publisher up")
        const late = yield* node({ id: "late" })
        const b = yield* late.topics.publisher(Ticks)
        yield* waitFor(() => up(messages, "late"), "late publisher up")
        for (let n = 0; n < 100; n++) {
          a.offer({ n })
          b.offer({ n })
        }
        yield* waitFor(() => eventsOf(messages).length === 200, "200 events")
        for (const publisher of ["early", "late"]) {
          assert.deepStrictEqual(
            eventsOf(messages)
              .filter((e) => e.publisher === publisher)
              .map((e) => e.seq),
            Array.from({ length: 100 }, (_, i) => i + 1),
          )
        }
        assert.deepStrictEqual(gapsOf(messages), [])
      }),
    ),
  )

  it.live("key filters: only matching keys, and the skipped ones are not reported as gaps", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { publisher, sub } = yield* publisherAndSubscriber(Prices)
        const exact = yield* collect(sub.topics.subscribe(Prices, { keys: ["EUR/USD"], snapshot: false }))
        const prefix = yield* collect(sub.topics.subscribe(Prices, { keyPrefix: "GBP", snapshot: false }))
        yield* waitFor(() => up(exact, "pub") && up(prefix, "pub"), "publisher up")
        const symbols = ["EUR/USD", "GBP/USD", "GBP/JPY", "USD/JPY"]
        for (let i = 0; i < 400; i++) publisher.offer({ symbol: symbols[i % 4]!, price: i })
        publisher.offer({ symbol: "EUR/USD", price: -1 })
        yield* waitFor(() => eventsOf(exact).length === 101 && eventsOf(prefix).length === 200, "filtered events")
        assert.isTrue(eventsOf(exact).every((e) => e.key === "EUR/USD" && e.value.symbol === "EUR/USD"))
        assert.isTrue(eventsOf(prefix).every((e) => e.key?.startsWith("GBP") === true))
        assert.strictEqual(eventsOf(exact).at(-1)?.seq, 401)
        assert.deepStrictEqual([...gapsOf(exact), ...gapsOf(prefix)], [])
      }),
    ),
  )

  it.live("a loss in the transport becomes a Lost gap: received + missed = published, tails found by heartbeats", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const net = network()
        const pub = yield* memoryNode(net, { id: "pub" }, { heartbeatInterval: 100, maxBatchEvents: 16 })
        const publisher = yield* pub.topics.publisher(Ticks)
        // One transport batch (64 payloads of 16 events) fits in the subscriber's receive queue; the rest of a
        // burst is dropped on arrival, as ZeroMQ drops at a high-water mark.
        const sub = yield* Effect.flatMap(Effect.succeed(undefined), () => memoryNodeWithHwm(net, "sub", 1))
        yield* sub.connect(pub.endpoints()[0]!)
        const messages = yield* collect(sub.topics.subscribe(Ticks))
        yield* waitFor(() => up(messages, "pub"), "publisher up")
        for (let n = 1; n <= 5000; n++) publisher.offer({ n })
        // The burst's tail is announced by the next heartbeat only.
        yield* waitFor(() => eventsOf(messages).length + missedOf(messages) === 5000, "accounting of 5000")
        assert.isAbove(missedOf(messages, ["Lost"]), 0)
        assert.strictEqual(eventsOf(messages).length, 1024)
        for (let n = 5001; n <= 5010; n++) publisher.offer({ n })
        yield* waitFor(() => eventsOf(messages).length + missedOf(messages) === 5010, "accounting of 5010")
        assert.deepStrictEqual(
          eventsOf(messages)
            .slice(-10)
            .map((e) => e.seq),
          Array.from({ length: 10 }, (_, i) => 5001 + i),
        )
        assert.strictEqual(sub.topics.metrics().missed, missedOf(messages))
      }),
    ),
  )

  it.live("a late joiner gets the cache as a snapshot, then live events with no duplicate or hole", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const net = network()
        const pub = yield* memoryNode(net, { id: "pub" })
        const publisher = yield* pub.topics.publisher(Prices)
        const latest = new Map<string, number>()
        let i = 0
        const publishSome = (count: number) => {
          for (let k = 0; k < count; k++, i++) {
            const symbol = `S${i % 50}`
            publisher.offer({ symbol, price: i })
            latest.set(symbol, i)
          }
        }
        publishSome(1000)
        // Keep publishing while the subscriber joins, so the snapshot boundary falls in the middle of traffic.
        const ticker = yield* Effect.forever(
          Effect.andThen(
            Effect.sync(() => publishSome(7)),
            Effect.sleep(1),
          ),
        ).pipe(Effect.forkScoped)
        const sub = yield* memoryNode(net, { id: "sub" })
        yield* sub.connect(pub.endpoints()[0]!)
        const messages = yield* collect(sub.topics.subscribe(Prices))
        yield* waitFor(() => messages.some((m) => m._tag === "Synced"), "synced")
        yield* waitFor(() => eventsOf(messages).filter((e) => !e.fromSnapshot).length > 200, "live events")
        yield* Fiber.interrupt(ticker)
        const synced = messages.find((m): m is Topic.Synced => m._tag === "Synced")!
        const at = messages.indexOf(synced)
        const snapshot = eventsOf(messages.slice(0, at))
        const live = eventsOf(messages.slice(at + 1))
        assert.strictEqual(synced.entries, 50)
        assert.isTrue(snapshot.every((e) => e.fromSnapshot && e.seq <= synced.seq))
        assert.deepStrictEqual(new Set(snapshot.map((e) => e.key)).size, 50)
        assert.isTrue(live.every((e) => !e.fromSnapshot))
        assert.deepStrictEqual(
          live.map((e) => e.seq),
          Array.from({ length: live.length }, (_, k) => synced.seq + 1 + k),
        )
        assert.deepStrictEqual(gapsOf(messages), [])
        // Each snapshot value is the latest of its key as of the boundary: replaying live events on it gives the
        // publisher's final state.
        const state = new Map(snapshot.map((e) => [e.key!, e.value.price]))
        for (const e of live) state.set(e.key!, e.value.price)
        assert.deepStrictEqual(state, latest)
      }),
    ),
  )

  it.live("a snapshot follows the subscription's key filter", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const net = network()
        const pub = yield* memoryNode(net, { id: "pub" })
        const publisher = yield* pub.topics.publisher(Prices)
        for (const symbol of ["EUR/USD", "GBP/USD", "GBP/JPY", "USD/JPY"]) publisher.offer({ symbol, price: 1 })
        const sub = yield* memoryNode(net, { id: "sub" })
        yield* sub.connect(pub.endpoints()[0]!)
        const messages = yield* collect(sub.topics.subscribe(Prices, { keyPrefix: "GBP" }))
        yield* waitFor(() => messages.some((m) => m._tag === "Synced"), "synced")
        assert.deepStrictEqual(
          eventsOf(messages)
            .map((e) => e.key)
            .sort(),
          ["GBP/JPY", "GBP/USD"],
        )
      }),
    ),
  )

  it.live("a restarted publisher: new epoch, the gap of its first events, then it continues", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { node } = registryNetwork()
        const sub = yield* node({ id: "sub" })
        const messages = yield* collect(sub.topics.subscribe(Ticks))
        const first = yield* Scope.make()
        const pub1 = yield* node({ id: "pub" }).pipe(Scope.provide(first))
        const publisher1 = yield* pub1.topics.publisher(Ticks).pipe(Scope.provide(first))
        yield* waitFor(() => up(messages, "pub"), "publisher up")
        for (let n = 1; n <= 10; n++) publisher1.offer({ n })
        yield* waitFor(() => eventsOf(messages).length === 10, "10 events")
        yield* Scope.close(first, Exit.void)
        yield* waitFor(() => messages.some((m) => m._tag === "PublisherDown"), "publisher down")
        yield* Effect.sleep(5)
        // The same node id comes back (a new process): it publishes 5 events before the subscriber reconnects.
        const pub2 = yield* node({ id: "pub" }, { heartbeatInterval: 100, scanInterval: 10_000 })
        const publisher2 = yield* pub2.topics.publisher(Ticks)
        for (let n = 1; n <= 5; n++) publisher2.offer({ n })
        yield* waitFor(() => messages.some((m) => m._tag === "Gap" && m.reason === "Restarted"), "restart notice")
        for (let n = 6; n <= 8; n++) publisher2.offer({ n })
        yield* waitFor(() => eventsOf(messages).length === 13, "13 events")
        const restart = gapsOf(messages).find((g) => g.reason === "Restarted")!
        assert.strictEqual(restart.previousEpoch, publisher1.epoch)
        assert.strictEqual(restart.epoch, publisher2.epoch)
        assert.notStrictEqual(publisher2.epoch, publisher1.epoch)
        assert.strictEqual(restart.missed, 5)
        assert.deepStrictEqual(
          eventsOf(messages)
            .slice(10)
            .map((e) => [e.epoch, e.seq]),
          [6, 7, 8].map((seq) => [publisher2.epoch, seq]),
        )
        const tags = messages.filter((m) => m._tag !== "Event").map((m) => m._tag)
        assert.deepStrictEqual(tags, ["PublisherUp", "PublisherDown", "PublisherUp", "Gap"])
        assert.strictEqual(sub.topics.metrics().restarts, 1)
      }),
    ),
  )

  it.live("liveness: a closing publisher says so; a silent one is reported down, and up again when heard", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const net = network()
        const pub = yield* memoryNode(net, { id: "pub" })
        const sub = yield* memoryNode(net, { id: "sub" })
        yield* sub.connect(pub.endpoints()[0]!)
        const messages = yield* collect(sub.topics.subscribe(Ticks))
        const scope = yield* Scope.make()
        yield* pub.topics.publisher(Ticks).pipe(Scope.provide(scope))
        yield* waitFor(() => up(messages, "pub"), "publisher up")
        yield* Scope.close(scope, Exit.void)
        yield* waitFor(() => messages.some((m) => m._tag === "PublisherDown"), "closed")
        assert.deepStrictEqual(messages.at(-1), {
          _tag: "PublisherDown",
          publisher: "pub",
          epoch: (messages[0] as Topic.PublisherUp).epoch,
          reason: "Closed",
        })
        // Heartbeats every 100 ms, 3 missed: a publisher that goes quiet without a word is down within ~350 ms.
        const silent = yield* memoryNode(net, { id: "quiet" })
        yield* sub.connect(silent.endpoints()[0]!)
        const quietMessages = yield* collect(sub.topics.subscribe(Ticks))
        yield* silent.topics.publisher(Ticks)
        yield* waitFor(() => up(quietMessages, "quiet"), "quiet up")
        const before = Date.now()
        yield* silent.transport.close
        yield* waitFor(
          () => quietMessages.some((m) => m._tag === "PublisherDown" && m.publisher === "quiet"),
          "quiet down",
        )
        const took = Date.now() - before
        assert.isAtLeast(took, 250)
        assert.isBelow(took, 2000)
        const down = quietMessages.find((m): m is Topic.PublisherDown => m._tag === "PublisherDown")!
        assert.strictEqual(down.reason, "Silent")
      }),
    ),
  )

  it.live("discovery's departure before the closing heartbeat still reads Closed; without one it reads Left", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { registry, node } = registryNetwork()
        const sub = yield* node({ id: "sub" })
        const messages = yield* collect(sub.topics.subscribe(Ticks))
        const notices = (publisher: string) =>
          messages.flatMap((m) =>
            m._tag === "PublisherUp" && m.publisher === publisher
              ? ["Up"]
              : m._tag === "PublisherDown" && m.publisher === publisher
                ? [`Down:${m.reason}`]
                : [],
          )
        // Closed cleanly, but discovery's news is read first (another socket, in a real network).
        const scope = yield* Scope.make()
        const pub = yield* node({ id: "pub" }).pipe(Scope.provide(scope))
        yield* pub.topics.publisher(Ticks).pipe(Scope.provide(scope))
        yield* waitFor(() => up(messages, "pub"), "publisher up")
        registry.leave("pub")
        yield* Effect.sleep(10) // the watch has delivered the departure
        yield* Scope.close(scope, Exit.void)
        yield* waitFor(() => notices("pub").length === 2, "publisher down")
        // Well past the grace and a few heartbeat intervals: nothing more, and never up again.
        yield* Effect.sleep(400)
        assert.deepStrictEqual(notices("pub"), ["Up", "Down:Closed"])

        // The same with a close that takes a while: the subscriber's scans (every 50 ms) still list the node among
        // its connected peers. That is a node on its way out, not one found again: still Closed, never up again.
        const slowScope = yield* Scope.make()
        const slow = yield* node({ id: "slow" }, { ...fastTopics, heartbeatInterval: 400 }).pipe(
          Scope.provide(slowScope),
        )
        yield* slow.topics.publisher(Ticks).pipe(Scope.provide(slowScope))
        yield* waitFor(() => up(messages, "slow"), "slow up")
        registry.leave("slow")
        yield* Effect.sleep(120) // two scans; the grace of a 400 ms heartbeat interval is 250 ms
        yield* Scope.close(slowScope, Exit.void)
        yield* waitFor(() => notices("slow").length >= 2, "slow down")
        yield* Effect.sleep(300)
        assert.deepStrictEqual(notices("slow"), ["Up", "Down:Closed"])

        // Gone without a word (its transport closed), then dropped by discovery: Left, before silence would say.
        const gone = yield* node({ id: "gone" })
        yield* gone.topics.publisher(Ticks)
        yield* waitFor(() => up(messages, "gone"), "gone up")
        yield* gone.transport.close
        const before = Date.now()
        registry.leave("gone")
        yield* waitFor(() => notices("gone").length === 2, "gone down")
        assert.isBelow(Date.now() - before, 250)
        yield* Effect.sleep(400)
        assert.deepStrictEqual(notices("gone"), ["Up", "Down:Left"])

        // Killed, dropped by discovery, and back (a new process, same id) within the wait: Left, then up again.
        const first = yield* Scope.make()
        const killed = yield* node({ id: "again" }).pipe(Scope.provide(first))
        yield* killed.topics.publisher(Ticks).pipe(Scope.provide(first))
        yield* waitFor(() => up(messages, "again"), "again up")
        yield* killed.transport.close
        registry.leave("again")
        yield* Effect.sleep(10) // the watch has delivered the departure
        const restarted = yield* node({ id: "again" })
        yield* restarted.topics.publisher(Ticks)
        yield* waitFor(() => notices("again").length === 3, "again up again")
        assert.deepStrictEqual(notices("again"), ["Up", "Down:Left", "Up"])
      }),
    ),
  )

  it.live("a node subscribes to its own topic", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const node = yield* memoryNode(network(), { id: "self" })
        const publisher = yield* node.topics.publisher(Ticks)
        const messages = yield* collect(node.topics.subscribe(Ticks))
        yield* waitFor(() => up(messages, "self"), "self up")
        publisher.offer({ n: 1 })
        yield* waitFor(() => eventsOf(messages).length === 1, "own event")
      }),
    ),
  )

  it.live("slow subscribers: drop-newest and drop-oldest keep memory bounded and report what they dropped", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { publisher, sub } = yield* publisherAndSubscriber(Ticks)
        const pullOf = (policy: Topic.SlowSubscriberPolicy) =>
          Stream.toPull(sub.topics.subscribe(Ticks, { policy, bufferSize: 100 }))
        const newest = yield* pullOf("drop-newest")
        const oldest = yield* pullOf("drop-oldest")
        // The first pull starts each subscription (it returns PublisherUp); then nobody pulls: both buffers fill.
        assert.strictEqual((yield* newest)[0]?._tag, "PublisherUp")
        assert.strictEqual((yield* oldest)[0]?._tag, "PublisherUp")
        for (let n = 1; n <= 1000; n++) publisher.offer({ n })
        yield* waitFor(() => sub.topics.metrics().dropped === 1800, "1800 dropped")
        const take = (pull: typeof newest) =>
          Effect.gen(function* () {
            const all: Array<Topic.Message<{ readonly n: number }>> = []
            while (eventsOf(all).length + missedOf(all, ["Dropped"]) < 1000) all.push(...(yield* pull))
            return all
          })
        const fromNewest = yield* take(newest)
        const fromOldest = yield* take(oldest)
        assert.deepStrictEqual(
          eventsOf(fromNewest).map((e) => e.seq),
          Array.from({ length: 100 }, (_, i) => i + 1),
        )
        assert.deepStrictEqual(missedOf(fromNewest, ["Dropped"]), 900)
        assert.deepStrictEqual(
          eventsOf(fromOldest).map((e) => e.seq),
          Array.from({ length: 100 }, (_, i) => 901 + i),
        )
        assert.strictEqual(
          fromOldest.findIndex((m) => m._tag === "Gap"),
          0,
        )
      }),
    ),
  )

  it.live("disconnect-and-resync: one Resync gap of exactly the discarded events, a fresh snapshot, then no hole", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { publisher, sub } = yield* publisherAndSubscriber(Prices)
        const pull = yield* Stream.toPull(
          sub.topics.subscribe(Prices, { policy: "disconnect-and-resync", bufferSize: 50 }),
        )
        const all: Array<Topic.Message<{ readonly symbol: string; readonly price: number }>> = []
        const pullUntil = (done: () => boolean) =>
          Effect.gen(function* () {
            while (!done()) all.push(...(yield* pull))
          })
        const latest = new Map<string, number>()
        let published = 0
        const publishSome = (count: number) => {
          for (let k = 0; k < count; k++, published++) {
            const symbol = `S${published % 10}`
            assert.isUndefined(publisher.offer({ symbol, price: published }))
            latest.set(symbol, published)
          }
        }
        const synced = () => all.filter((m): m is Topic.Synced => m._tag === "Synced")
        yield* pullUntil(() => synced().length === 1)
        assert.strictEqual(synced()[0]!.seq, 0)
        // Nobody pulls while 500 events arrive: the 51st finds the buffer full, so the 50 buffered ones and the
        // 450 after them are discarded (the resync lasts until the consumer takes what is left).
        publishSome(500)
        yield* waitFor(() => sub.topics.metrics().dropped === 500, "500 discarded")
        yield* pullUntil(() => gapsOf(all).length === 1)
        // Traffic goes on, slower than the consumer pulls, while the fresh snapshot is fetched: the boundary falls
        // in the middle of it.
        const ticker = yield* Effect.forever(
          Effect.andThen(
            Effect.sync(() => publishSome(1)),
            Effect.sleep(1),
          ),
        ).pipe(Effect.forkScoped)
        yield* pullUntil(() => synced().length === 2 && (eventsOf(all).at(-1)?.seq ?? 0) > synced()[1]!.seq + 20)
        yield* Fiber.interrupt(ticker)
        publishSome(5)
        yield* pullUntil(() => eventsOf(all).at(-1)?.seq === published)

        assert.deepStrictEqual(
          gapsOf(all).map((g) => [g.reason, g.missed, g.publisher, g.epoch]),
          [["Resync", 500, "pub", publisher.epoch]],
        )
        const metrics = sub.topics.metrics()
        assert.strictEqual(metrics.resyncs, 1)
        assert.strictEqual(metrics.dropped, 500)
        // Nothing was lost before reaching the subscription: the policy's discards are its only loss.
        assert.strictEqual(metrics.gaps, 0)
        const [first, second] = synced()
        const firstAt = all.indexOf(first!)
        const gapAt = all.findIndex((m) => m._tag === "Gap")
        const secondAt = all.indexOf(second!)
        // Nothing of the discarded 500 reached the consumer; the fresh snapshot follows the gap.
        assert.deepStrictEqual(eventsOf(all.slice(firstAt + 1, gapAt)), [])
        const refreshed = eventsOf(all.slice(gapAt + 1, secondAt))
        assert.isTrue(refreshed.every((e) => e.fromSnapshot && e.seq <= second!.seq))
        assert.strictEqual(second!.entries, 10)
        assert.isAtLeast(second!.seq, 500)
        // After the snapshot: every later event once, in order, with no hole.
        const live = eventsOf(all.slice(secondAt + 1))
        assert.isTrue(live.every((e) => !e.fromSnapshot))
        assert.deepStrictEqual(
          live.map((e) => e.seq),
          Array.from({ length: published - second!.seq }, (_, k) => second!.seq + 1 + k),
        )
        // The snapshot's values with the live events replayed on them give the publisher's state.
        const state = new Map(refreshed.map((e) => [e.key!, e.value.price]))
        for (const e of live) state.set(e.key!, e.value.price)
        assert.deepStrictEqual(state, latest)
      }),
    ),
  )

  it.live("events that fail the codec: the publisher refuses them; a subscriber with another schema reports them", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const net = network()
        const pub = yield* memoryNode(net, { id: "pub" })
        const publisher = yield* pub.topics.publisher(Ticks)
        const refused = publisher.offer({ n: "x" } as unknown as { readonly n: number })
        assert.isTrue(Topic.TopicError.is(refused))
        assert.strictEqual(refused?.reason, "InvalidEvent")
        const sub = yield* memoryNode(net, { id: "sub" })
        yield* sub.connect(pub.endpoints()[0]!)
        const Strict = Topic.make("ticks", {
          schema: Schema.Struct({ n: Schema.Number.check(Schema.isGreaterThan(5)) }),
        })
        const messages = yield* collect(sub.topics.subscribe(Strict))
        yield* waitFor(() => up(messages, "pub"), "publisher up")
        for (let n = 1; n <= 10; n++) publisher.offer({ n })
        yield* waitFor(() => eventsOf(messages).length === 5, "valid events")
        assert.deepStrictEqual(
          gapsOf(messages).map((g) => [g.reason, g.missed]),
          [["Invalid", 5]],
        )
        assert.strictEqual(sub.topics.metrics().invalid, 5)
      }),
    ),
  )

  it.live("options are checked", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const node = yield* memoryNode(network(), { id: "n" })
        const error = yield* Effect.flip(Stream.runDrain(node.topics.subscribe(Ticks, { bufferSize: 0 })))
        assert.strictEqual(error.reason, "InvalidOptions")
        const bad = yield* Effect.flip(node.topics.publisher(Ticks, { heartbeatInterval: -1 }))
        assert.strictEqual(bad.reason, "InvalidOptions")
        assert.throws(() => Topic.make("not a name", { schema: Schema.Number }))
      }),
    ),
  )
})

/** A node whose transport keeps at most `hwm` received batches (memory transport: beyond, batches are dropped). */
const memoryNodeWithHwm = (net: ReturnType<typeof network>, id: string, hwm: number) =>
  Effect.gen(function* () {
    const { MemoryTransport, Transport } = yield* Effect.promise(() => import("@zactor/transport"))
    const { make } = yield* Effect.promise(() => import("../src/Node.ts"))
    const transport = yield* MemoryTransport.make({ network: net, receiveHighWaterMark: hwm })
    return yield* make({ id }).pipe(
      Effect.provideService(Transport, transport),
      Effect.provideService(Topic.TopicsOptions, { heartbeatInterval: 100, scanInterval: 50 }),
    )
  })

describe("publishing again in the same process", () => {
  it.live("continues the sequence under the same epoch, so subscribers see no restart and no silent loss", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const net = network()
        const pub = yield* memoryNode(net, { id: "pub" })
        const sub = yield* memoryNode(net, { id: "sub" })
        yield* sub.connect(pub.endpoints()[0]!)
        const messages = yield* collect(sub.topics.subscribe(Ticks))
        const first = yield* Scope.make()
        const a = yield* pub.topics.publisher(Ticks).pipe(Scope.provide(first))
        yield* waitFor(() => up(messages, "pub"), "publisher up")
        for (let n = 1; n <= 5; n++) a.offer({ n })
        yield* waitFor(() => eventsOf(messages).length === 5, "5 events")
        yield* Scope.close(first, Exit.void)
        const b = yield* pub.topics.publisher(Ticks)
        for (let n = 6; n <= 8; n++) b.offer({ n })
        yield* waitFor(() => eventsOf(messages).length === 8, "8 events")
        assert.strictEqual(b.epoch, a.epoch)
        assert.deepStrictEqual(
          eventsOf(messages).map((e) => e.seq),
          [1, 2, 3, 4, 5, 6, 7, 8],
        )
        assert.deepStrictEqual(gapsOf(messages), [])
      }),
    ),
  )
})
