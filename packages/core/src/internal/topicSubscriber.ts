/**
 * One subscription (one `subscribe` stream): for every publisher it hears, a gap tracker, its liveness as this
 * subscription reported it, and, for snapshot subscriptions, the synchronisation with the publisher's last-value
 * cache. It turns EVENTS and BEAT envelopes into events and notices in its `SubscriptionBuffer`.
 *
 * Snapshot boundary (docs/TOPICS.md): on first contact with a publisher (or after it restarted, or after a resync)
 * live messages from it are held in `pending` while the snapshot is fetched. The snapshot says "values as of
 * epoch E, seq S"; its entries are emitted, then `Synced`, then the held messages go through the tracker with
 * baseline S, which skips everything the snapshot covers and reports a hole after it. Holding starts with a message
 * already received from the publisher, so the subscription is in effect before the snapshot is taken and nothing
 * between the snapshot and the live stream can be missed silently. `pending` is bounded by `bufferSize` events:
 * past it the held messages are dropped and the snapshot fetched again (the new one covers them).
 *
 * Synchronous on the receive path; only snapshot fetches run as fibers (`fork`).
 */
import { Effect, type Result } from "effect"
import type { CodecIssue } from "../Contract.ts"
import type * as Topic from "../Topic.ts"
import { GapTracker } from "./gapTracker.ts"
import type { KeyFilter } from "./keyFilter.ts"
import type { CacheEntry } from "./lastValueCache.ts"
import type { SubscriptionBuffer } from "./subscriptionBuffer.ts"
import type { SnapshotRequest } from "./topicControl.ts"
import * as TopicWire from "./topicWire.ts"

/** Subscriber-side counters (part of the node's topic metrics). */
export interface SubscriberCounters {
  eventsDelivered: number
  gaps: number
  missed: number
  restarts: number
  invalid: number
  skipped: number
  snapshotsFetched: number
  snapshotFailures: number
}

/** A snapshot as fetched: every chunk merged. */
export interface Snapshot {
  readonly epoch: number
  readonly seq: number
  readonly entries: ReadonlyArray<CacheEntry>
}

/** Decodes the events of one EVENTS envelope at most once, whatever the number of subscriptions. */
export interface BatchDecoder<A> {
  readonly decode: (index: number) => Result.Result<A, CodecIssue>
}

/** What a subscription needs from its node. */
export interface SubscriptionHost {
  /** Fetches a publisher's snapshot for this subscription's filter. */
  readonly fetchSnapshot: (publisher: string, request: SnapshotRequest) => Effect.Effect<Snapshot, unknown>
  /** Whether a publisher is still known (discovered, not left); a failing sync retries only while it is. */
  readonly knows: (publisher: string) => boolean
  /** Runs a fiber for the subscription's lifetime. */
  readonly fork: (effect: Effect.Effect<void>) => void
  readonly counters: SubscriberCounters
}

/** Resolved per-subscription settings. */
export interface SubscriptionSettings {
  readonly filter: KeyFilter
  readonly request: SnapshotRequest
  readonly snapshot: boolean
  readonly bufferSize: number
}

/** A subscription's view of one publisher. */
interface View {
  readonly publisher: string
  readonly tracker: GapTracker
  /** Whether `PublisherUp` was emitted and no `PublisherDown` since. */
  up: boolean
  syncing: boolean
  pending: Array<TopicWire.TopicEnvelope>
  pendingEvents: number
  /** Held messages were dropped while a snapshot was being fetched: fetch again. */
  refetch: boolean
}

const SYNC_RETRY_MIN_MS = 100
const SYNC_RETRY_MAX_MS = 2000

/** One subscription. */
export class Subscription<A> {
  private readonly views = new Map<string, View>()
  private closed = false

  readonly topic: Topic.Topic<A>
  private readonly settings: SubscriptionSettings
  private readonly buffer: SubscriptionBuffer<A>
  private readonly host: SubscriptionHost

  constructor(
    topic: Topic.Topic<A>,
    settings: SubscriptionSettings,
    buffer: SubscriptionBuffer<A>,
    host: SubscriptionHost,
  ) {
    this.topic = topic
    this.settings = settings
    this.buffer = buffer
    this.host = host
  }

  /** Stops all processing; fibers end with the subscription's scope. */
  close(): void {
    this.closed = true
  }

  // ---- live messages -----------------------------------------------------------------------------------------

