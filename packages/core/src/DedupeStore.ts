/**
 * The receiver's dedupe window: from idempotency key to the outcome of the call that first carried it. A
 * duplicate inside the window gets the stored outcome without the handler running again; a duplicate that
 * arrives while the first is still running waits for its outcome; the same key with a different payload is
 * refused (`idempotency_conflict`). Together with at-least-once retries this gives effectively-once effects
 * inside the window.
 *
 * Outside the window (older than `ttl`, evicted past `maxEntries`) or after the receiver restarts (the default
 * store is in memory), a duplicate is a new call: its handler runs again. Where that matters across restarts or
 * instances, plug in a store shared by the instances (`FileDedupeStore` for the processes of one host), or one kept
 * with the effects it guards (see docs/DELIVERY.md).
 *
 * @since 0.1.0
 */
import { Context, Duration } from "effect"

/**
 * The message prefix of a failure that says a keyed call's first attempt started but its outcome is unknown
 * (interrupted, or its process died): its effect may or may not have happened, so it is not run again.
 *
 * @since 0.1.0
 */
export const OUTCOME_UNKNOWN = "outcome unknown"

/**
 * What a call ended with, as it is sent back.
 *
 * @since 0.1.0
 */
export type Outcome =
  | { readonly _tag: "Reply"; readonly body: unknown }
  | { readonly _tag: "Failure"; readonly code: string; readonly message: string; readonly error: unknown }

/**
 * What to do with a call that carries an idempotency key.
 * - `New`: first sight; run the handler, then `complete` with whatever it ended with (the node records an
 *   interrupted handler as an `internal` failure starting with `OUTCOME_UNKNOWN`), or `abandon` if it never ran.
 * - `Done`: answer with the stored outcome; do not run the handler.
 * - `Running`: the first attempt is still running; answer with its outcome when `wait` resolves (`undefined`:
 *   it was abandoned, answer `unavailable` so the caller tries again).
 * - `Conflict`: the key was used with a different payload.
 *
 * @since 0.1.0
 */
export type Begin =
  | { readonly _tag: "New" }
  | { readonly _tag: "Done"; readonly outcome: Outcome }
  | { readonly _tag: "Running"; readonly wait: Promise<Outcome | undefined> }
  | { readonly _tag: "Conflict" }

/**
 * A dedupe store. Calls are synchronous because they sit on the request path; a store backed by slow I/O must
 * keep its own cache.
 *
 * @since 0.1.0
 */
export interface DedupeStoreShape {
  /** Looks up a key, claiming it for this call if it is new. `fingerprint` identifies the payload. */
  readonly begin: (key: string, fingerprint: string) => Begin
  /** Records the outcome of a call that began `New`, and answers the duplicates waiting for it. */
  readonly complete: (key: string, outcome: Outcome) => void
  /** Releases a key whose handler never ran: waiting duplicates are told to try again, the next runs anew. */
  readonly abandon: (key: string) => void
  /** Keys currently held. */
  readonly size: () => number
}

/**
 * The dedupe store service: provide one to change the node's default in-memory window.
 *
 * @since 0.1.0
 */
export class DedupeStore extends Context.Service<DedupeStore, DedupeStoreShape>()("@zactor/core/DedupeStore") {}

/**
 * Options of the in-memory window.
 *
 * @since 0.1.0
 */
export interface MemoryOptions {
  /** Most keys kept; the oldest finished ones are evicted beyond it. Default 10,000. */
  readonly maxEntries?: number | undefined
  /** How long a finished key is kept. Default 5 minutes. */
  readonly ttl?: Duration.Input | undefined
  /** Clock, injectable for tests. Default `Date.now`. */
  readonly now?: (() => number) | undefined
}

interface Entry {
  readonly key: string
  readonly fingerprint: string
  outcome: Outcome | undefined
  expiresAt: number
  /** Duplicates waiting for the outcome; most keys never get one, so the array is made on demand. */
  waiters: Array<(outcome: Outcome | undefined) => void> | undefined
}

const NEW: Begin = Object.freeze({ _tag: "New" })

/**
 * The default store: a bounded window in memory (count and time).
 *
 * @since 0.1.0
 */
export const memory = (options: MemoryOptions = {}): DedupeStoreShape => {
  const maxEntries = options.maxEntries ?? 10_000
  const ttlMs = options.ttl === undefined ? 5 * 60_000 : Duration.toMillis(Duration.fromInputUnsafe(options.ttl))
  const now = options.now ?? Date.now
  const entries = new Map<string, Entry>()
  // Finished entries in completion order (the window counts from completion), evicted from the head. A queue of
  // its own, not the Map's insertion order: deleting from the front of a Map leaves holes that every later walk
  // from the front skips again (measured: 8 % of a server's time at 10,000 keys), and a running entry at the
  // front would block eviction.
  let finished: Array<Entry | undefined> = []
  let head = 0

  const sweep = (at: number) => {
    while (head < finished.length) {
      const item = finished[head]!
      // Nothing due (the usual case, decided without a lookup): the oldest has not expired and there is room.
      if (item.expiresAt > at && entries.size <= maxEntries) break
      // An item whose key was dropped on sight (expired) or claimed again since is only taken off the queue.
      if (entries.get(item.key) === item) entries.delete(item.key)
      finished[head++] = undefined
    }
    if (head > 1024 && head * 2 > finished.length) {
      finished = finished.slice(head)
      head = 0
    }
  }

  return {
    begin: (key, fingerprint) => {
      const at = now()
      sweep(at)
      let current = entries.get(key)
      if (current !== undefined && current.outcome !== undefined && current.expiresAt <= at) {
        entries.delete(key)
        current = undefined
      }
      if (current === undefined) {
        entries.set(key, {
          key,
          fingerprint,
          outcome: undefined,
          expiresAt: Number.POSITIVE_INFINITY,
          waiters: undefined,
        })
        return NEW
      }
      if (current.fingerprint !== fingerprint) return { _tag: "Conflict" }
      if (current.outcome !== undefined) return { _tag: "Done", outcome: current.outcome }
      const waiters = current.waiters ?? []
      current.waiters = waiters
      return { _tag: "Running", wait: new Promise((resolve) => waiters.push(resolve)) }
    },
    complete: (key, outcome) => {
      const entry = entries.get(key)
      if (entry === undefined) return
      const at = now()
      entry.outcome = outcome
      entry.expiresAt = at + ttlMs
      finished.push(entry)
      const waiters = entry.waiters
      entry.waiters = undefined
      if (waiters !== undefined) for (const wake of waiters) wake(outcome)
      sweep(at)
    },
    abandon: (key) => {
      const entry = entries.get(key)
      if (entry === undefined || entry.outcome !== undefined) return
      entries.delete(key)
      for (const wake of entry.waiters ?? []) wake(undefined)
    },
    size: () => entries.size,
  }
}
