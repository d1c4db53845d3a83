/**
 * One destination's outbound queue with a single writer: payloads offered during one event-loop turn are
 * coalesced into batch frames and written by one drain loop, so zeromq.js never sees two sends in flight on a
 * destination and per-destination order is kept even when a write is refused and retried.
 *
 * A payload offered with `more` (the sender expects more for this destination shortly: a server whose other calls
 * from this caller are still running) waits for the end of the event-loop iteration (`setImmediate`) instead of
 * the end of the turn, so that answers finished by separate callbacks leave together. Without it, a server whose
 * handlers wait on anything (a timer, I/O, a fiber yield) answered every call in a ZeroMQ message of its own:
 * measured with handlers that yield once, 32 calls in flight, 19k calls/s and batches of 1 both ways. A plain
 * offer still leaves at the end of its turn and takes the waiting ones with it, so one call in flight pays no
 * extra hop.
 *
 * When the batch is written adapts to the load, through a `WriteGate` shared by a transport's outboxes:
 * - While the transport reads a streak of messages that were already waiting (its peers are busy sending), the
 *   gate holds writes, so that the answers to the whole streak leave together in full batches rather than one
 *   batch per message read; a full batch leaves at once, and the streak's length is bounded.
 * - When the transport's input has run dry (its peers wait for answers), the first `earlyBatchMessages` payloads
 *   of a turn leave as soon as they are queued, before the turn ends: the peer starts on them while the rest are
 *   produced, instead of both sides taking turns at being idle (docs/TRANSPORT.md has the measurements). Under
 *   load they stay off: they would split every later turn into smaller batches.
 *
 * Bounded by count and bytes (offer refuses beyond), and in time: while the destination refuses writes (not
 * connected, or its high-water mark is reached) the drain retries with a short backoff, and once it has been
 * blocked for `sendTimeoutMs` everything queued is dropped and reported.
 */
import * as BatchFrame from "../BatchFrame.ts"
import type { SendFailureReason } from "../TransportEvent.ts"
import type { MutableTransportMetrics } from "../TransportMetrics.ts"

/** Limits an outbox applies; a subset of the resolved transport options. */
export interface OutboxLimits {
  readonly maxBatchMessages: number
  /** Payloads queued in one turn that leave at once when not held (see the module doc); 0 turns it off. */
  readonly earlyBatchMessages: number
  readonly maxBatchBytes: number
  readonly maxQueuedMessages: number
  readonly maxQueuedBytes: number
  readonly sendTimeoutMs: number
}

/** How a write failed, as the sink classifies its socket's error. */
export type WriteFailure = "Busy" | "Unreachable" | "Closed"

/** Where an outbox writes, and whom it tells about drops. */
export interface OutboxSink {
  /** Writes one batch frame; rejects when the destination cannot take it now. */
  readonly write: (frame: Buffer) => Promise<void>
  /** Classifies a rejection of `write`. */
  readonly classify: (error: unknown) => WriteFailure
  /** Called when queued payloads are dropped. */
  readonly onDropped: (messages: number, reason: SendFailureReason) => void
}

/** Holds the writes of a transport's outboxes while it reads a streak of waiting messages. */
export interface WriteGate {
  /** Whether writes are held now. */
  readonly holding: boolean
  /**
   * Whether an early batch may leave now: the transport's input ran dry before and after the message being
   * answered, so its peers wait for answers rather than keep it busy (early batches under load would only
   * split every later turn into smaller batches).
   */
  readonly earlyAllowed: boolean
  /** Registers an outbox to drain when the hold ends. */
  defer(outbox: Outbox): void
}

const RETRY_MIN_MS = 1
const RETRY_MAX_MS = 50
const COMPACT_AFTER = 4096
/** `queueMicrotask` makes an AsyncResource per call; a settled promise schedules the same microtask without one. */
const RESOLVED = Promise.resolve()

/** A bounded, batching, single-writer outbound queue. */
export class Outbox {
  private items: Array<Uint8Array | undefined> = []
  private head = 0
  private bytes = 0
  /** Whether a drain is scheduled, and when: at the end of this turn, or of this event-loop iteration. */
  private scheduled: "no" | "turn" | "iteration" = "no"
  private draining = false
  /** The drain running now, if any: `close` waits for it. */
  private currentDrain: Promise<void> | undefined = undefined
  private closed = false
  private blockedSince = 0
  private retryDelayMs = RETRY_MIN_MS
  private retryTimer: ReturnType<typeof setTimeout> | undefined = undefined
  private readonly drainNow = (): void => {
    this.scheduled = "no"
    void this.drain()
  }
  private readonly drainLater = (): void => {
    // A plain offer may have drained everything since (and a later `more` scheduled again: harmless).
    if (this.scheduled !== "iteration") return
    this.scheduled = "no"
    void this.drain()
  }

  private readonly limits: OutboxLimits
  private readonly sink: OutboxSink
  private readonly metrics: MutableTransportMetrics
  /** The 64-byte key-binding proof section put in every batch, or undefined. */
  private readonly proof: Uint8Array | undefined
  private readonly gate: WriteGate | undefined

  constructor(
    limits: OutboxLimits,
    sink: OutboxSink,
    metrics: MutableTransportMetrics,
    proof: Uint8Array | undefined,
    gate?: WriteGate,
  ) {
    this.limits = limits
    this.sink = sink
    this.metrics = metrics
    this.proof = proof
    this.gate = gate
  }

  /** Payloads waiting to be written. */
  get size(): number {
    return this.items.length - this.head
  }

