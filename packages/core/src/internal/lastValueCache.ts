/**
 * A publisher's last-value cache: the latest event (sequence number and encoded body) per key, bounded by a key
 * count. Updating a key moves it to the back, so past the bound the least recently updated key is evicted and
 * counted. A snapshot copies the matching entries at one sequence number, so a subscriber can join the live
 * stream right after it (docs/TOPICS.md, "Late joiners").
 */
import type { KeyFilter } from "./keyFilter.ts"

/** A snapshot entry on the wire: key, the sequence number of the event that set it, and its encoded body. */
export type CacheEntry = readonly [key: string, seq: number, body: unknown]

interface Slot {
  seq: number
  body: unknown
}

/** The latest encoded event per key. */
export class LastValueCache {
  private readonly slots = new Map<string, Slot>()
  /** Keys evicted because the cache was full. */
  evictions = 0
  readonly maxKeys: number

  constructor(maxKeys: number) {
    this.maxKeys = maxKeys
  }

  /** How many keys are cached. */
  get size(): number {
    return this.slots.size
  }

  /** Records the latest event of a key. */
  set(key: string, seq: number, body: unknown): void {
    const slot = this.slots.get(key)
    if (slot !== undefined) {
      // Delete and re-insert: a Map iterates in insertion order, which makes the first key the least recent.
      this.slots.delete(key)
      slot.seq = seq
      slot.body = body
      this.slots.set(key, slot)
      return
    }
    if (this.slots.size >= this.maxKeys) {
      const oldest = this.slots.keys().next()
      if (oldest.done !== true) {
        this.slots.delete(oldest.value)
        this.evictions++
      }
    }
    this.slots.set(key, { seq, body })
  }

  /** The entries matching a filter, oldest update first. */
  snapshot(filter: KeyFilter): Array<CacheEntry> {
    const entries: Array<CacheEntry> = []
    for (const [key, slot] of this.slots) {
      if (filter === undefined || filter(key)) entries.push([key, slot.seq, slot.body])
    }
    return entries
  }
}
