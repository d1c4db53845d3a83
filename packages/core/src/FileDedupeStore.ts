/**
 * A dedupe store shared by the processes of one host through a directory: several worker processes serving
 * the same service (or one worker and its restarted self) see each other's idempotency keys, so a retry that
 * lands on another worker, or on a restarted one, after the first attempt ran but its reply was lost, is
 * answered from the stored outcome instead of running the handler again.
 *
 * One file per key (named by a hash of the key, in one of 256 shard folders) holds the claim and, once the
 * call is done, its outcome:
 * - `begin` claims a key atomically: the claim (fingerprint, owner pid and process start time, claimedAt) is
 *   written to a temporary file and hard-linked to the key's name. `link` fails if the name exists, like an
 *   `open` with `O_EXCL` ("wx"), but readers never see a half-written claim, and a crash leaves either no claim
 *   or a complete one.
 * - `complete` writes the outcome next to the claim, atomically: a temporary file renamed over the key's file.
 * - `begin` on a key that exists: different fingerprint -> `Conflict`; outcome present -> `Done`; claim
 *   without outcome and its owner alive -> `Running`, whose `wait` polls the file (every `pollInterval`) until
 *   the outcome appears, the claim goes away (abandoned: `undefined`, the caller tries again), or the owner dies.
 * - **Outcome unknown.** A claim without an outcome whose owner is dead means the handler may or may not have
 *   had its effect: the worker died between claiming the key and recording the outcome. Running it again could
 *   duplicate the effect, so it is never run again: the call, and every later duplicate inside the window,
 *   gets a `Failure` with code `internal` (not retryable) and a message starting with `outcome unknown`.
 *   Whoever sees that failure must reconcile with the effect's own system of record.
 * - `abandon` removes this process's claim: the next duplicate runs anew.
 * - A sweep, at most once per `sweepInterval` in each process, walks one shard folder (at most
 *   `maxSweepEntries` files) and removes entries whose window passed: outcomes older than `ttl`, and
 *   claims of dead owners older than `ttl`. A `begin` that finds an expired entry removes it and claims the key
 *   afresh, so a duplicate outside the window is a new call, as with the in-memory window.
 *
 * What it does not do:
 * - It is for one host. Liveness is `process.kill(pid, 0)` plus the process start time read from
 *   `/proc/<pid>/stat` (so a reused pid is not mistaken for the owner), which means nothing on another host:
 *   do not put the directory on a network filesystem shared by several hosts.
 * - It survives process crashes (SIGKILL included), not host crashes: nothing is fsynced, so after a power loss
 *   recent claims and outcomes may be missing or empty. An unreadable entry answers `internal`, never a rerun.
 * - Its calls are synchronous file system calls (a link or rename and a few small writes per call), on the
 *   request path of the serving node: that is the price of a store several processes share without a server,
 *   acceptable on a local disk (see docs/DELIVERY.md for the measured cost), not on a slow network mount.
 * - Two processes sweeping the same expired key at the very moment a third reuses it may remove the fresh
 *   claim (a check of the inode narrows this to a few microseconds); it only affects keys whose window passed.
 *
 * @since 0.1.0
 */
import { createHash } from "node:crypto"
import {
  closeSync,
  fstatSync,
  linkSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  type Stats,
  statSync,
  unlinkSync,
  writeFileSync,
} from "node:fs"
import { join } from "node:path"
import { Duration, Effect, Layer } from "effect"
import { Packr } from "msgpackr"
import {
  type Begin,
  DedupeStore,
  OUTCOME_UNKNOWN as DedupeStore_OUTCOME_UNKNOWN,
  type DedupeStoreShape,
  type Outcome,
} from "./DedupeStore.ts"
import { RpcError } from "./RpcError.ts"

/**
 * Options of the file store.
 *
 * @since 0.1.0
 */
export interface FileOptions {
  /** The shared directory, created if missing. Every process sharing keys must use the same one. Required. */
  readonly directory: string
  /** How long a finished key (or a dead owner's claim) is kept. Default 5 minutes, as the in-memory window. */
  readonly ttl?: Duration.Input | undefined
  /** How often a `Running` wait reads the key's file. Default 10 ms. Lower answers sooner, costs more reads. */
  readonly pollInterval?: Duration.Input | undefined
  /**
   * Longest a `Running` wait lasts before it answers `undefined` (the caller gets `unavailable` and may try
   * again, finding the key still running or done). Default 60 s: longer than usual call deadlines.
   */
  readonly maxWait?: Duration.Input | undefined
  /** Least time between two sweeps in one process (each sweeps one of 256 shard folders). Default 250 ms. */
  readonly sweepInterval?: Duration.Input | undefined
  /** Most files one sweep looks at. Default 1,000. */
  readonly maxSweepEntries?: number | undefined
  /** Clock, injectable for tests. Default `Date.now`. */
  readonly now?: (() => number) | undefined
}

