/**
 * The finished entries of the in-memory dedupe window (`DedupeStore.memory`): key, payload fingerprint and
 * outcome of each call, evicted oldest first past a count, a byte budget or their expiry.
 *
 * Why not a Map of objects: a window of 10,000 keys kept as heap objects outlives many young-generation
 * collections, each of which copies it, then fills the old generation; on a busy server that garbage collection
 * cost several times the rest of a keyed call (measured: 43 % of the serving thread, plus the GC helper threads).
 * Here an entry is bytes in one arena (UTF-8 key, fingerprint, msgpack outcome) and numbers in typed arrays, with
 * a chained hash index in typed arrays too: nothing per entry for the collector to trace. Lookups stay exact: a
 * hit compares the key's bytes.
 */
import type { Begin, Outcome } from "../DedupeStore.ts"
import { wirePackr } from "./wirePackr.ts"

const utf8 = new TextEncoder()
const EMPTY = -1
/** The arena's first size; it doubles as needed. */
const INITIAL_BYTES = 64 * 1024
/** How many entries too large for the arena are kept. */
export const LARGE_KEPT = 8

/** What the window can say of a finished key: its stored outcome, or that it came with another payload. */
export type Found = Extract<Begin, { readonly _tag: "Done" | "Conflict" }>

/** The answer for a key seen again with another payload (one object, it carries nothing). */
export const CONFLICT: Found = Object.freeze({ _tag: "Conflict" })

/**
 * Writes `text` as UTF-8 at `at` (room for 3 bytes per UTF-16 unit is the caller's); returns the bytes written.
 * Keys and fingerprints are ASCII in practice: copied byte by byte, without a TextEncoder call.
 */
const writeUtf8 = (text: string, into: Uint8Array, at: number): number => {
  const length = text.length
  for (let i = 0; i < length; i++) {
    const code = text.charCodeAt(i)
    if (code >= 0x80) return utf8.encodeInto(text, into.subarray(at)).written
    into[at + i] = code
  }
  return length
}

/** FNV-1a over `length` bytes. */
const hashOf = (bytes: Uint8Array, length: number): number => {
  let hash = 0x811c9dc5
  for (let i = 0; i < length; i++) hash = Math.imul(hash ^ bytes[i]!, 0x01000193)
  return hash >>> 0
}

/** The finished entries: a ring of `maxEntries` slots, in completion order, over a byte arena of `maxBytes`. */
export class FinishedWindow {
  private readonly capacity: number
  private readonly maxBytes: number
  /** Grows by doubling (entries compacted to its start) up to `maxBytes`: it stays near the bytes held. */
  private arena: Uint8Array
  // Per slot (seq % capacity).
  private readonly offset: Uint32Array
  private readonly keyLength: Uint32Array
  private readonly fingerprintLength: Uint32Array
  private readonly outcomeLength: Uint32Array
  private readonly hash: Uint32Array
  private readonly expiresAt: Float64Array
  private readonly next: Int32Array
  /**
   * Entries too large for the arena (over an eighth of it; rare), kept as objects: the `LARGE_KEPT` most recent,
   * in completion order.
   */
  private readonly large = new Map<string, { fingerprint: string; outcome: Outcome; expiresAt: number }>()
  private readonly buckets: Int32Array
  private scratch = new Uint8Array(256)
  /** The hash of the text `encode` last wrote into `scratch`. */
  private scratchHash = 0
  /**
   * Sequence numbers: `head` is the oldest entry held, `tail` the next to be written. Eviction is oldest first
   * only, so every slot from `head` to `tail` holds an entry.
   */
  private head = 0
  private tail = 0
  private writeAt = 0

  constructor(maxEntries: number, maxBytes: number) {
    this.capacity = maxEntries
    this.maxBytes = maxBytes
    this.arena = new Uint8Array(Math.min(maxBytes, INITIAL_BYTES))
    this.offset = new Uint32Array(maxEntries)
    this.keyLength = new Uint32Array(maxEntries)
    this.fingerprintLength = new Uint32Array(maxEntries)
    this.outcomeLength = new Uint32Array(maxEntries)
    this.hash = new Uint32Array(maxEntries)
    this.expiresAt = new Float64Array(maxEntries)
    this.next = new Int32Array(maxEntries).fill(EMPTY)
    let buckets = 16
    while (buckets < maxEntries * 2) buckets *= 2
    this.buckets = new Int32Array(buckets).fill(EMPTY)
  }

