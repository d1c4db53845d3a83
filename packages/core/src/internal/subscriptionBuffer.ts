/**
 * The bounded queue between a subscription and its consumer, where the slow-subscriber policy is applied.
 * `capacity` bounds the events waiting; notices (gaps, liveness, snapshot ends) are never lost: when they cannot
 * be queued where they belong they are merged per publisher (loss counts added, the latest liveness notice kept)
 * and emitted at the right place in the order, so the memory they take is bounded by the number of publishers.
 *
 * - `drop-oldest`: a new event evicts the oldest one; evicted events become a `Dropped` gap emitted first.
 * - `drop-newest`: a new event is refused while full; refused events become a `Dropped` gap emitted before the
 *   next event that gets in, or when the consumer has taken everything.
 * - `disconnect-and-resync`: an event that finds the buffer full discards every buffered event and starts a
 *   resync: events are discarded until the consumer has taken what is left, then one `Resync` gap per publisher
 *   says how many were discarded and `onResync` runs (the subscription fetches fresh snapshots).
 *
 * Synchronous and single-threaded: the subscription offers from the receive loop, the consumer takes from its
 * stream's pull, and `wait` registers the one consumer's wake-up.
 */
import type * as Topic from "../Topic.ts"

interface Loss {
  readonly publisher: string
  readonly reason: Topic.GapReason
  epoch: number
  missed: number
  previousEpoch: number | undefined
}

/**
 * Losses and liveness notices of publishers, merged while they cannot be queued. Plain arrays searched linearly:
 * there are as many entries as publishers (a handful), and under a full buffer this runs once per dropped event.
 */
class Pending {
  private losses: Array<Loss> = []
  private status: Array<Topic.Notice> = []

  get empty(): boolean {
    return this.losses.length === 0 && this.status.length === 0
  }

  addLoss(
    publisher: string,
    epoch: number,
    reason: Topic.GapReason,
    missed: number,
    previousEpoch: number | undefined,
  ): void {
    for (const known of this.losses) {
      if (known.publisher !== publisher || known.reason !== reason) continue
      known.missed += missed
      known.epoch = epoch
      known.previousEpoch ??= previousEpoch
      return
    }
    this.losses.push({ publisher, reason, epoch, missed, previousEpoch })
  }

  addNotice(notice: Topic.Notice): void {
    if (notice._tag === "Gap") {
      this.addLoss(notice.publisher, notice.epoch, notice.reason, notice.missed, notice.previousEpoch)
      return
    }
    // Only the latest liveness or sync state of a publisher still matters to a consumer that was behind.
    this.status = this.status.filter((known) => known.publisher !== notice.publisher)
    this.status.push(notice)
  }

  drainInto<A>(out: Array<Topic.Message<A>>): void {
    if (this.losses.length > 0) {
      for (const loss of this.losses) {
        out.push({
          _tag: "Gap",
          publisher: loss.publisher,
          epoch: loss.epoch,
          missed: loss.missed,
          reason: loss.reason,
          previousEpoch: loss.previousEpoch,
        })
      }
      this.losses = []
    }
    if (this.status.length > 0) {
      for (const notice of this.status) out.push(notice)
      this.status = []
    }
  }
}

const COMPACT_AFTER = 4096

/** Counters a buffer updates. */
export interface BufferCounters {
  dropped: number
  resyncs: number
}

/** A subscription's bounded buffer. */
export class SubscriptionBuffer<A> {
  private items: Array<Topic.Message<A> | undefined> = []
  private head = 0
  private events = 0
  /** Evicted by drop-oldest: emitted before everything queued. */
  private readonly evicted = new Pending()
  /** Refused by drop-newest, or notices during a resync: emitted before the next queued item. */
  private readonly refused = new Pending()
  /** Discarded by a resync: emitted when it ends. */
  private readonly discarded = new Pending()
  private resyncing = false
  private waiter: (() => void) | undefined = undefined
  private ended = false

  private readonly capacity: number
  private readonly policy: Topic.SlowSubscriberPolicy
  private readonly onResync: () => void
  /** Where drops (events dropped or discarded by the policy) and resyncs are counted. */
  private readonly counters: BufferCounters