  /**
   * Queues a payload; false when the queue bound (count or bytes) would be exceeded. With `more`, it may wait
   * for the end of the event-loop iteration (see the module doc).
   */
  offer(payload: Uint8Array, more = false): boolean {
    if (this.closed) return false
    if (this.size >= this.limits.maxQueuedMessages || this.bytes + payload.length > this.limits.maxQueuedBytes) {
      return false
    }
    this.items.push(payload)
    this.bytes += payload.length
    this.metrics.queuedMessages++
    this.metrics.messagesSent++
    if (this.draining || this.retryTimer !== undefined) return true
    const size = this.size
    const gate = this.gate
    const holding = gate?.holding === true
    // A full batch has nothing to wait for; an early one leaves now when the peers are waiting (see WriteGate).
    if (
      size >= this.limits.maxBatchMessages ||
      (size === this.limits.earlyBatchMessages && (gate === undefined || gate.earlyAllowed))
    ) {
      void this.drain()
    } else if (holding) {
      this.gate!.defer(this)
    } else if (more) {
      if (this.scheduled === "no") {
        this.scheduled = "iteration"
        setImmediate(this.drainLater)
      }
    } else {
      this.scheduleTurn()
    }
    return true
  }

  /** Drains at the end of this turn (a microtask), unless that is scheduled already. */
  private scheduleTurn(): void {
    if (this.scheduled === "turn") return
    this.scheduled = "turn"
    RESOLVED.then(this.drainNow)
  }

  /** Drains what was queued while writes were held (see `WriteGate`). */
  release(): void {
    if (!this.draining && this.retryTimer === undefined && this.size > 0) this.scheduleTurn()
  }

  /** Retries at once, e.g. when the destination has just connected. */
  kick(): void {
    this.cancelRetry()
    if (!this.draining && this.size > 0) this.scheduleTurn()
  }

  /** Writes whatever can be written now, then drops the rest; no further offers are taken. */
  async close(): Promise<void> {
    if (this.closed) return
    // A batch being written is followed by what was queued behind it, not dropped.
    if (this.currentDrain !== undefined) await this.currentDrain
    // A destination that refused the last write gets one more try now rather than at its retry.
    this.cancelRetry()
    await this.drain(true)
    this.closed = true
    this.cancelRetry()
    this.dropAll("Closed")
  }

  /** Drops everything queued with the given reason. */
  dropAll(reason: SendFailureReason): void {
    const dropped = this.size
    this.items = []
    this.head = 0
    this.bytes = 0
    this.blockedSince = 0
    if (dropped > 0) {
      this.metrics.queuedMessages -= dropped
      this.metrics.sendFailed += dropped
      this.sink.onDropped(dropped, reason)
    }
  }

  /** Writes what is queued, batch by batch; unless `force`d, stops at a partial batch while writes are held. */
  private drain(force = false): Promise<void> {
    if (this.draining) return this.currentDrain ?? Promise.resolve()
    this.draining = true
    const drain = this.drainQueued(force)
    // Unless it already ended (nothing to wait for: it returned before its first write).
    if (this.draining) this.currentDrain = drain
    return drain
  }

  private async drainQueued(force: boolean): Promise<void> {
    try {
      while (this.head < this.items.length) {
        if (!force && this.gate?.holding === true && this.size < this.limits.maxBatchMessages) {
          this.gate.defer(this)
          return
        }
        const { count, bytes } = this.nextBatch()
        const frame = BatchFrame.encode(this.items as Array<Uint8Array>, this.head, count, bytes, this.proof)
        try {
          await this.sink.write(frame)
        } catch (error) {
          const failure = this.sink.classify(error)
          if (failure === "Busy") this.scheduleRetry()
          else this.dropAll(failure)
          return
        }
        this.blockedSince = 0
        this.retryDelayMs = RETRY_MIN_MS
        this.metrics.batchesSent++
        this.metrics.bytesSent += frame.length
        this.consume(count, bytes)
      }
    } finally {
      this.draining = false
      this.currentDrain = undefined
    }
  }

  private nextBatch(): { count: number; bytes: number } {
    const { maxBatchMessages, maxBatchBytes } = this.limits
    let count = 0
    let bytes = 0
    const end = this.items.length
    while (this.head + count < end && count < maxBatchMessages) {
      const length = this.items[this.head + count]!.length
      // A payload larger than the batch budget still travels, alone.
      if (count > 0 && bytes + length > maxBatchBytes) break
      bytes += length
      count++
    }
    return { count, bytes }
  }

  private consume(count: number, bytes: number): void {
    for (let i = this.head; i < this.head + count; i++) this.items[i] = undefined
    this.head += count
    this.bytes -= bytes
    this.metrics.queuedMessages -= count
    if (this.head === this.items.length) {
      this.items = []
      this.head = 0
    } else if (this.head > COMPACT_AFTER && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head)
      this.head = 0
    }
  }

  private cancelRetry(): void {
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer)
    this.retryTimer = undefined
  }

  private scheduleRetry(): void {
    const now = Date.now()
    if (this.blockedSince === 0) this.blockedSince = now
    if (now - this.blockedSince >= this.limits.sendTimeoutMs) {
      this.dropAll("Timeout")
      return
    }
    const delay = Math.min(this.retryDelayMs, this.limits.sendTimeoutMs - (now - this.blockedSince))
    this.retryDelayMs = Math.min(this.retryDelayMs * 2, RETRY_MAX_MS)
    this.retryTimer = setTimeout(
      () => {
        this.retryTimer = undefined
        void this.drain()
      },
      Math.max(delay, 0),
    )
  }
}