  /** Entries held. */
  get size(): number {
    return this.tail - this.head + this.large.size
  }

  /** Evicts the entries that expired by `at` (in completion order, so from the oldest). */
  sweep(at: number): void {
    if (this.large.size > 0) {
      for (const [key, entry] of this.large) {
        if (entry.expiresAt > at) break
        this.large.delete(key)
      }
    }
    while (this.head < this.tail) {
      const slot = this.head % this.capacity
      if (this.expiresAt[slot]! > at) return
      this.evictHead()
    }
  }

  /**
   * The stored outcome of `key` if it finished within the window: `Done`, or `Conflict` when it was made with
   * another payload fingerprint; `undefined` when the window does not hold it.
   */
  lookup(key: string, fingerprint: string, at: number): Found | undefined {
    const large = this.large.get(key)
    if (large !== undefined && large.expiresAt > at) {
      return large.fingerprint === fingerprint ? { _tag: "Done", outcome: large.outcome } : CONFLICT
    }
    const length = this.encode(key)
    const hash = this.scratchHash
    for (let slot = this.buckets[hash & (this.buckets.length - 1)]!; slot !== EMPTY; slot = this.next[slot]!) {
      if (this.hash[slot] !== hash || this.expiresAt[slot]! <= at) continue
      if (!this.bytesEqual(this.offset[slot]!, this.keyLength[slot]!, length)) continue
      const fingerprintLength = this.encode(fingerprint)
      const fingerprintAt = this.offset[slot]! + this.keyLength[slot]!
      if (!this.bytesEqual(fingerprintAt, this.fingerprintLength[slot]!, fingerprintLength)) return CONFLICT
      const outcomeAt = fingerprintAt + this.fingerprintLength[slot]!
      const bytes = this.arena.subarray(outcomeAt, outcomeAt + this.outcomeLength[slot]!)
      return { _tag: "Done", outcome: wirePackr.unpack(bytes) as Outcome }
    }
    return undefined
  }

  /** Adds a finished entry (its key is not held: a key is finished once per claim). */
  add(key: string, fingerprint: string, outcome: Outcome, expiresAt: number): void {
    // Outcomes are wire values (bodies already encoded by their codecs): packed as they travel.
    const packed = wirePackr.pack(outcome)
    const keyLength = this.encode(key)
    // At most this many bytes: UTF-8 takes up to 3 bytes per UTF-16 unit.
    const fingerprintBytes = fingerprint.length * 3
    if (keyLength + fingerprintBytes + packed.length > this.maxBytes / 8) {
      // It would evict many others from the arena: kept as objects instead.
      this.large.set(key, { fingerprint, outcome, expiresAt })
      if (this.large.size > LARGE_KEPT) this.large.delete(this.large.keys().next().value!)
      return
    }
    if (this.tail - this.head === this.capacity) this.evictHead()
    const hash = this.scratchHash
    const slot = this.tail % this.capacity
    const start = this.reserve(keyLength + fingerprintBytes + packed.length)
    const arena = this.arena
    const scratch = this.scratch
    for (let i = 0; i < keyLength; i++) arena[start + i] = scratch[i]!
    const written = writeUtf8(fingerprint, arena, start + keyLength)
    arena.set(packed, start + keyLength + written)
    this.offset[slot] = start
    this.keyLength[slot] = keyLength
    this.fingerprintLength[slot] = written
    this.outcomeLength[slot] = packed.length
    this.writeAt = start + keyLength + written + packed.length
    this.hash[slot] = hash
    this.expiresAt[slot] = expiresAt
    const bucket = hash & (this.buckets.length - 1)
    this.next[slot] = this.buckets[bucket]!
    this.buckets[bucket] = slot
    this.tail++
  }