  constructor(
    capacity: number,
    policy: Topic.SlowSubscriberPolicy,
    onResync: () => void,
    counters: BufferCounters = { dropped: 0, resyncs: 0 },
  ) {
    this.capacity = capacity
    this.policy = policy
    this.onResync = onResync
    this.counters = counters
  }

  /** Events waiting for the consumer. */
  get size(): number {
    return this.events
  }

  /** Whether `end` was called. */
  get isEnded(): boolean {
    return this.ended
  }

  /** Queues an event, applying the policy when the buffer is full. */
  offerEvent(event: Topic.Event<A>): void {
    if (this.ended) return
    switch (this.policy) {
      case "drop-oldest":
        if (this.events >= this.capacity) this.evictOldestEvent()
        break
      case "drop-newest":
        if (this.events >= this.capacity) {
          this.counters.dropped++
          this.refused.addLoss(event.publisher, event.epoch, "Dropped", 1, undefined)
          return
        }
        break
      case "disconnect-and-resync":
        if (!this.resyncing && this.events >= this.capacity) this.startResync()
        if (this.resyncing) {
          this.counters.dropped++
          this.discarded.addLoss(event.publisher, event.epoch, "Resync", 1, undefined)
          return
        }
        break
    }
    this.push(event)
  }

  /** Queues a notice; never lost, merged when it cannot be queued in place. */
  offerNotice(notice: Topic.Notice): void {
    if (this.ended) return
    if (this.resyncing || (this.policy === "drop-newest" && this.events >= this.capacity)) {
      this.refused.addNotice(notice)
      return
    }
    this.push(notice)
  }

  /** Takes up to `max` messages in order, or `undefined` when there is nothing to take. */
  take(max: number): Array<Topic.Message<A>> | undefined {
    const out: Array<Topic.Message<A>> = []
    this.evicted.drainInto(out)
    const items = this.items
    while (this.head < items.length && out.length < max) {
      const item = items[this.head]!
      items[this.head++] = undefined
      if (item._tag === "Event") this.events--
      out.push(item)
    }
    if (this.head >= items.length) {
      this.items = []
      this.head = 0
      if (this.resyncing) {
        // The consumer has taken what was left: the resync ends here.
        this.resyncing = false
        this.discarded.drainInto(out)
        queueMicrotask(this.onResync)
      }
      this.refused.drainInto(out)
    } else if (this.head > COMPACT_AFTER && this.head * 2 > items.length) {
      this.items = items.slice(this.head)
      this.head = 0
    }
    return out.length > 0 ? out : undefined
  }

  /** Calls `wake` once when something can be taken (or the buffer ended); `undefined` cancels. One waiter. */
  wait(wake: (() => void) | undefined): void {
    this.waiter = wake
  }

  /** Ends the buffer: what is queued can still be taken, nothing more is accepted. */
  end(): void {
    this.ended = true
    this.wake()
  }

  private push(item: Topic.Message<A>): void {
    if (!this.refused.empty) this.refused.drainInto(this.items as Array<Topic.Message<A>>)
    this.items.push(item)
    if (item._tag === "Event") this.events++
    this.wake()
  }

  private wake(): void {
    const waiter = this.waiter
    if (waiter === undefined) return
    this.waiter = undefined
    waiter()
  }

  private evictOldestEvent(): void {
    const items = this.items
    while (this.head < items.length) {
      const item = items[this.head]!
      items[this.head++] = undefined
      if (item._tag === "Event") {
        this.events--
        this.counters.dropped++
        this.evicted.addLoss(item.publisher, item.epoch, "Dropped", 1, undefined)
        return
      }
      this.evicted.addNotice(item)
    }
  }

  private startResync(): void {
    this.counters.resyncs++
    this.resyncing = true
    const kept: Array<Topic.Message<A>> = []
    for (let i = this.head; i < this.items.length; i++) {
      const item = this.items[i]!
      if (item._tag !== "Event") {
        kept.push(item)
        continue
      }
      this.counters.dropped++
      this.discarded.addLoss(item.publisher, item.epoch, "Resync", 1, undefined)
    }
    this.items = kept
    this.head = 0
    this.events = 0
    this.wake()
  }
}