/**
 * The defaults of the optional fields, in milliseconds.
 *
 * @since 0.1.0
 */
export const defaults = Object.freeze({
  ttlMs: 5 * 60_000,
  pollIntervalMs: 10,
  maxWaitMs: 60_000,
  sweepIntervalMs: 250,
  maxSweepEntries: 1000,
})

/**
 * What one process's store did, since it was built.
 *
 * @since 0.1.0
 */
export interface FileDedupeStats {
  /** Keys claimed (`New`): the handler ran here. */
  readonly claimed: number
  /** Duplicates answered at once from an outcome another attempt recorded. */
  readonly answeredFromStore: number
  /** Duplicates that found the key running (here or in another live process) and waited for it. */
  readonly waited: number
  /** Duplicates answered `internal` / `outcome unknown`: the attempt that claimed the key died without an outcome. */
  readonly outcomeUnknown: number
  /** Keys seen with a different payload. */
  readonly conflicts: number
  /** Claims released by `abandon`. */
  readonly abandoned: number
  /** Entries removed by sweeps (and by `begin` finding an expired one). */
  readonly expired: number
  /** File system errors (answered `unavailable`, or an outcome that could not be written). */
  readonly errors: number
}

/**
 * The file store: a `DedupeStoreShape` plus what tests and operators need.
 *
 * @since 0.1.0
 */
export interface FileDedupeStoreShape extends DedupeStoreShape {
  /** The shared directory. */
  readonly directory: string
  /** Sweeps every shard now (ignoring `sweepInterval` and `maxSweepEntries`); returns the entries removed. */
  readonly sweepAll: () => number
  /** A snapshot of this process's counters. */
  readonly stats: () => FileDedupeStats
}

/**
 * The message prefix of the failure answered when a key's first attempt ran in a process that died before
 * recording its outcome (the same as `DedupeStore.OUTCOME_UNKNOWN`).
 *
 * @since 0.1.0
 */
export const OUTCOME_UNKNOWN = DedupeStore_OUTCOME_UNKNOWN

/** What one key's file holds. */
interface Entry {
  readonly v: 1
  readonly key: string
  readonly fingerprint: string
  readonly pid: number
  /** The owner's start time (`/proc/<pid>/stat` field 22), to tell it from a later process with its pid. */
  readonly start: string | undefined
  readonly claimedAt: number
  readonly outcome?: Outcome | undefined
  readonly completedAt?: number | undefined
}

/** A key this process claimed and has not finished; same-process duplicates wait in memory. */
interface Held {
  readonly entry: Entry
  readonly path: string
  readonly waiters: Array<(outcome: Outcome | undefined) => void>
}

/** Duplicates waiting for another process's claim. */
interface Poll {
  readonly key: string
  readonly fingerprint: string
  readonly path: string
  readonly until: number
  readonly waiters: Array<(outcome: Outcome | undefined) => void>
}

const SHARDS = 256
const STALE_TEMP_MS = 60_000
// Records off: every process (and version) must read every entry without shared structure definitions.
const packr = new Packr({ useRecords: false, encodeUndefinedAsNil: false, moreTypes: false, int64AsType: "number" })

const ms = (input: Duration.Input | undefined, fallback: number): number =>
  input === undefined ? fallback : Duration.toMillis(Duration.fromInputUnsafe(input))

const codeOf = (error: unknown): string | undefined =>
  typeof error === "object" && error !== null ? (error as { code?: string }).code : undefined

/** `/proc/<pid>/stat`: state and start time, or `undefined` where there is no procfs (or no such process). */
const procStat = (pid: number): { readonly state: string; readonly start: string } | undefined => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1")
    // The command name (field 2) may hold spaces and parentheses: fields 3.. start after the last ")".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    const state = fields[0]
    const start = fields[19]
    return state === undefined || start === undefined ? undefined : { state, start }
  } catch {
    return undefined
  }
}