  /** An EVENTS envelope from the feed. */
  onEvents(envelope: TopicWire.EventsEnvelope, decoder: BatchDecoder<A>): void {
    const view = this.view(envelope[2])
    if (view.syncing) return this.hold(view, envelope)
    const [, , publisher, epoch, firstSeq, events] = envelope
    const tracker = view.tracker
    if (this.settings.snapshot && (!tracker.started || tracker.isNewEpoch(epoch))) {
      this.up(view, epoch)
      if (tracker.started) this.restarted(publisher, epoch, tracker.epoch, firstSeq - 1)
      return this.startSync(view, envelope)
    }
    const skip = tracker.range(epoch, firstSeq, events.length)
    if (skip === events.length && tracker.epoch !== epoch) return // a straggler of a superseded epoch
    this.up(view, epoch)
    this.host.counters.skipped += skip
    if (tracker.previousEpoch >= 0) this.restarted(publisher, epoch, tracker.previousEpoch, tracker.missed)
    else if (tracker.missed > 0) this.lost(publisher, epoch, tracker.missed)
    const filter = this.settings.filter
    let invalid = 0
    for (let i = skip; i < events.length; i++) {
      const event = events[i]
      if (!TopicWire.isWireEvent(event)) {
        invalid++
        continue
      }
      const key = event[0]
      if (filter !== undefined && !filter(key)) continue
      const decoded = decoder.decode(i)
      if (decoded._tag === "Failure") {
        invalid++
        continue
      }
      this.host.counters.eventsDelivered++
      this.buffer.offerEvent({
        _tag: "Event",
        publisher,
        epoch,
        seq: firstSeq + i,
        key: key ?? undefined,
        value: decoded.success,
        fromSnapshot: false,
      })
    }
    if (invalid > 0) this.invalid(publisher, epoch, invalid)
  }

  /** A BEAT envelope from the feed. */
  onBeat(envelope: TopicWire.BeatEnvelope): void {
    const view = this.view(envelope[2])
    if (view.syncing) return this.hold(view, envelope)
    // A closing heartbeat closes what is up; it never brings a publisher up (nor starts a snapshot).
    if (envelope[6] && !view.up) return
    const [, , publisher, epoch, lastSeq] = envelope
    const tracker = view.tracker
    if (this.settings.snapshot && (!tracker.started || tracker.isNewEpoch(epoch))) {
      this.up(view, epoch)
      if (tracker.started) this.restarted(publisher, epoch, tracker.epoch, lastSeq)
      return this.startSync(view, envelope)
    }
    if (!tracker.beat(epoch, lastSeq)) return
    this.up(view, epoch)
    if (tracker.previousEpoch >= 0) this.restarted(publisher, epoch, tracker.previousEpoch, tracker.missed)
    else if (tracker.missed > 0) this.lost(publisher, epoch, tracker.missed)
  }

  /** The feed declared a publisher down. */
  onDown(publisher: string, reason: Topic.PublisherDown["reason"]): void {
    const view = this.views.get(publisher)
    if (view === undefined || !view.up) return
    view.up = false
    this.buffer.offerNotice({ _tag: "PublisherDown", publisher, epoch: view.tracker.epoch, reason })
  }

  /** The buffer finished a resync: synchronise again with every publisher (snapshot subscriptions only). */
  onResync(): void {
    if (this.closed || !this.settings.snapshot) return
    for (const view of this.views.values()) {
      if (!view.syncing && view.tracker.started) this.startSync(view, undefined)
    }
  }

  // ---- notices -----------------------------------------------------------------------------------------------

  private view(publisher: string): View {
    let view = this.views.get(publisher)
    if (view === undefined) {
      view = {
        publisher,
        tracker: new GapTracker(),
        up: false,
        syncing: false,
        pending: [],
        pendingEvents: 0,
        refetch: false,
      }
      this.views.set(publisher, view)
    }
    return view
  }

  private up(view: View, epoch: number): void {
    if (view.up) return
    view.up = true
    this.buffer.offerNotice({ _tag: "PublisherUp", publisher: view.publisher, epoch })
  }

  private gap(publisher: string, epoch: number, missed: number, reason: Topic.GapReason, previousEpoch?: number) {
    this.host.counters.gaps++
    this.buffer.offerNotice({ _tag: "Gap", publisher, epoch, missed, reason, previousEpoch })
  }

  private lost(publisher: string, epoch: number, missed: number): void {
    this.host.counters.missed += missed
    this.gap(publisher, epoch, missed, "Lost")
  }

