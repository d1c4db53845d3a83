/**
 * Deadlines of many concurrent calls with one timer per distinct timeout instead of one `setTimeout` each.
 *
 * Calls made with the same timeout expire in the order they were made, so each timeout value keeps its entries
 * in an intrusive doubly linked list (the entry is the caller's own object: no allocation per call), appended
 * at the tail and unlinked in O(1) when the call completes. One Node timer per list is armed for its head; when
 * it fires it expires every entry whose deadline has passed and re-arms for the new head. A completed head does
 * not re-arm the timer (that would cost what a per-call timer costs): a timer that fires early finds nothing due
 * and re-arms, at most once per timeout period.
 *
 * Per call this is a map lookup, two pointer writes in and two out, against ~0.35 µs for `setTimeout` plus
 * `clearTimeout` (measured on the benchmark machine); it matters at 100k calls/s.
 */

/** Node timers overflow past 2^31-1 ms (and then fire at once): longer deadlines wait the maximum. */
export const timerDelay = (ms: number): number => Math.min(ms, 0x7fff_ffff)

/** The fields a deadline-tracked object carries; set and read by the queue only. */
export interface DeadlineEntry {
  /** When it expires, on the `performance.now()` clock (ms). */
  deadlineAt: number
  deadlinePrev: DeadlineEntry | undefined
  deadlineNext: DeadlineEntry | undefined
  /** The list holding it, or `undefined` when not scheduled. */
  deadlineList: DeadlineList | undefined
}

/** The entries sharing one timeout value, oldest first. */
interface DeadlineList {
  readonly timeoutMs: number
  head: DeadlineEntry | undefined
  tail: DeadlineEntry | undefined
  timer: ReturnType<typeof setTimeout> | undefined
}

/** A set of deadlines; `onExpired` runs for each entry whose deadline passed (after it was removed). */
export class DeadlineQueue<E extends DeadlineEntry> {
  private readonly lists = new Map<number, DeadlineList>()
  private readonly onExpired: (entry: E) => void

  constructor(onExpired: (entry: E) => void) {
    this.onExpired = onExpired
  }

  /** Schedules `entry` to expire `timeoutMs` after `now` (`performance.now()`, read by the caller if it has it). */
  add(entry: E, timeoutMs: number, now: number = performance.now()): void {
    let list = this.lists.get(timeoutMs)
    if (list === undefined) {
      list = { timeoutMs, head: undefined, tail: undefined, timer: undefined }
      this.lists.set(timeoutMs, list)
    }
    entry.deadlineAt = now + timeoutMs
    entry.deadlineList = list
    entry.deadlineNext = undefined
    entry.deadlinePrev = list.tail
    if (list.tail === undefined) list.head = entry
    else list.tail.deadlineNext = entry
    list.tail = entry
    if (list.timer === undefined) this.arm(list, timeoutMs)
  }

  /** Unschedules `entry`; a no-op when it is not scheduled. */
  remove(entry: E): void {
    const list = entry.deadlineList
    if (list === undefined) return
    const { deadlinePrev: prev, deadlineNext: next } = entry
    if (prev === undefined) list.head = next
    else prev.deadlineNext = next
    if (next === undefined) list.tail = prev
    else next.deadlinePrev = prev
    entry.deadlineList = undefined
    entry.deadlinePrev = undefined
    entry.deadlineNext = undefined
    // An empty list keeps its timer until it fires (see the module doc); then it is dropped.
  }

  /** Unschedules everything, e.g. on close. */
  clear(): void {
    for (const list of this.lists.values()) {
      if (list.timer !== undefined) clearTimeout(list.timer)
      let entry = list.head
      while (entry !== undefined) {
        const next = entry.deadlineNext
        entry.deadlineList = undefined
        entry.deadlinePrev = undefined
        entry.deadlineNext = undefined
        entry = next
      }
    }
    this.lists.clear()
  }

  private arm(list: DeadlineList, delayMs: number): void {
    // +1: Node may fire a timer up to 1 ms before the deadline measured on performance.now().
    list.timer = setTimeout(() => this.fire(list), timerDelay(Math.max(0, Math.ceil(delayMs)) + 1))
  }

  private fire(list: DeadlineList): void {
    list.timer = undefined
    const now = performance.now()
    let entry = list.head
    while (entry !== undefined && entry.deadlineAt <= now) {
      this.remove(entry as E)
      this.onExpired(entry as E)
      entry = list.head
    }
    if (list.head !== undefined) {
      if (list.timer === undefined) this.arm(list, list.head.deadlineAt - now)
    } else if (list.timer === undefined && this.lists.get(list.timeoutMs) === list) {
      this.lists.delete(list.timeoutMs)
    }
  }
}