const selfStart = procStat(process.pid)?.start

/**
 * Whether the process that wrote a claim is still alive: signal 0 reaches it, it is not a zombie, and (where
 * `/proc` tells) it started when the claim says, so a later process given the same pid is not taken for it.
 * A stopped process (SIGSTOP) is alive: it may still finish.
 */
const ownerAlive = (pid: number, start: string | undefined): boolean => {
  try {
    process.kill(pid, 0)
  } catch (error) {
    // EPERM: it exists but belongs to someone else.
    if (codeOf(error) !== "EPERM") return false
  }
  const stat = procStat(pid)
  if (stat === undefined) return true
  if (stat.state === "Z" || stat.state === "X") return false
  return start === undefined || stat.start === start
}

const unknownOutcome = (entry: Entry): Outcome => ({
  _tag: "Failure",
  code: "internal",
  message:
    `${OUTCOME_UNKNOWN}: the worker that ran the first attempt of this call (pid ${entry.pid}) died before ` +
    "recording its outcome, so its effect may or may not have happened; it is not run again, which could " +
    "duplicate the effect",
  error: null,
})

const storeFailure = (error: unknown): Outcome => ({
  _tag: "Failure",
  code: "unavailable",
  message: `the dedupe store could not be used: ${error instanceof Error ? error.message : String(error)}`,
  error: null,
})

/**
 * Builds the store synchronously; throws if the directory cannot be created. See `make` for the Effect form.
 *
 * @since 0.1.0
 */
