/**
 * The receiver's dedupe window: from idempotency key to the outcome of the call that first carried it. A
 * duplicate inside the window gets the stored outcome without the handler running again; a duplicate that
 * arrives while the first is still running waits for its outcome; the same key with a different payload is
 * refused (`idempotency_conflict`). Together with at-least-once retries this gives effectively-once effects
 * inside the window.
 *
 * Outside the window (older than `ttl`, evicted past `maxEntries` or `maxBytes`) or after the receiver restarts (the default
 * store is in memory), a duplicate is a new call: its handler runs again. Where that matters across restarts or
 * instances, plug in a store shared by the instances (`FileDedupeStore` for the processes of one host), or one kept
 * with the effects it guards (see docs/DELIVERY.md).
 *
 * @since 0.1.0
 */
import { Context, Duration } from "effect"
import { CONFLICT, FinishedWindow } from "./internal/finishedWindow.ts"

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
  /** Most finished keys kept; the oldest are evicted beyond it. Default 10,000. */
  readonly maxEntries?: number | undefined
  /**
   * Bytes kept for finished keys (key, fingerprint and outcome of each, as UTF-8 and msgpack); the oldest are
   * evicted to make room. An outcome larger than an eighth of it is kept apart, the 8 most recent only.
   * Default 32 MiB.
   */
  readonly maxBytes?: number | undefined
  /** How long a finished key is kept. Default 5 minutes. */
  readonly ttl?: Duration.Input | undefined
  /** Clock, injectable for tests. Default `Date.now`. */
  readonly now?: (() => number) | undefined
}

/**
 * The defaults of `MemoryOptions`.
 *
 * @since 0.1.0
 */
export const memoryDefaults = Object.freeze({ maxEntries: 10_000, maxBytes: 32 * 1024 * 1024, ttlMs: 5 * 60_000 })

/** A key claimed by a call whose handler has not finished. */
interface Running {
  readonly fingerprint: string
  /** Duplicates waiting for the outcome; most keys never get one, so the array is made on demand. */
  waiters: Array<(outcome: Outcome | undefined) => void> | undefined
}

const NEW: Begin = Object.freeze({ _tag: "New" })

/**
 * The default store: a bounded window in memory (count, bytes and time). Finished keys are kept as bytes in
 * typed arrays, not as objects (see `internal/finishedWindow.ts`): a full window costs the garbage collector
 * next to nothing.
 *
 * @since 0.1.0
 */
export const memory = (options: MemoryOptions = {}): DedupeStoreShape => {
  const ttlMs =
    options.ttl === undefined ? memoryDefaults.ttlMs : Duration.toMillis(Duration.fromInputUnsafe(options.ttl))
  const now = options.now ?? Date.now
  const finished = new FinishedWindow(
    options.maxEntries ?? memoryDefaults.maxEntries,
    options.maxBytes ?? memoryDefaults.maxBytes,
  )
  const running = new Map<string, Running>()

  return {
    begin: (key, fingerprint) => {
      const at = now()
      finished.sweep(at)
      const done = finished.lookup(key, fingerprint, at)
      if (done !== undefined) return done
      const current = running.get(key)
      if (current === undefined) {
        running.set(key, { fingerprint, waiters: undefined })
        return NEW
      }
      if (current.fingerprint !== fingerprint) return CONFLICT
      const waiters = current.waiters ?? []
      current.waiters = waiters
      return { _tag: "Running", wait: new Promise((resolve) => waiters.push(resolve)) }
    },
    complete: (key, outcome) => {
      const entry = running.get(key)
      if (entry === undefined) return
      running.delete(key)
      const at = now()
      finished.add(key, entry.fingerprint, outcome, at + ttlMs)
      if (entry.waiters !== undefined) for (const wake of entry.waiters) wake(outcome)
      finished.sweep(at)
    },
    abandon: (key) => {
      const entry = running.get(key)
      if (entry === undefined) return
      running.delete(key)
      for (const wake of entry.waiters ?? []) wake(undefined)
    },
    size: () => running.size + finished.size,
  }
}
