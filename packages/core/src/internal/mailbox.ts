/**
 * The mailbox of one actor, as a line of waiting messages. Each message already has a fiber (the node forks
 * one per request or tell to run its handler), so the mailbox holds no payloads and runs no loop: a message
 * that finds the actor busy parks its fiber here, and the message that finishes hands the turn to the oldest
 * one still waiting. An idle actor therefore costs no fiber and no queue at all.
 *
 * Entries are removed lazily: a cancelled message is marked and skipped when the line advances, so cancelling
 * is O(1), and the array is compacted once skipped entries outnumber waiting ones.
 */
import type { Effect } from "effect"
import type { RpcError } from "../RpcError.ts"

/** Where a waiting message stands. */
export const WaiterState = {
  /** In line. */
  Waiting: 0,
  /** Handed the turn; its fiber is about to run the handler. */
  Granted: 1,
  /** Its caller gave up (cancel or deadline) while it waited: skipped. */
  Cancelled: 2,
  /** Failed without running: dropped for room, or the actor stopped. */
  Refused: 3,
} as const

/** A waiter state. */
export type WaiterState = (typeof WaiterState)[keyof typeof WaiterState]

/** One message waiting for its turn. */
export interface Waiter {
  state: WaiterState
  /** A tell: nobody waits for its outcome, so refusing it makes a dead letter instead of an error reply. */
  readonly oneWay: boolean
  /** The method's name, for dead letters. */
  readonly method: string
  /** Resumes the message's fiber: `void` to run its handler, a failure to refuse it. */
  readonly resume: (effect: Effect.Effect<void, RpcError>) => void
}

/** Skipped entries tolerated before the array is compacted. */
const COMPACT_AFTER = 64

/** Messages waiting in every mailbox of this process: the `mailbox` load signal nodes report in PONGs. */
let waitingInProcess = 0

/** How many messages wait in the actor mailboxes of this process now. */
export const waitingTotal = (): number => waitingInProcess

/** A FIFO of waiters with O(1) cancellation. */
export class Mailbox {
  private items: Array<Waiter> = []
  private head = 0
  /** Messages waiting (not counting skipped entries). */
  size = 0

  push(waiter: Waiter): void {
    this.items.push(waiter)
    this.size++
    waitingInProcess++
  }

  /** Takes the oldest waiting message out of line, or `undefined` when none waits. */
  shift(): Waiter | undefined {
    const items = this.items
    while (this.head < items.length) {
      const waiter = items[this.head]!
      this.head++
      if (waiter.state === WaiterState.Waiting) {
        this.size--
        waitingInProcess--
        this.trim()
        return waiter
      }
    }
    this.trim()
    return undefined
  }

  /** Marks a waiting message as skipped; it no longer counts against the capacity. */
  cancel(waiter: Waiter): void {
    if (waiter.state !== WaiterState.Waiting) return
    waiter.state = WaiterState.Cancelled
    this.size--
    waitingInProcess--
    const skipped = this.items.length - this.head - this.size
    if (skipped > COMPACT_AFTER && skipped > this.size) {
      this.items = this.items.slice(this.head).filter((w) => w.state === WaiterState.Waiting)
      this.head = 0
    }
  }

  /** Takes every waiting message out of line, oldest first. */
  drain(): Array<Waiter> {
    const waiting = this.items.slice(this.head).filter((w) => w.state === WaiterState.Waiting)
    this.items = []
    this.head = 0
    waitingInProcess -= this.size
    this.size = 0
    return waiting
  }

  /** Whether nothing is in the array any more (waiting or skipped): the mailbox can be dropped. */
  get isEmpty(): boolean {
    return this.head >= this.items.length
  }

  private trim(): void {
    if (this.head >= this.items.length) {
      this.items = []
      this.head = 0
    }
  }
}
