import { spawnSync } from "node:child_process"
import { accessSync, constants, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import * as Harness from "@zactor/transport/testing/harness"
import { Effect } from "effect"
import { Packr } from "msgpackr"
import { afterAll, afterEach } from "vitest"
import type { Outcome } from "../src/DedupeStore.ts"
import * as FileDedupeStore from "../src/FileDedupeStore.ts"

const racer = new URL("./fixtures/dedupe-racer.ts", import.meta.url).pathname
const directories: Array<string> = []
// tmpfs where there is one: the store's guarantees (process crashes, not host crashes) are the same there, and
// its metadata operations do not wait for a busy disk.
const base = (() => {
  try {
    accessSync("/dev/shm", constants.W_OK)
    return "/dev/shm"
  } catch {
    return tmpdir()
  }
})()
const freshDirectory = () => {
  const directory = mkdtempSync(join(base, "zactor-dedupe-"))
  directories.push(directory)
  return directory
}
afterEach(() => Harness.stopAll())
afterAll(() => {
  for (const directory of directories) rmSync(directory, { recursive: true, force: true })
})

const reply = (body: unknown): Outcome => ({ _tag: "Reply", body })

/** Every file holding an entry (not the shard folders). */
const entryFiles = (directory: string): Array<string> =>
  readdirSync(directory).flatMap((shard) => readdirSync(join(directory, shard)).map((name) => join(shard, name)))

const packr = new Packr({ useRecords: false })
/** Rewrites the entry file at `path` (a msgpack map) with `change`. */
const rewriteEntry = (path: string, change: (entry: Record<string, unknown>) => Record<string, unknown>) =>
  writeFileSync(path, packr.pack(change(packr.unpack(readFileSync(path)) as Record<string, unknown>)))

/** The pid of a process that has exited (and been reaped), so it is certainly not alive. */
const deadPid = (): number => spawnSync(process.execPath, ["-e", ""]).pid!

describe("FileDedupeStore in one process", () => {
  it.effect("a new key is claimed once; duplicates get the stored outcome; another payload conflicts", () =>
    Effect.sync(() => {
      const store = FileDedupeStore.makeUnsafe({ directory: freshDirectory() })
      assert.strictEqual(store.begin("k", "f")._tag, "New")
      assert.strictEqual(store.size(), 1)
      store.complete("k", reply({ n: 1, bytes: new Uint8Array([1, 2, 3]) }))
      assert.strictEqual(store.size(), 0)
      const done = store.begin("k", "f")
      assert.strictEqual(done._tag, "Done")
      assert.deepStrictEqual(
        done._tag === "Done" ? done.outcome : undefined,
        reply({ n: 1, bytes: new Uint8Array([1, 2, 3]) }),
      )
      assert.strictEqual(store.begin("k", "other")._tag, "Conflict")
      // A second store on the same directory (another process, or this one restarted) sees the same entry.
      const restarted = FileDedupeStore.makeUnsafe({ directory: store.directory })
      assert.strictEqual(restarted.begin("k", "f")._tag, "Done")
    }),
  )

  it.live("a duplicate while the first attempt runs in this process waits for its outcome", () =>
    Effect.gen(function* () {
      const store = FileDedupeStore.makeUnsafe({ directory: freshDirectory() })
      assert.strictEqual(store.begin("k", "f")._tag, "New")
      const running = store.begin("k", "f")
      assert.strictEqual(running._tag, "Running")
      assert.strictEqual(store.begin("k", "g")._tag, "Conflict")
      store.complete("k", { _tag: "Failure", code: "application", message: "no", error: { _tag: "No" } })
      const outcome = yield* Effect.promise(() => (running._tag === "Running" ? running.wait : Promise.reject()))
      assert.deepStrictEqual(outcome, { _tag: "Failure", code: "application", message: "no", error: { _tag: "No" } })
    }),
  )

  it.live("abandon releases the key: waiters get undefined, the next attempt runs anew", () =>
    Effect.gen(function* () {
      const store = FileDedupeStore.makeUnsafe({ directory: freshDirectory() })
      assert.strictEqual(store.begin("k", "f")._tag, "New")
      const running = store.begin("k", "f")
      store.abandon("k")
      const outcome = yield* Effect.promise(() => (running._tag === "Running" ? running.wait : Promise.reject()))
      assert.isUndefined(outcome)
      assert.deepStrictEqual(entryFiles(store.directory), [])
      assert.strictEqual(store.begin("k", "f")._tag, "New")
    }),
  )

  it.live("a claim held by another live process is Running until that process records its outcome", () =>
    Effect.gen(function* () {
      const directory = freshDirectory()
      const writer = FileDedupeStore.makeUnsafe({ directory })
      const reader = FileDedupeStore.makeUnsafe({ directory, pollInterval: 5 })
      // Same pid, but only `writer` holds the key in memory: `reader` has to poll the file like another process.
      assert.strictEqual(writer.begin("k", "f")._tag, "New")
      const running = reader.begin("k", "f")
      assert.strictEqual(running._tag, "Running")
      let settled = false
      const wait = (running._tag === "Running" ? running.wait : Promise.reject()).finally(() => {
        settled = true
      })
      yield* Effect.sleep(50)
      assert.isFalse(settled, "still running")
      writer.complete("k", reply(7))
      assert.deepStrictEqual(yield* Effect.promise(() => wait), reply(7))
    }),
  )

  it.effect("a claim whose owner died without an outcome is never run again: outcome unknown, not retryable", () =>
    Effect.sync(() => {
      const directory = freshDirectory()
      const store = FileDedupeStore.makeUnsafe({ directory })
      assert.strictEqual(store.begin("k", "f")._tag, "New")
      // Rewrite the claim as if a process that has since died had made it.
      const [file] = entryFiles(directory)
      const path = join(directory, file!)
      const pid = deadPid()
      rewriteEntry(path, (entry) => ({ ...entry, pid }))
      const other = FileDedupeStore.makeUnsafe({ directory })
      for (let i = 0; i < 2; i++) {
        const begun = other.begin("k", "f")
        assert.strictEqual(begun._tag, "Done")
        const outcome = begun._tag === "Done" ? begun.outcome : undefined
        assert.strictEqual(outcome?._tag === "Failure" ? outcome.code : undefined, "internal")
        assert.include(outcome?._tag === "Failure" ? outcome.message : "", FileDedupeStore.OUTCOME_UNKNOWN)
        assert.include(outcome?._tag === "Failure" ? outcome.message : "", `pid ${pid}`)
      }
    }),
  )

  it.effect("a live pid that started after the claim is not taken for its owner (pid reuse)", () =>
    Effect.sync(() => {
      const directory = freshDirectory()
      const store = FileDedupeStore.makeUnsafe({ directory })
      assert.strictEqual(store.begin("k", "f")._tag, "New")
      const [file] = entryFiles(directory)
      const path = join(directory, file!)
      // Same pid (alive: this process), another start time: the claim's owner is gone.
      rewriteEntry(path, (entry) => {
        assert.strictEqual(entry.pid, process.pid)
        assert.isString(entry.start)
        return { ...entry, start: `${entry.start}1` }
      })
      const begun = FileDedupeStore.makeUnsafe({ directory }).begin("k", "f")
      assert.strictEqual(begun._tag, "Done")
    }),
  )

  it.effect("just inside the window a duplicate is answered from the store; just outside it is a new call", () =>
    Effect.sync(() => {
      let now = 1_000_000
      const store = FileDedupeStore.makeUnsafe({ directory: freshDirectory(), ttl: 1000, now: () => now })
      assert.strictEqual(store.begin("k", "f")._tag, "New")
      store.complete("k", reply(1))
      now += 999
      assert.strictEqual(store.begin("k", "f")._tag, "Done")
      now += 1
      assert.strictEqual(store.begin("k", "f")._tag, "New", "outside the window the key is new again")
    }),
  )

  it.effect("the sweep removes finished entries and dead owners' claims older than the ttl, and nothing else", () =>
    Effect.sync(() => {
      let now = 1_000_000
      const directory = freshDirectory()
      const store = FileDedupeStore.makeUnsafe({ directory, ttl: 1000, now: () => now })
      for (let i = 0; i < 50; i++) {
        assert.strictEqual(store.begin(`old-${i}`, "f")._tag, "New")
        store.complete(`old-${i}`, reply(i))
      }
      assert.strictEqual(store.begin("running", "f")._tag, "New")
      now += 600
      for (let i = 0; i < 10; i++) {
        assert.strictEqual(store.begin(`young-${i}`, "f")._tag, "New")
        store.complete(`young-${i}`, reply(i))
      }
      assert.lengthOf(entryFiles(directory), 61)
      now += 500
      assert.strictEqual(store.sweepAll(), 50)
      // The young keys and the claim of a live owner (this process) stay, however old.
      assert.lengthOf(entryFiles(directory), 11)
      now += 10_000
      assert.strictEqual(store.sweepAll(), 10)
      assert.lengthOf(entryFiles(directory), 1)
      assert.strictEqual(store.begin("running", "f")._tag, "Running")
    }),
  )

  it.effect("sweeping is bounded: one shard per interval, at most maxSweepEntries files each", () =>
    Effect.sync(() => {
      let now = 1_000_000
      const directory = freshDirectory()
      const store = FileDedupeStore.makeUnsafe({
        directory,
        ttl: 10,
        sweepInterval: 100,
        maxSweepEntries: 2,
        now: () => now,
      })
      for (let i = 0; i < 300; i++) {
        store.begin(`k-${i}`, "f")
        store.complete(`k-${i}`, reply(i))
      }
      now += 1000
      // Each begin after the interval sweeps one shard and at most two of its files; within it, none.
      const expired = () => store.stats().expired
      for (let i = 0; i < 256; i++) {
        const before = expired()
        store.begin(`trigger-${i}`, "f")
        assert.isAtMost(expired() - before, 2)
        const swept = expired()
        store.begin(`within-${i}`, "f")
        assert.strictEqual(expired(), swept, "no sweep within the interval")
        now += 100
      }
      // Every shard was visited once, two files each at most: most of the 300 expired keys are gone, and none
      // of the 512 claims made since (their owner, this process, is alive).
      assert.isAtLeast(expired(), 200)
      assert.strictEqual(entryFiles(directory).length, 300 + 512 - expired())
    }),
  )
})

describe("FileDedupeStore across processes", () => {
  it.live(
    "processes racing for the same keys: each key runs exactly once, and everyone gets that run's outcome",
    () =>
      Effect.gen(function* () {
        const directory = freshDirectory()
        const ranFile = join(directory, "ran.log")
        writeFileSync(ranFile, "")
        const racers = yield* Effect.promise(() =>
          Promise.all([0, 1, 2].map(() => Harness.start(racer, { args: [directory], readyTimeoutMs: 60_000 }))),
        )
        const keys = Array.from({ length: 500 }, (_, i) => `race-${i}`)
        // Each racer walks the keys from a different starting point, so a racer that starts a little late still
        // meets keys nobody has claimed yet, and then collides with the others.
        racers.forEach((process, i) => {
          const offset = Math.floor((i * keys.length) / racers.length)
          process.send({ type: "race", keys: [...keys.slice(offset), ...keys.slice(0, offset)], ranFile })
        })
        const results = yield* Effect.promise(() =>
          Promise.all(racers.map((process) => process.waitForMessage((m) => m.type === "raced", 20_000))),
        )
        const ran = new Map<string, Array<number>>()
        for (const line of readFileSync(ranFile, "utf8")
          .split("\n")
          .filter((l) => l !== "")) {
          const [key, pid] = line.split(" ")
          ran.set(key!, [...(ran.get(key!) ?? []), Number(pid)])
        }
        const runsPerProcess = new Map<number, number>()
        for (const key of keys) {
          const runs = ran.get(key) ?? []
          assert.lengthOf(runs, 1, `${key} ran ${runs.length} times`)
          runsPerProcess.set(runs[0]!, (runsPerProcess.get(runs[0]!) ?? 0) + 1)
          for (const result of results) {
            assert.strictEqual((result.results as Record<string, unknown>)[key], runs[0], `${key}: same outcome`)
          }
        }
        // Not a foregone conclusion: more than one process won keys, so they really raced.
        assert.isAtLeast(runsPerProcess.size, 2, `winners: ${JSON.stringify([...runsPerProcess])}`)
      }),
    // Starting three processes on a loaded 2-core machine can take most of a minute.
    120_000,
  )

  it.live(
    "a duplicate waits for the claim of another live process; when that process dies instead, outcome unknown",
    () =>
      Effect.gen(function* () {
        const directory = freshDirectory()
        const store = FileDedupeStore.makeUnsafe({ directory, pollInterval: 5 })
        const owner = yield* Effect.promise(() => Harness.start(racer, { args: [directory], readyTimeoutMs: 60_000 }))
        const ask = (message: Harness.FixtureMessage, type: string) =>
          Effect.promise(() => {
            const before = owner.messages.length
            owner.send(message)
            return owner.waitForMessage((m) => m.type === type && owner.messages.indexOf(m) >= before, 10_000)
          })

        // Owner completes: the waiting duplicate gets its outcome.
        assert.strictEqual((yield* ask({ type: "claim", key: "a" }, "claimed")).tag, "New")
        const a = store.begin("a", "same-payload")
        assert.strictEqual(a._tag, "Running")
        yield* ask({ type: "complete", key: "a", body: "done by owner" }, "completed")
        assert.deepStrictEqual(
          yield* Effect.promise(() => (a._tag === "Running" ? a.wait : Promise.reject())),
          reply("done by owner"),
        )

        // Owner abandons: the duplicate is told to try again, and then runs.
        assert.strictEqual((yield* ask({ type: "claim", key: "b" }, "claimed")).tag, "New")
        const b = store.begin("b", "same-payload")
        yield* ask({ type: "abandon", key: "b" }, "abandoned")
        assert.isUndefined(yield* Effect.promise(() => (b._tag === "Running" ? b.wait : Promise.reject())))
        assert.strictEqual(store.begin("b", "same-payload")._tag, "New")

        // Owner frozen (SIGSTOP): still alive, the duplicate keeps waiting; then killed: outcome unknown.
        assert.strictEqual((yield* ask({ type: "claim", key: "c" }, "claimed")).tag, "New")
        owner.freeze()
        const c = store.begin("c", "same-payload")
        assert.strictEqual(c._tag, "Running")
        let settled = false
        const wait = (c._tag === "Running" ? c.wait : Promise.reject()).finally(() => {
          settled = true
        })
        yield* Effect.sleep(100)
        assert.isFalse(settled, "a frozen owner may still finish: keep waiting")
        yield* Effect.promise(() => owner.kill())
        const outcome = yield* Effect.promise(() => wait)
        assert.strictEqual(outcome?._tag === "Failure" ? outcome.code : undefined, "internal")
        assert.include(outcome?._tag === "Failure" ? outcome.message : "", FileDedupeStore.OUTCOME_UNKNOWN)
        // And so does every later duplicate: it is never run again.
        const later = store.begin("c", "same-payload")
        assert.strictEqual(later._tag, "Done")
      }),
    120_000,
  )
})