  private restarted(publisher: string, epoch: number, previousEpoch: number, missed: number): void {
    this.host.counters.restarts++
    this.host.counters.missed += missed
    this.gap(publisher, epoch, missed, "Restarted", previousEpoch)
  }

  private invalid(publisher: string, epoch: number, count: number): void {
    this.host.counters.invalid += count
    this.gap(publisher, epoch, count, "Invalid")
  }

  // ---- snapshot synchronisation ------------------------------------------------------------------------------

  private hold(view: View, envelope: TopicWire.TopicEnvelope): void {
    view.pending.push(envelope)
    if (envelope[1] !== TopicWire.KIND_EVENTS) return
    view.pendingEvents += envelope[5].length
    if (view.pendingEvents > this.settings.bufferSize) {
      // Bounded: drop what is held; the snapshot fetched next is taken later, so it covers all of it.
      view.pending = []
      view.pendingEvents = 0
      view.refetch = true
    }
  }

  private startSync(view: View, first: TopicWire.TopicEnvelope | undefined): void {
    view.syncing = true
    view.pending = first === undefined ? [] : [first]
    view.pendingEvents = first !== undefined && first[1] === TopicWire.KIND_EVENTS ? first[5].length : 0
    view.refetch = false
    this.host.fork(this.syncLoop(view))
  }

  private syncLoop(view: View): Effect.Effect<void> {
    return Effect.gen({ self: this }, function* () {
      let delay = SYNC_RETRY_MIN_MS
      while (!this.closed && this.views.get(view.publisher) === view) {
        this.host.counters.snapshotsFetched++
        const result = yield* Effect.result(this.host.fetchSnapshot(view.publisher, this.settings.request))
        if (this.closed) return
        if (result._tag === "Success") {
          if (this.finishSync(view, result.success)) return
          continue
        }
        this.host.counters.snapshotFailures++
        if (!this.host.knows(view.publisher)) return this.abandonSync(view)
        yield* Effect.sleep(delay)
        delay = Math.min(delay * 2, SYNC_RETRY_MAX_MS)
      }
    })
  }

  /** Applies a snapshot; false when it must be fetched again. */
  private finishSync(view: View, snapshot: Snapshot): boolean {
    if (view.refetch) {
      view.refetch = false
      return false
    }
    // Held messages of a later epoch: the publisher restarted after this snapshot was taken.
    if (view.pending.some((envelope) => envelope[3] > snapshot.epoch)) return false
    const tracker = view.tracker
    tracker.baseline(snapshot.epoch, snapshot.seq)
    for (const envelope of view.pending) if (envelope[3] !== snapshot.epoch) tracker.retire(envelope[3])
    const filter = this.settings.filter
    const codec = this.topic.codec
    let emitted = 0
    let invalid = 0
    for (const [key, seq, body] of snapshot.entries) {
      if (filter !== undefined && !filter(key)) continue
      const decoded = codec.decode(body)
      if (decoded._tag === "Failure") {
        invalid++
        continue
      }
      emitted++
      this.host.counters.eventsDelivered++
      this.buffer.offerEvent({
        _tag: "Event",
        publisher: view.publisher,
        epoch: snapshot.epoch,
        seq,
        key: this.topic.key === undefined ? undefined : key,
        value: decoded.success,
        fromSnapshot: true,
      })
    }
    if (invalid > 0) this.invalid(view.publisher, snapshot.epoch, invalid)
    this.buffer.offerNotice({
      _tag: "Synced",
      publisher: view.publisher,
      epoch: snapshot.epoch,
      seq: snapshot.seq,
      entries: emitted,
    })
    this.replay(view)
    return true
  }

  /** The publisher is gone: deliver what was held without a snapshot, from the first held message on. */
  private abandonSync(view: View): void {
    const first = view.pending[0]
    if (first !== undefined && !view.tracker.started) {
      view.tracker.baseline(first[3], first[1] === TopicWire.KIND_EVENTS ? first[4] - 1 : first[4])
    }
    this.replay(view)
  }

  private replay(view: View): void {
    const held = view.pending
    view.syncing = false
    view.pending = []
    view.pendingEvents = 0
    const codec = this.topic.codec
    for (const envelope of held) {
      if (envelope[1] === TopicWire.KIND_EVENTS) {
        const events = envelope[5]
        this.onEvents(envelope, { decode: (i) => codec.decode((events[i] as TopicWire.WireEvent)[1]) })
      } else {
        this.onBeat(envelope)
      }
    }
  }
}
