// The in-memory dedupe window (DedupeStore.memory) against a plain reference model: random claims, completions,
// duplicates, conflicts, abandons and clock steps must give the same answers, and its bounds (count, bytes, time)
// must hold. Its finished keys live in typed arrays and a byte arena (internal/finishedWindow.ts), so exactness on
// keys (hash collisions, UTF-8, long keys) is what these tests guard.
import { assert, describe, it } from "@effect/vitest"
import * as DedupeStore from "../src/DedupeStore.ts"
import { LARGE_KEPT } from "../src/internal/finishedWindow.ts"

type Outcome = DedupeStore.Outcome

/** The reference: finished keys in a Map in completion order, evicted past `maxEntries` or at expiry. */
const reference = (maxEntries: number, ttlMs: number, now: () => number) => {
  const finished = new Map<string, { fingerprint: string; outcome: Outcome; expiresAt: number }>()
  const running = new Map<string, string>()
  const sweep = (at: number) => {
    for (const [key, entry] of finished) {
      if (entry.expiresAt > at) break
      finished.delete(key)
    }
  }
  return {
    begin: (key: string, fingerprint: string): string => {
      const at = now()
      sweep(at)
      const done = finished.get(key)
      if (done !== undefined && done.expiresAt > at) {
        return done.fingerprint === fingerprint ? `Done ${JSON.stringify(done.outcome)}` : "Conflict"
      }
      const claimed = running.get(key)
      if (claimed === undefined) {
        running.set(key, fingerprint)
        return "New"
      }
      return claimed === fingerprint ? "Running" : "Conflict"
    },
    complete: (key: string, outcome: Outcome) => {
      const fingerprint = running.get(key)
      if (fingerprint === undefined) return
      running.delete(key)
      finished.delete(key)
      finished.set(key, { fingerprint, outcome, expiresAt: now() + ttlMs })
      if (finished.size > maxEntries) finished.delete(finished.keys().next().value!)
      sweep(now())
    },
    abandon: (key: string) => {
      running.delete(key)
    },
    size: () => running.size + finished.size,
  }
}

const describeBegin = (begun: DedupeStore.Begin): string =>
  begun._tag === "Done" ? `Done ${JSON.stringify(begun.outcome)}` : begun._tag

/** A small deterministic generator (mulberry32), so a failure can be replayed from its seed. */
const random = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

