import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { type DeadlineEntry, DeadlineQueue } from "../src/internal/deadlines.ts"

class Entry implements DeadlineEntry {
  deadlineAt = 0
  deadlinePrev: DeadlineEntry | undefined = undefined
  deadlineNext: DeadlineEntry | undefined = undefined
  deadlineList: DeadlineEntry["deadlineList"] = undefined
  readonly name: string
  constructor(name: string) {
    this.name = name
  }
}

const sleep = (ms: number) => Effect.promise(() => new Promise((resolve) => setTimeout(resolve, ms)))

describe("DeadlineQueue", () => {
  it.live("expires entries at their deadline, in deadline order across timeouts, not before", () =>
    Effect.gen(function* () {
      const expired: Array<string> = []
      const queue = new DeadlineQueue<Entry>((entry) => expired.push(entry.name))
      const started = performance.now()
      const when = new Map<string, number>()
      const record = new DeadlineQueue<Entry>((entry) => {
        when.set(entry.name, performance.now() - started)
        expired.push(entry.name)
      })
      record.add(new Entry("slow"), 120)
      record.add(new Entry("fast-1"), 40)
      record.add(new Entry("fast-2"), 40)
      queue.add(new Entry("never"), 10_000)
      yield* sleep(20)
      assert.deepStrictEqual(expired, [], "nothing is due yet")
      yield* sleep(200)
      assert.deepStrictEqual(expired, ["fast-1", "fast-2", "slow"])
      assert.isAtLeast(when.get("fast-1")!, 40)
      assert.isAtLeast(when.get("slow")!, 120)
      queue.clear()
    }),
  )

  it.live("a removed entry never expires, wherever it was in its list", () =>
    Effect.gen(function* () {
      const expired: Array<string> = []
      const queue = new DeadlineQueue<Entry>((entry) => expired.push(entry.name))
      const entries = ["a", "b", "c", "d"].map((name) => new Entry(name))
      for (const entry of entries) queue.add(entry, 30)
      queue.remove(entries[0]!) // head
      queue.remove(entries[2]!) // middle
      queue.remove(entries[2]!) // twice: a no-op
      yield* sleep(80)
      assert.deepStrictEqual(expired, ["b", "d"])
      // Removed entries keep no links to the others (nothing retained through them).
      assert.isUndefined(entries[0]!.deadlineNext)
      assert.isUndefined(entries[2]!.deadlinePrev)
    }),
  )

  it.live("an entry expiring re-arms for the next one, and entries added later in the same list expire too", () =>
    Effect.gen(function* () {
      const expired: Array<string> = []
      const queue = new DeadlineQueue<Entry>((entry) => expired.push(entry.name))
      queue.add(new Entry("first"), 30)
      yield* sleep(15)
      queue.add(new Entry("second"), 30)
      // The list's timer was armed for "first"; removing it must not lose "second".
      yield* sleep(25)
      assert.deepStrictEqual(expired, ["first"])
      yield* sleep(40)
      assert.deepStrictEqual(expired, ["first", "second"])
    }),
  )

  it.live("clear unschedules everything", () =>
    Effect.gen(function* () {
      const expired: Array<string> = []
      const queue = new DeadlineQueue<Entry>((entry) => expired.push(entry.name))
      const entry = new Entry("x")
      queue.add(entry, 20)
      queue.clear()
      assert.isUndefined(entry.deadlineList)
      yield* sleep(50)
      assert.deepStrictEqual(expired, [])
    }),
  )
})
