/**
 * The bounded hand-off between a transport's receive loops and its single consumer. It is plain JavaScript
 * on purpose: a consumer that polls it wakes through one promise (a microtask) when it was idle, where an
 * Effect queue consumer is resumed through the fiber scheduler (a `setImmediate` turn), which measurably
 * adds latency to every round trip. The `received` Stream of the contract is derived from it for Effect users.
 *
 * When full, `offer` refuses (a SUB receive loop then awaits `whenSpace` and stops reading, so ZeroMQ's
 * high-water marks push back on senders; DEALER/ROUTER input is dropped and counted), or drops and counts,
 * depending on the overflow policy.
 */
import { Stream } from "effect"

/** What happens to an item offered to a full buffer. */
export type Overflow = "refuse" | "drop"

/** A bound on the bytes held, beside the bound on items; an item alone in the buffer is always taken. */
export interface ByteBudget<A> {
  readonly maxBytes: number
  readonly bytesOf: (item: A) => number
}

/** A bounded single-consumer buffer with synchronous poll and promise-based waiting. */
export class ReceiveBuffer<A> implements AsyncIterable<A> {
  private items: Array<A | undefined> = []
  private head = 0
  private ended = false
  private wakeConsumer: ((ready: boolean) => void) | undefined = undefined
  private wakeProducers: Array<() => void> = []
  private readonly capacity: number
  private readonly overflow: Overflow
  private readonly budget: ByteBudget<A> | undefined
  /** Bytes of the items held (0 without a budget). */
  bytes = 0
  /** Items dropped because the buffer was full (overflow "drop"). */
  dropped = 0

  constructor(capacity: number, overflow: Overflow, budget?: ByteBudget<A>) {
    this.capacity = capacity
    this.overflow = overflow
    this.budget = budget
  }

  get size(): number {
    return this.items.length - this.head
  }

  private hasRoom(): boolean {
    return this.size < this.capacity && (this.budget === undefined || this.bytes < this.budget.maxBytes)
  }

  /** Adds an item; false if the buffer is full (the item is refused, or dropped and counted) or ended. */
  offer(item: A): boolean {
    if (this.ended) return false
    const itemBytes = this.budget === undefined ? 0 : this.budget.bytesOf(item)
    const full =
      this.size >= this.capacity ||
      (this.budget !== undefined && this.size > 0 && this.bytes + itemBytes > this.budget.maxBytes)
    if (full) {
      if (this.overflow === "drop") this.dropped++
      return false
    }
    this.bytes += itemBytes
    this.items.push(item)
    const wake = this.wakeConsumer
    if (wake !== undefined) {
      this.wakeConsumer = undefined
      wake(true)
    }
    return true
  }

  /** Adds an item even past the capacity: for the one item a paused receive loop already holds. */
  force(item: A): void {
    if (this.ended) return
    if (this.budget !== undefined) this.bytes += this.budget.bytesOf(item)
    this.items.push(item)
    const wake = this.wakeConsumer
    if (wake !== undefined) {
      this.wakeConsumer = undefined
      wake(true)
    }
  }

  /** Takes the next item without waiting. */
  poll(): A | undefined {
    if (this.head === this.items.length) return undefined
    const item = this.items[this.head]!
    this.items[this.head] = undefined
    this.head++
    if (this.budget !== undefined) this.bytes -= this.budget.bytesOf(item)
    if (this.head === this.items.length) {
      this.items = []
      this.head = 0
    } else if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head)
      this.head = 0
    }
    if (this.wakeProducers.length > 0 && this.hasRoom()) {
      const producers = this.wakeProducers
      this.wakeProducers = []
      for (const wake of producers) wake()
    }
    return item
  }

  /** Resolves true when an item is waiting, false once the buffer has ended and is drained. */
  wait(): Promise<boolean> {
    if (this.size > 0) return Promise.resolve(true)
    if (this.ended) return Promise.resolve(false)
    return new Promise((resolve) => {
      this.wakeConsumer = resolve
    })
  }

  /** Resolves when there is room again (or the buffer ended). */
  whenSpace(): Promise<void> {
    if (this.ended || this.hasRoom()) return Promise.resolve()
    return new Promise((resolve) => this.wakeProducers.push(resolve))
  }

  /** Ends the buffer: items already in it are still delivered, then consumers see the end. */
  end(): void {
    if (this.ended) return
    this.ended = true
    this.wakeConsumer?.(this.size > 0)
    this.wakeConsumer = undefined
    for (const wake of this.wakeProducers) wake()
    this.wakeProducers = []
  }

  async *[Symbol.asyncIterator](): AsyncIterator<A> {
    for (;;) {
      let item = this.poll()
      while (item !== undefined) {
        yield item
        item = this.poll()
      }
      if (!(await this.wait())) return
    }
  }

  /** The buffer as an Effect stream (one consumer style per buffer). */
  stream(): Stream.Stream<A> {
    return Stream.orDie(Stream.fromAsyncIterable(this, (error) => error))
  }
}