describe("the in-memory dedupe window", () => {
  it("answers as the reference model over 40,000 random operations (seeds 1-5, a small and a growing window)", () => {
    const configs = [
      { maxEntries: 50, keyCount: 120, steps: 4_000 },
      // 500 entries of up to 700 bytes: the arena grows from 64 KiB twice, entries moved as it does.
      { maxEntries: 500, keyCount: 1_500, steps: 4_000 },
    ]
    for (const { maxEntries, keyCount, steps } of configs)
      for (let seed = 1; seed <= 5; seed++) {
        const next = random(seed)
        let clock = 1_000_000
        const now = () => clock
        const ttlMs = 400
        const store = DedupeStore.memory({ maxEntries, ttl: ttlMs, now })
        const model = reference(maxEntries, ttlMs, now)
        // Keys of every length class, non-ASCII ones too, from a pool small enough to repeat often.
        const keys = Array.from({ length: keyCount }, (_, i) =>
          i % 7 === 0
            ? `clé-${i}-${"é".repeat(i % 150)}`
            : i % 5 === 0
              ? `k${i}-${"x".repeat(300)}`
              : `Svc/m\u0000k${i}`,
        )
        for (let step = 0; step < steps; step++) {
          const key = keys[Math.floor(next() * keys.length)]!
          const roll = next()
          if (roll < 0.45) {
            const fingerprint = next() < 0.9 ? "=same" : "=other"
            const got = describeBegin(store.begin(key, fingerprint))
            const want = model.begin(key, fingerprint)
            assert.strictEqual(got, want, `${maxEntries} entries, seed ${seed}, step ${step}: begin ${key}`)
          } else if (roll < 0.8) {
            const outcome: Outcome =
              next() < 0.8
                ? { _tag: "Reply", body: { step, bytes: "y".repeat(Math.floor(next() * 200)) } }
                : { _tag: "Failure", code: "internal", message: `failed at ${step}`, error: null }
            store.complete(key, outcome)
            model.complete(key, outcome)
          } else if (roll < 0.85) {
            store.abandon(key)
            model.abandon(key)
          } else {
            clock += Math.floor(next() * 60)
          }
          assert.strictEqual(store.size(), model.size(), `${maxEntries} entries, seed ${seed}, step ${step}: size`)
        }
      }
  })

  it("tells keys apart exactly, even when their hashes collide in the index", () => {
    // 100,000 keys in a window of 100,000: far more keys than index buckets per chain can avoid sharing.
    const store = DedupeStore.memory({ maxEntries: 100_000 })
    for (let i = 0; i < 100_000; i++) {
      store.begin(`key-${i}`, "=f")
      store.complete(`key-${i}`, { _tag: "Reply", body: i })
    }
    for (const i of [0, 1, 4_242, 99_999]) {
      assert.deepStrictEqual(store.begin(`key-${i}`, "=f"), { _tag: "Done", outcome: { _tag: "Reply", body: i } })
    }
    assert.strictEqual(store.begin("key-100000", "=f")._tag, "New")
    assert.strictEqual(store.begin("key-1", "=g")._tag, "Conflict")
  })

  it("is bounded by bytes: the oldest finished keys make room, the newest stay", () => {
    const store = DedupeStore.memory({ maxEntries: 10_000, maxBytes: 64 * 1024 })
    const body = "z".repeat(1_000)
    for (let i = 0; i < 1_000; i++) {
      store.begin(`k${i}`, "=f")
      store.complete(`k${i}`, { _tag: "Reply", body: `${i}:${body}` })
    }
    // About 1 KiB each in 64 KiB: some 60 are kept, the latest ones.
    assert.isAtMost(store.size(), 64)
    assert.isAtLeast(store.size(), 50)
    assert.strictEqual(store.begin("k0", "=f")._tag, "New", "the oldest went")
    // Every key still held answers its own outcome intact (the arena wrapped about 15 times), and those held
    // are the newest: a suffix of the order they finished in.
    const held: Array<number> = []
    for (let i = 0; i < 1_000; i++) {
      const begun = store.begin(`k${i}`, "=f")
      if (begun._tag === "New" || begun._tag === "Running") continue
      assert.isTrue(begun._tag === "Done" && begun.outcome._tag === "Reply" && begun.outcome.body === `${i}:${body}`)
      held.push(i)
    }
    assert.isAtLeast(held.length, 50)
    assert.deepStrictEqual(
      held,
      Array.from({ length: held.length }, (_, j) => 1_000 - held.length + j),
    )
  })

  it("grows its arena as needed: below maxBytes, only the count evicts", () => {
    // 1,200 entries of about 600 bytes in a window of 1,000 and 4 MiB: the arena grows from 64 KiB to 1 MiB,
    // moving the entries each time, and the 1,000 newest are all there, intact.
    const store = DedupeStore.memory({ maxEntries: 1_000, maxBytes: 4 * 1024 * 1024 })
    const body = "b".repeat(580)
    for (let i = 0; i < 1_200; i++) {
      store.begin(`grow-${i}`, "=f")
      store.complete(`grow-${i}`, { _tag: "Reply", body: `${i}${body}` })
    }
    assert.strictEqual(store.size(), 1_000)
    for (let i = 0; i < 1_200; i++) {
      const begun = store.begin(`grow-${i}`, "=f")
      if (i < 200) assert.strictEqual(begun._tag, "New", `grow-${i} evicted by count`)
      else
        assert.isTrue(begun._tag === "Done" && begun.outcome._tag === "Reply" && begun.outcome.body === `${i}${body}`)
    }
  })

  it("keeps outcomes too large for its arena apart, the most recent only", () => {
    const store = DedupeStore.memory({ maxBytes: 8 * 1024 })
    const large = "L".repeat(2_000) // over an eighth of 8 KiB
    for (let i = 0; i < LARGE_KEPT + 2; i++) {
      store.begin(`big${i}`, "=f")
      store.complete(`big${i}`, { _tag: "Reply", body: large })
    }
    store.begin("small", "=f")
    store.complete("small", { _tag: "Reply", body: 1 })
    assert.strictEqual(store.size(), LARGE_KEPT + 1)
    assert.strictEqual(store.begin("big0", "=f")._tag, "New", "past the large ones kept")
    const kept = store.begin(`big${LARGE_KEPT + 1}`, "=f")
    assert.isTrue(kept._tag === "Done" && kept.outcome._tag === "Reply" && kept.outcome.body === large)
    assert.deepStrictEqual(store.begin("small", "=f"), { _tag: "Done", outcome: { _tag: "Reply", body: 1 } })
  })

  it("gives back outcomes as they were stored: bytes, failures with their error, nested values", () => {
    const store = DedupeStore.memory()
    const outcomes: ReadonlyArray<Outcome> = [
      { _tag: "Reply", body: new Uint8Array([1, 2, 3]) },
      { _tag: "Reply", body: null },
      { _tag: "Failure", code: "invalid_argument", message: "no", error: { _tag: "Nope", field: "x" } },
      { _tag: "Reply", body: { list: [1, "two", { three: 3.5 }], flag: true } },
    ]
    outcomes.forEach((outcome, i) => {
      store.begin(`o${i}`, "=f")
      store.complete(`o${i}`, outcome)
    })
    outcomes.forEach((outcome, i) => {
      const begun = store.begin(`o${i}`, "=f")
      assert.strictEqual(begun._tag, "Done")
      if (begun._tag !== "Done") return
      if (outcome._tag === "Reply" && outcome.body instanceof Uint8Array) {
        assert.isTrue(begun.outcome._tag === "Reply" && begun.outcome.body instanceof Uint8Array)
        assert.deepStrictEqual([...(begun.outcome as { body: Uint8Array }).body], [1, 2, 3])
      } else {
        assert.deepStrictEqual(begun.outcome, outcome)
      }
    })
  })
})