export const makeUnsafe = (options: FileOptions): FileDedupeStoreShape => {
  const directory = options.directory
  const ttlMs = ms(options.ttl, defaults.ttlMs)
  const pollIntervalMs = Math.max(1, ms(options.pollInterval, defaults.pollIntervalMs))
  const maxWaitMs = ms(options.maxWait, defaults.maxWaitMs)
  const sweepIntervalMs = ms(options.sweepInterval, defaults.sweepIntervalMs)
  const maxSweepEntries = options.maxSweepEntries ?? defaults.maxSweepEntries
  const now = options.now ?? Date.now
  for (let shard = 0; shard < SHARDS; shard++) mkdirSync(join(directory, shardName(shard)), { recursive: true })

  const stats = {
    claimed: 0,
    answeredFromStore: 0,
    waited: 0,
    outcomeUnknown: 0,
    conflicts: 0,
    abandoned: 0,
    expired: 0,
    errors: 0,
  }
  const held = new Map<string, Held>()
  const polls = new Map<string, Poll>()
  let pollTimer: ReturnType<typeof setInterval> | undefined
  let tempCounter = 0
  let lastSweep = now()
  let nextShard = Math.floor(Math.random() * SHARDS)

  const pathOf = (key: string): string => {
    const hash = createHash("sha256").update(key).digest("hex")
    return join(directory, hash.slice(0, 2), hash.slice(2))
  }
  const tempNear = (path: string): string =>
    `${path.slice(0, path.lastIndexOf("/"))}/.tmp.${process.pid}.${tempCounter++}`

  const read = (path: string): { readonly entry: Entry; readonly stats: Stats } | "missing" | "unreadable" => {
    let bytes: Buffer
    let stats: Stats
    let fd: number
    try {
      fd = openSync(path, "r")
    } catch (error) {
      if (codeOf(error) === "ENOENT") return "missing"
      throw error
    }
    try {
      // Entries are written whole (rename, link), so the size read here is the size of the entry.
      stats = fstatSync(fd)
      bytes = Buffer.allocUnsafe(stats.size)
      let offset = 0
      while (offset < bytes.length) {
        const n = readSync(fd, bytes, offset, bytes.length - offset, offset)
        if (n === 0) break
        offset += n
      }
      bytes = bytes.subarray(0, offset)
    } finally {
      closeSync(fd)
    }
    try {
      const entry = packr.unpack(bytes) as Entry
      return typeof entry === "object" && entry !== null && entry.v === 1 ? { entry, stats } : "unreadable"
    } catch {
      return "unreadable"
    }
  }

  /** Creates `path` holding `entry` unless it exists: the atomic claim. */
  const tryClaim = (path: string, entry: Entry): boolean => {
    const temp = tempNear(path)
    writeFileSync(temp, packr.pack(entry))
    try {
      linkSync(temp, path)
      return true
    } catch (error) {
      if (codeOf(error) === "EEXIST") return false
      throw error
    } finally {
      unlinkSync(temp)
    }
  }

  /** Replaces `path` with `entry` atomically. */
  const replace = (path: string, entry: Entry): void => {
    const temp = tempNear(path)
    writeFileSync(temp, packr.pack(entry))
    renameSync(temp, path)
  }

  /** Removes `path` if it is still the file `stats` describes (not a claim made since). */
  const removeIfSame = (path: string, stats: Stats): boolean => {
    try {
      const current = statSync(path)
      if (current.ino !== stats.ino || current.dev !== stats.dev) return false
      unlinkSync(path)
      return true
    } catch {
      return false
    }
  }

  const expired = (entry: Entry, at: number): boolean =>
    entry.outcome !== undefined
      ? (entry.completedAt ?? entry.claimedAt) + ttlMs <= at
      : entry.claimedAt + ttlMs <= at && !ownerAlive(entry.pid, entry.start)

  const sweepShard = (shard: number, limit: number): number => {
    const folder = join(directory, shardName(shard))
    let names: Array<string>
    try {
      names = readdirSync(folder)
    } catch {
      return 0
    }
    const at = now()
    let removed = 0
    for (let i = 0; i < names.length && i < limit; i++) {
      const path = join(folder, names[i]!)
      try {
        if (names[i]!.startsWith(".tmp.")) {
          // Left by a process that died between writing and linking or renaming it.
          if (statSync(path).mtimeMs + STALE_TEMP_MS <= Date.now()) unlinkSync(path)
          continue
        }
        const found = read(path)
        if (typeof found === "string") continue
        if (expired(found.entry, at) && removeIfSame(path, found.stats)) {
          removed++
          stats.expired++
        }
      } catch {
        // A file that vanished or cannot be read now is looked at again by a later sweep.
      }
    }
    return removed
  }

  const maybeSweep = (): void => {
    const at = now()
    if (at - lastSweep < sweepIntervalMs) return
    lastSweep = at
    sweepShard(nextShard, maxSweepEntries)
    nextShard = (nextShard + 1) % SHARDS
  }

  /** What a duplicate gets from another process's entry, or `undefined` if it must wait. */
  const settled = (found: ReturnType<typeof read>, key: string, fingerprint: string): Outcome | "wait" | "gone" => {
    if (found === "missing") return "gone"
    if (found === "unreadable") {
      stats.outcomeUnknown++
      return {
        _tag: "Failure",
        code: "internal",
        message: `${OUTCOME_UNKNOWN}: the dedupe entry of this call cannot be read; it is not run again`,
        error: null,
      }
    }
    const entry = found.entry
    // Another payload under the key now (it was abandoned and reused): this duplicate's attempt is over.
    if (entry.key !== key || entry.fingerprint !== fingerprint) return "gone"
    if (entry.outcome !== undefined) return entry.outcome
    if (ownerAlive(entry.pid, entry.start)) return "wait"
    stats.outcomeUnknown++
    return unknownOutcome(entry)
  }

  const pollOnce = (): void => {
    const at = now()
    for (const [key, poll] of polls) {
      let outcome: Outcome | undefined
      try {
        const result = settled(read(poll.path), poll.key, poll.fingerprint)
        if (result === "wait") {
          if (at < poll.until) continue
          outcome = undefined
        } else outcome = result === "gone" ? undefined : result
      } catch (error) {
        stats.errors++
        outcome = storeFailure(error)
      }
      polls.delete(key)
      for (const wake of poll.waiters) wake(outcome)
    }
    if (polls.size === 0 && pollTimer !== undefined) {
      clearInterval(pollTimer)
      pollTimer = undefined
    }
  }

  const waitFor = (key: string, fingerprint: string, path: string): Promise<Outcome | undefined> =>
    new Promise((resolve) => {
      const existing = polls.get(key)
      if (existing !== undefined && existing.fingerprint === fingerprint) {
        existing.waiters.push(resolve)
        return
      }
      polls.set(key, { key, fingerprint, path, until: now() + maxWaitMs, waiters: [resolve] })
      if (pollTimer === undefined) {
        pollTimer = setInterval(pollOnce, pollIntervalMs)
        // Waiting duplicates do not keep a process alive on their own.
        pollTimer.unref()
      }
    })

  const begin = (key: string, fingerprint: string): Begin => {
    const local = held.get(key)
    if (local !== undefined) {
      if (local.entry.fingerprint !== fingerprint) {
        stats.conflicts++
        return { _tag: "Conflict" }
      }
      stats.waited++
      return { _tag: "Running", wait: new Promise((resolve) => local.waiters.push(resolve)) }
    }
    try {
      maybeSweep()
      const path = pathOf(key)
      // A few rounds: the entry may vanish (abandoned, expired) between a failed claim and the read.
      for (let round = 0; round < 3; round++) {
        const entry: Entry = { v: 1, key, fingerprint, pid: process.pid, start: selfStart, claimedAt: now() }
        if (tryClaim(path, entry)) {
          held.set(key, { entry, path, waiters: [] })
          stats.claimed++
          return { _tag: "New" }
        }
        const found = read(path)
        if (found === "missing") continue
        if (found !== "unreadable") {
          if (found.entry.key !== key || found.entry.fingerprint !== fingerprint) {
            if (expired(found.entry, now())) {
              if (removeIfSame(path, found.stats)) stats.expired++
              continue
            }
            stats.conflicts++
            return { _tag: "Conflict" }
          }
          if (expired(found.entry, now())) {
            // Outside the window: the key is new again.
            if (removeIfSame(path, found.stats)) stats.expired++
            continue
          }
        }
        const result = settled(found, key, fingerprint)
        if (result === "gone") continue
        if (result === "wait") {
          stats.waited++
          return { _tag: "Running", wait: waitFor(key, fingerprint, path) }
        }
        if (typeof found !== "string" && found.entry.outcome !== undefined) {
          stats.answeredFromStore++
        }
        return { _tag: "Done", outcome: result }
      }
      stats.waited++
      return { _tag: "Running", wait: waitFor(key, fingerprint, path) }
    } catch (error) {
      // No answer is worse than a retryable one: the caller may try again, here or on another instance.
      stats.errors++
      return { _tag: "Done", outcome: storeFailure(error) }
    }
  }

  const complete = (key: string, outcome: Outcome): void => {
    const local = held.get(key)
    if (local === undefined) return
    held.delete(key)
    try {
      replace(local.path, { ...local.entry, outcome, completedAt: now() })
    } catch {
      // The claim stays: duplicates elsewhere wait (up to maxWait) rather than run the handler again.
      stats.errors++
    }
    for (const wake of local.waiters) wake(outcome)
  }

  const abandon = (key: string): void => {
    const local = held.get(key)
    if (local === undefined) return
    held.delete(key)
    stats.abandoned++
    try {
      unlinkSync(local.path)
    } catch {
      // Already gone.
    }
    for (const wake of local.waiters) wake(undefined)
  }

  return {
    directory,
    begin,
    complete,
    abandon,
    size: () => held.size,
    stats: () => ({ ...stats }),
    sweepAll: () => {
      let removed = 0
      for (let shard = 0; shard < SHARDS; shard++) removed += sweepShard(shard, Number.POSITIVE_INFINITY)
      return removed
    },
  }
}

