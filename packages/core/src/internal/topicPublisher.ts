/**
 * The publishing side of one topic on one node: assigns sequence numbers, keeps the last-value cache, coalesces
 * the events of one event-loop turn into EVENTS envelopes (at most `maxBatchEvents` each) and sends heartbeats.
 *
 * Publishing never waits for subscribers: the transport's XPUB drops at a slow subscriber's high-water mark
 * (that subscriber then sees a `Lost` gap), and a full publish queue is a counted, reported error. A heartbeat
 * first flushes the events queued before it, so its `lastSeq` never runs ahead of the events on the wire.
 */
import type { TransportError } from "@zactor/transport"
import * as Topic from "../Topic.ts"
import * as KeyFilter from "./keyFilter.ts"
import { LastValueCache } from "./lastValueCache.ts"
import type { Description, SnapshotChunk, SnapshotRequest } from "./topicControl.ts"
import { SNAPSHOT_CHUNK } from "./topicControl.ts"
import * as TopicWire from "./topicWire.ts"

/** Publisher-side counters (part of the node's topic metrics). */
export interface PublisherCounters {
  eventsPublished: number
  batchesPublished: number
  heartbeatsSent: number
  publishDropped: number
  snapshotsServed: number
  cacheEvictions: number
}

/** What a topic publisher needs from its node. */
export interface PublisherHost {
  readonly nodeId: string
  readonly epoch: number
  readonly maxBatchEvents: number
  /** Publishes one payload on a transport topic; the error when the transport refuses it. */
  readonly send: (frame: string, payload: Uint8Array) => TransportError | undefined
  /** The XPUB endpoint. */
  readonly endpoint: () => string
  readonly counters: PublisherCounters
}

/** Requested heartbeats closer together than this are skipped (a burst of new subscribers costs one). */
const MIN_REQUESTED_BEAT_MS = 10

/** One topic's publisher on this node, shared by every `publisher` handle for it. */
export class TopicPublisher<A> {
  private seq = 0
  private pending: Array<TopicWire.WireEvent> = []
  private pendingFirst = 1
  private scheduled = false
  private lastBeatAt = 0
  private closedFlag = false
  readonly frame: string
  readonly cache: LastValueCache | undefined
  /** Open `publisher` handles. */
  refs = 0

  readonly topic: Topic.Topic<A>
  readonly heartbeatIntervalMs: number
  private readonly host: PublisherHost
  private readonly flushNow = (): void => {
    this.scheduled = false
    this.flush()
  }

  /** `lastSeq`: where an earlier publisher of this topic in this process (this epoch) stopped; 0 for none. */
  constructor(topic: Topic.Topic<A>, host: PublisherHost, heartbeatIntervalMs: number, lastSeq = 0) {
    this.seq = lastSeq
    this.topic = topic
    this.host = host
    this.heartbeatIntervalMs = heartbeatIntervalMs
    this.frame = TopicWire.frameOf(topic.name)
    this.cache = topic.lastValueCache === undefined ? undefined : new LastValueCache(topic.lastValueCache.maxKeys)
  }

  /** The last sequence number assigned. */
  get lastSeq(): number {
    return this.seq
  }

  get closed(): boolean {
    return this.closedFlag
  }

  /** Publishes an event: validates, numbers, caches and queues it. */
  offer(value: A): Topic.TopicError | undefined {
    if (this.closedFlag) {
      return new Topic.TopicError({ reason: "Closed", message: "the publisher is closed", topic: this.topic.name })
    }
    const encoded = this.topic.codec.encode(value)
    if (encoded._tag === "Failure") {
      return new Topic.TopicError({
        reason: "InvalidEvent",
        message: `${this.topic.name}: event ${encoded.failure.message}`,
        topic: this.topic.name,
      })
    }
    const key = this.topic.key === undefined ? null : this.topic.key(value)
    const seq = ++this.seq
    if (this.pending.length === 0) this.pendingFirst = seq
    this.pending.push([key, encoded.success])
    this.host.counters.eventsPublished++
    if (this.cache !== undefined) {
      const evictions = this.cache.evictions
      this.cache.set(key ?? "", seq, encoded.success)
      this.host.counters.cacheEvictions += this.cache.evictions - evictions
    }
    if (this.pending.length >= this.host.maxBatchEvents) return this.flush()
    if (!this.scheduled) {
      this.scheduled = true
      queueMicrotask(this.flushNow)
    }
    return undefined
  }

