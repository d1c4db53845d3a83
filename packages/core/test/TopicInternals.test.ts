import { assert, describe, it } from "@effect/vitest"
import { GapTracker } from "../src/internal/gapTracker.ts"
import * as KeyFilter from "../src/internal/keyFilter.ts"
import { LastValueCache } from "../src/internal/lastValueCache.ts"
import { SubscriptionBuffer } from "../src/internal/subscriptionBuffer.ts"
import * as TopicWire from "../src/internal/topicWire.ts"
import type * as Topic from "../src/Topic.ts"

const event = (seq: number, publisher = "p", epoch = 1): Topic.Event<number> => ({
  _tag: "Event",
  publisher,
  epoch,
  seq,
  key: undefined,
  value: seq,
  fromSnapshot: false,
})

const summary = (messages: ReadonlyArray<Topic.Message<number>>) =>
  messages.map((m) =>
    m._tag === "Event" ? m.seq : m._tag === "Gap" ? `${m.reason}:${m.missed}` : `${m._tag}:${m.publisher}`,
  )

const drain = (buffer: SubscriptionBuffer<number>) => {
  const out: Array<Topic.Message<number>> = []
  for (;;) {
    const chunk = buffer.take(1000)
    if (chunk === undefined) return out
    out.push(...chunk)
  }
}

describe("GapTracker", () => {
  it("takes the first message as the baseline, then reports jumps, duplicates and tails", () => {
    const tracker = new GapTracker()
    assert.strictEqual(tracker.range(7, 100, 10), 0) // 100..109: joined mid-stream, nothing missed
    assert.strictEqual(tracker.missed, 0)
    assert.strictEqual(tracker.range(7, 110, 5), 0) // contiguous
    assert.strictEqual(tracker.missed, 0)
    assert.strictEqual(tracker.range(7, 120, 1), 0) // 115..119 lost
    assert.strictEqual(tracker.missed, 5)
    assert.strictEqual(tracker.range(7, 118, 5), 3) // 118..120 seen, 121..122 new
    assert.strictEqual(tracker.missed, 0)
    assert.strictEqual(tracker.lastSeq, 122)
    assert.strictEqual(tracker.range(7, 110, 3), 3) // all old
    assert.isTrue(tracker.beat(7, 130)) // tail 123..130 lost
    assert.strictEqual(tracker.missed, 8)
    assert.isTrue(tracker.beat(7, 130))
    assert.strictEqual(tracker.missed, 0)
  })

  it("counts a new epoch as a restart from sequence 1 and ignores stragglers of the old one", () => {
    const tracker = new GapTracker()
    tracker.range(1, 1, 10)
    assert.isTrue(tracker.isNewEpoch(2))
    assert.strictEqual(tracker.range(2, 4, 2), 0) // 1..3 of the new epoch were missed
    assert.strictEqual(tracker.previousEpoch, 1)
    assert.strictEqual(tracker.missed, 3)
    assert.strictEqual(tracker.range(1, 11, 5), 5) // a straggler of epoch 1
    assert.isFalse(tracker.isNewEpoch(1))
    assert.isFalse(tracker.beat(1, 20))
    assert.strictEqual(tracker.epoch, 2)
    assert.isTrue(tracker.beat(3, 7)) // restarted again, heard by a heartbeat first
    assert.strictEqual(tracker.previousEpoch, 2)
    assert.strictEqual(tracker.missed, 7)
  })

  it("takes a snapshot's sequence as the baseline and never moves back within an epoch", () => {
    const tracker = new GapTracker()
    tracker.baseline(5, 40)
    assert.strictEqual(tracker.range(5, 35, 10), 6) // 35..40 covered by the snapshot
    assert.strictEqual(tracker.missed, 0)
    tracker.baseline(5, 20)
    assert.strictEqual(tracker.lastSeq, 44)
  })
})