  /**
   * Where `length` bytes can be written: free space if there is some, else in a larger arena, else (at
   * `maxBytes`) over the oldest entries, which are evicted. Entries lie in the arena in completion order,
   * circularly, so the ones in the way are always the oldest.
   */
  private reserve(length: number): number {
    for (;;) {
      const free = this.freeAt(length)
      if (free >= 0) return free
      if (this.arena.length >= this.maxBytes) return this.evictFor(length)
      this.grow(length)
    }
  }

  /** Where `length` bytes fit without evicting anything, or -1. */
  private freeAt(length: number): number {
    if (this.head === this.tail) return length <= this.arena.length ? 0 : -1
    const oldest = this.offset[this.head % this.capacity]!
    // One run (the newest after the oldest): free after it, up to the end, or before it at the start.
    if (this.offset[(this.tail - 1) % this.capacity]! >= oldest) {
      if (this.writeAt + length <= this.arena.length) return this.writeAt
      return length <= oldest ? 0 : -1
    }
    // Wrapped: free between the newest and the oldest.
    return this.writeAt + length <= oldest ? this.writeAt : -1
  }

  /** Doubles the arena (up to `maxBytes`, and at least enough for `length` more), entries compacted in order. */
  private grow(length: number): void {
    let held = 0
    for (let seq = this.head; seq < this.tail; seq++) held += this.extent(seq % this.capacity)
    let size = this.arena.length * 2
    while (size < held + length) size *= 2
    const next = new Uint8Array(Math.min(this.maxBytes, size))
    let at = 0
    for (let seq = this.head; seq < this.tail; seq++) {
      const slot = seq % this.capacity
      const extent = this.extent(slot)
      next.set(this.arena.subarray(this.offset[slot]!, this.offset[slot]! + extent), at)
      this.offset[slot] = at
      at += extent
    }
    this.arena = next
    this.writeAt = at
  }

  /** At `maxBytes`: the start of `length` bytes over the oldest entries, which are evicted. */
  private evictFor(length: number): number {
    if (this.writeAt + length > this.arena.length) {
      // Wrap: what lies past the write position is the oldest part of the ring; it goes first.
      const from = this.writeAt
      while (this.head < this.tail && this.offset[this.head % this.capacity]! >= from) this.evictHead()
      this.writeAt = 0
    }
    const start = this.writeAt
    while (this.head < this.tail) {
      const slot = this.head % this.capacity
      const begins = this.offset[slot]!
      if (begins + this.extent(slot) <= start || begins >= start + length) break
      this.evictHead()
    }
    return start
  }

  /** Bytes an entry takes in the arena. */
  private extent(slot: number): number {
    return this.keyLength[slot]! + this.fingerprintLength[slot]! + this.outcomeLength[slot]!
  }

  /** Evicts the oldest entry (there is one): out of its hash chain, out of the ring. */
  private evictHead(): void {
    const slot = this.head % this.capacity
    const bucket = this.hash[slot]! & (this.buckets.length - 1)
    if (this.buckets[bucket] === slot) this.buckets[bucket] = this.next[slot]!
    else {
      let previous = this.buckets[bucket]!
      while (this.next[previous] !== slot) previous = this.next[previous]!
      this.next[previous] = this.next[slot]!
    }
    this.next[slot] = EMPTY
    this.head++
  }

  /**
   * Writes `text` as UTF-8 into the scratch buffer (grown as needed) and its hash into `scratchHash`; returns
   * its length in bytes.
   */
  private encode(text: string): number {
    if (text.length * 3 > this.scratch.length) this.scratch = new Uint8Array(text.length * 3)
    const length = writeUtf8(text, this.scratch, 0)
    this.scratchHash = hashOf(this.scratch, length)
    return length
  }

  private bytesEqual(at: number, length: number, scratchLength: number): boolean {
    if (length !== scratchLength) return false
    const arena = this.arena
    const scratch = this.scratch
    for (let i = 0; i < length; i++) if (arena[at + i] !== scratch[i]) return false
    return true
  }
}