  /** Sends the queued events now. Returns the error when the transport refused them (they are lost and counted). */
  flush(): Topic.TopicError | undefined {
    if (this.pending.length === 0) return undefined
    const events = this.pending
    this.pending = []
    return this.sendEvents(this.pendingFirst, events)
  }

  private sendEvents(firstSeq: number, events: ReadonlyArray<TopicWire.WireEvent>): Topic.TopicError | undefined {
    const host = this.host
    const error = host.send(this.frame, TopicWire.encodeEvents(host.nodeId, host.epoch, firstSeq, events))
    if (error === undefined) {
      host.counters.batchesPublished++
      return undefined
    }
    if (error.reason === "MessageTooLarge" && events.length > 1) {
      // Large events: split the run in two, each half keeps its own first sequence number.
      const half = events.length >> 1
      return this.sendEvents(firstSeq, events.slice(0, half)) ?? this.sendEvents(firstSeq + half, events.slice(half))
    }
    // Lost for good: subscribers see the hole in the sequence numbers as a `Lost` gap, and we count it here.
    host.counters.publishDropped += events.length
    return new Topic.TopicError({
      reason: error.reason === "MessageTooLarge" ? "InvalidEvent" : error.reason === "Closed" ? "Closed" : "Overloaded",
      message: `${this.topic.name}: ${events.length} event(s) not published: ${error.message}`,
      topic: this.topic.name,
      cause: error,
    })
  }

  /** Sends a heartbeat (after the queued events). `requested` ones are rate-limited. */
  beat(options: { readonly closing?: boolean; readonly requested?: boolean } = {}): void {
    const now = Date.now()
    if (options.requested === true && now - this.lastBeatAt < MIN_REQUESTED_BEAT_MS) return
    this.lastBeatAt = now
    this.flush()
    const payload = TopicWire.encodeBeat(
      this.host.nodeId,
      this.host.epoch,
      this.seq,
      this.heartbeatIntervalMs,
      options.closing === true,
    )
    if (this.host.send(this.frame, payload) === undefined) this.host.counters.heartbeatsSent++
  }

  /** Stops publishing: flushes, announces the end with a closing heartbeat, refuses further events. */
  close(): void {
    if (this.closedFlag) return
    this.beat({ closing: true })
    this.closedFlag = true
  }

  /** The `describe` answer; a requested heartbeat is sent too. */
  describe(beat: boolean): Description {
    if (beat) this.beat({ requested: true })
    return {
      publisher: this.host.nodeId,
      epoch: this.host.epoch,
      endpoint: this.host.endpoint(),
      heartbeatIntervalMs: this.heartbeatIntervalMs,
      lastValueCache: this.cache !== undefined,
      lastSeq: this.seq,
    }
  }

  /** The cache's matching entries as of now, in chunks; at least one chunk, so the epoch and seq always arrive. */
  snapshot(request: SnapshotRequest): Array<SnapshotChunk> {
    this.host.counters.snapshotsServed++
    const filter = KeyFilter.make(request.keys ?? undefined, request.keyPrefix ?? undefined)
    const entries = this.cache?.snapshot(filter) ?? []
    const epoch = this.host.epoch
    const seq = this.seq
    const chunks: Array<SnapshotChunk> = []
    for (let i = 0; i < entries.length; i += SNAPSHOT_CHUNK) {
      chunks.push({ epoch, seq, entries: entries.slice(i, i + SNAPSHOT_CHUNK) })
    }
    if (chunks.length === 0) chunks.push({ epoch, seq, entries: [] })
    return chunks
  }
}