describe("SubscriptionBuffer", () => {
  it("drop-oldest keeps the newest events and reports the evicted ones first", () => {
    const buffer = new SubscriptionBuffer<number>(3, "drop-oldest", () => {})
    for (let seq = 1; seq <= 10; seq++) buffer.offerEvent(event(seq))
    assert.deepStrictEqual(summary(drain(buffer)), ["Dropped:7", 8, 9, 10])
  })

  it("drop-newest keeps the oldest events and reports the refused ones where they were lost", () => {
    const counters = { dropped: 0, resyncs: 0 }
    const buffer = new SubscriptionBuffer<number>(3, "drop-newest", () => {}, counters)
    for (let seq = 1; seq <= 10; seq++) buffer.offerEvent(event(seq))
    assert.deepStrictEqual(summary(buffer.take(2) ?? []), [1, 2])
    buffer.offerEvent(event(11))
    assert.deepStrictEqual(summary(drain(buffer)), [3, "Dropped:7", 11])
    assert.strictEqual(counters.dropped, 7)
  })

  it("notices are never lost: merged per publisher while the buffer is full", () => {
    const buffer = new SubscriptionBuffer<number>(2, "drop-newest", () => {})
    buffer.offerEvent(event(1))
    buffer.offerEvent(event(2))
    for (let i = 0; i < 1000; i++) {
      buffer.offerNotice({ _tag: "Gap", publisher: "p", epoch: 1, missed: 1, reason: "Lost", previousEpoch: undefined })
      buffer.offerEvent(event(3 + i))
    }
    buffer.offerNotice({ _tag: "PublisherDown", publisher: "p", epoch: 1, reason: "Silent" })
    buffer.offerNotice({ _tag: "PublisherUp", publisher: "p", epoch: 1 })
    assert.deepStrictEqual(summary(drain(buffer)), [1, 2, "Lost:1000", "Dropped:1000", "PublisherUp:p"])
  })

  it("drop-oldest folds evicted notices into the report at the head", () => {
    const buffer = new SubscriptionBuffer<number>(2, "drop-oldest", () => {})
    buffer.offerNotice({ _tag: "PublisherUp", publisher: "p", epoch: 1 })
    buffer.offerEvent(event(1))
    buffer.offerNotice({ _tag: "Gap", publisher: "p", epoch: 1, missed: 4, reason: "Lost", previousEpoch: undefined })
    buffer.offerEvent(event(6))
    buffer.offerEvent(event(7))
    buffer.offerEvent(event(8))
    assert.deepStrictEqual(summary(drain(buffer)), ["Dropped:2", "Lost:4", "PublisherUp:p", 7, 8])
  })

  it("disconnect-and-resync discards the backlog and what arrives until the consumer catches up", () => {
    let resynced = 0
    const counters = { dropped: 0, resyncs: 0 }
    const buffer = new SubscriptionBuffer<number>(3, "disconnect-and-resync", () => resynced++, counters)
    buffer.offerNotice({ _tag: "PublisherUp", publisher: "p", epoch: 1 })
    for (let seq = 1; seq <= 4; seq++) buffer.offerEvent(event(seq)) // the 4th overflows: 1..4 discarded
    for (let seq = 5; seq <= 9; seq++) buffer.offerEvent(event(seq)) // still resyncing: discarded
    assert.strictEqual(buffer.size, 0)
    assert.deepStrictEqual(summary(drain(buffer)), ["PublisherUp:p", "Resync:9"])
    buffer.offerEvent(event(10))
    assert.deepStrictEqual(summary(drain(buffer)), [10])
    assert.deepStrictEqual(counters, { dropped: 9, resyncs: 1 })
    return Promise.resolve().then(() => assert.strictEqual(resynced, 1))
  })

  it("wakes a waiting consumer and ends", () => {
    const buffer = new SubscriptionBuffer<number>(3, "drop-oldest", () => {})
    let woken = 0
    buffer.wait(() => woken++)
    buffer.offerEvent(event(1))
    buffer.offerEvent(event(2))
    assert.strictEqual(woken, 1)
    buffer.end()
    buffer.offerEvent(event(3))
    assert.deepStrictEqual(summary(drain(buffer)), [1, 2])
    assert.isTrue(buffer.isEnded)
  })
})

describe("topic wire and helpers", () => {
  it("round-trips EVENTS and BEAT envelopes and rejects malformed ones", () => {
    const events = TopicWire.decode(
      TopicWire.encodeEvents("pub", 123, 41, [
        ["k", { a: 1 }],
        [null, 2],
      ]),
    )
    assert.deepStrictEqual(events, [
      1,
      20,
      "pub",
      123,
      41,
      [
        ["k", { a: 1 }],
        [null, 2],
      ],
    ])
    const beat = TopicWire.decode(TopicWire.encodeBeat("pub", 123, 42, 500, true))
    assert.deepStrictEqual(beat, [1, 21, "pub", 123, 42, 500, true])
    // `closing` may be left out.
    assert.deepStrictEqual(TopicWire.decode(new Uint8Array([0x96, 1, 21, 0xa1, 0x70, 7, 3, 0xcd, 0x01, 0xf4])), [
      1,
      21,
      "p",
      7,
      3,
      500,
      false,
    ])
    assert.isUndefined(TopicWire.decode(new Uint8Array([0xc1])))
    assert.isUndefined(TopicWire.decode(TopicWire.encodeEvents("pub", 1, 0, [])))
    assert.isUndefined(TopicWire.decode(new Uint8Array([0x93, 1, 22, 0xa1, 0x70])))
    assert.isFalse(TopicWire.isWireEvent([3, 1]))
    assert.strictEqual(TopicWire.frameOf("prices"), "zt/prices/")
  })

  it("key filters and the last-value cache agree on what matches; the cache evicts the least recent key", () => {
    const filter = KeyFilter.make(["EUR/USD"], "GBP")
    assert.isTrue(filter?.("EUR/USD"))
    assert.isTrue(filter?.("GBP/JPY"))
    assert.isFalse(filter?.("EUR/JPY"))
    assert.isFalse(filter?.(null))
    assert.isUndefined(KeyFilter.make(undefined, undefined))
    const cache = new LastValueCache(2)
    cache.set("a", 1, "a1")
    cache.set("b", 2, "b2")
    cache.set("a", 3, "a3")
    cache.set("c", 4, "c4") // evicts b, the least recently updated
    assert.deepStrictEqual(cache.snapshot(undefined), [
      ["a", 3, "a3"],
      ["c", 4, "c4"],
    ])
    assert.strictEqual(cache.evictions, 1)
    assert.deepStrictEqual(cache.snapshot(KeyFilter.make(["c"], undefined)), [["c", 4, "c4"]])
  })
})