const shardName = (shard: number): string => shard.toString(16).padStart(2, "0")

/**
 * Builds the store, creating the directory. Fails with `RpcError` code `invalid_argument` if it cannot.
 *
 * @since 0.1.0
 */
export const make = (options: FileOptions): Effect.Effect<FileDedupeStoreShape, RpcError> =>
  Effect.try({
    try: () => makeUnsafe(options),
    catch: (cause) =>
      new RpcError({
        code: "invalid_argument",
        message: `cannot use ${options.directory} as a dedupe store: ${cause instanceof Error ? cause.message : String(cause)}`,
        cause,
      }),
  })

/**
 * The file store as the node's `DedupeStore`: provide it to the node of every process that serves the
 * same services on this host, with the same directory.
 *
 * @example
 * ```ts
 * import { FileDedupeStore, Node } from "@zactor/core"
 * import { Layer } from "effect"
 *
 * const NodeLive = Node.layerZmq({ id: "worker-1" }).pipe(
 *   Layer.provide(FileDedupeStore.layer({ directory: "/var/lib/app/dedupe" })),
 * )
 * ```
 *
 * @since 0.1.0
 */
export const layer = (options: FileOptions): Layer.Layer<DedupeStore, RpcError> =>
  Layer.effect(DedupeStore, make(options))
