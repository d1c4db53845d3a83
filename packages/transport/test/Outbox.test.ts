import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as BatchFrame from "../src/BatchFrame.ts"
import { Outbox, type OutboxLimits, type WriteGate } from "../src/internal/outbox.ts"
import * as TransportMetrics from "../src/TransportMetrics.ts"

const limits = (overrides: Partial<OutboxLimits> = {}): OutboxLimits => ({
  maxBatchMessages: 64,
  earlyBatchMessages: 16,
  maxBatchBytes: 256 * 1024,
  maxQueuedMessages: 10_000,
  maxQueuedBytes: 64 * 1024 * 1024,
  sendTimeoutMs: 5000,
  ...overrides,
})

/**
 * An outbox whose writes go to `write` as the payload count of each batch (-1 for a frame that does not decode);
 * a rejected write is back-pressure (`Busy`). `dropped.count` counts what it drops.
 */
const outboxOver = (
  write: (payloads: number) => Promise<void>,
  options: Partial<OutboxLimits> = {},
  gate?: WriteGate,
) => {
  const dropped = { count: 0 }
  const outbox = new Outbox(
    limits(options),
    {
      write: (frame) => {
        const batch = BatchFrame.decode(frame, 1 << 20)
        return write(BatchFrame.isRejection(batch) ? -1 : batch.payloads.length)
      },
      classify: () => "Busy",
      onDropped: (messages) => {
        dropped.count += messages
      },
    },
    TransportMetrics.make(),
    undefined,
    gate,
  )
  return { outbox, dropped }
}

/** An outbox whose writes succeed at once and are recorded as the payload counts of each batch. */
const recording = (options: Partial<OutboxLimits> = {}, gate?: WriteGate) => {
  const batches: Array<number> = []
  const { outbox } = outboxOver(
    (payloads) => {
      batches.push(payloads)
      return Promise.resolve()
    },
    options,
    gate,
  )
  return { outbox, batches }
}

/** A gate held or not by the test. */
const testGate = () => {
  const deferred = new Set<Outbox>()
  const gate = {
    holding: false,
    busy: false,
    get earlyAllowed() {
      return !gate.holding && !gate.busy
    },
    defer: (outbox: Outbox) => void deferred.add(outbox),
    release: () => {
      gate.holding = false
      for (const outbox of deferred) outbox.release()
      deferred.clear()
    },
  }
  return gate
}

const payload = Buffer.from("x")
const turn = () => Effect.promise(() => new Promise((resolve) => setImmediate(resolve)))

describe("Outbox batching", () => {
  it.live("a turn's payloads leave together at its end, the first earlyBatchMessages of them at once", () =>
    Effect.gen(function* () {
      const { outbox, batches } = recording()
      for (let i = 0; i < 10; i++) outbox.offer(payload)
      assert.deepStrictEqual(batches, [], "a small turn waits for its end")
      yield* turn()
      assert.deepStrictEqual(batches, [10])

      for (let i = 0; i < 40; i++) outbox.offer(payload)
      assert.deepStrictEqual(batches, [10, 16], "the first 16 left before the turn ended")
      yield* turn()
      assert.deepStrictEqual(batches, [10, 16, 24])
    }),
  )

  it.live("with earlyBatchMessages 0, a turn leaves as one batch (up to maxBatchMessages each)", () =>
    Effect.gen(function* () {
      const { outbox, batches } = recording({ earlyBatchMessages: 0, maxBatchMessages: 32 })
      for (let i = 0; i < 40; i++) outbox.offer(payload)
      assert.deepStrictEqual(batches, [32], "a full batch does not wait for the turn to end")
      yield* turn()
      assert.deepStrictEqual(batches, [32, 8])
    }),
  )

  it.live("no early batch while the transport's peers keep it busy: the turn leaves whole", () =>
    Effect.gen(function* () {
      const gate = testGate()
      const { outbox, batches } = recording({ maxBatchMessages: 64 }, gate)
      gate.busy = true
      for (let i = 0; i < 40; i++) outbox.offer(payload)
      assert.deepStrictEqual(batches, [])
      yield* turn()
      assert.deepStrictEqual(batches, [40])
    }),
  )

  it.live("while the gate holds, turns accumulate into full batches; releasing sends the rest", () =>
    Effect.gen(function* () {
      const gate = testGate()
      const { outbox, batches } = recording({ maxBatchMessages: 64 }, gate)
      gate.holding = true
      for (let t = 0; t < 5; t++) {
        for (let i = 0; i < 20; i++) outbox.offer(payload)
        yield* turn()
      }
      assert.deepStrictEqual(batches, [64], "no early batch and no batch per turn while held")
      gate.release()
      yield* turn()
      assert.deepStrictEqual(batches, [64, 36])
    }),
  )

  it.live("payloads offered with `more` from separate callbacks leave together at the iteration's end", () =>
    Effect.gen(function* () {
      const { outbox, batches } = recording({ earlyBatchMessages: 0 })
      // Ten answers finished by ten callbacks of one event-loop iteration, as handlers waiting on timers or I/O.
      yield* Effect.promise(
        () =>
          new Promise<void>((done) => {
            for (let i = 0; i < 10; i++) setImmediate(() => outbox.offer(payload, true))
            setImmediate(done)
          }),
      )
      assert.deepStrictEqual(batches, [], "nothing left before the iteration ended")
      yield* turn()
      assert.deepStrictEqual(batches, [10])

      // The same without `more`: every callback's turn ends with its own batch.
      yield* Effect.promise(
        () =>
          new Promise<void>((done) => {
            for (let i = 0; i < 10; i++) setImmediate(() => outbox.offer(payload))
            setImmediate(done)
          }),
      )
      assert.deepStrictEqual(batches, [10, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1])
    }),
  )

  it.live("a plain offer leaves at the end of its turn and takes the payloads waiting with `more`", () =>
    Effect.gen(function* () {
      const { outbox, batches } = recording({ earlyBatchMessages: 0 })
      for (let i = 0; i < 3; i++) outbox.offer(payload, true)
      outbox.offer(payload)
      yield* Effect.promise(() => Promise.resolve())
      assert.deepStrictEqual(batches, [4], "left at the end of the turn, not of the iteration")
      yield* turn()
      assert.deepStrictEqual(batches, [4], "the iteration's drain found nothing left")
    }),
  )
})

describe("Outbox close", () => {
  it.live("waits for the batch being written, then writes what was queued behind it", () =>
    Effect.gen(function* () {
      const batches: Array<number> = []
      const pending: Array<() => void> = []
      // Each write completes when the test says (a socket that takes its time).
      const { outbox, dropped } = outboxOver(
        (payloads) => {
          batches.push(payloads)
          return new Promise<void>((resolve) => pending.push(resolve))
        },
        { maxBatchMessages: 4 },
      )
      for (let i = 0; i < 4; i++) outbox.offer(payload)
      assert.deepStrictEqual(batches, [4], "a full batch is being written")
      for (let i = 0; i < 3; i++) outbox.offer(payload)
      const closed = Effect.runPromise(Effect.promise(() => outbox.close()))
      yield* turn()
      pending.shift()!()
      yield* turn()
      assert.deepStrictEqual(batches, [4, 3], "what was queued behind the write left too")
      pending.shift()!()
      yield* Effect.promise(() => closed)
      assert.strictEqual(dropped.count, 0)
      assert.isFalse(outbox.offer(payload), "closed: no more offers")
    }),
  )

  it.live("tries a refusing destination once more instead of dropping at once", () =>
    Effect.gen(function* () {
      let writable = false
      const written: Array<number> = []
      const { outbox, dropped } = outboxOver(
        (payloads) => {
          if (!writable) return Promise.reject(new Error("busy"))
          written.push(payloads)
          return Promise.resolve()
        },
        { sendTimeoutMs: 60_000 },
      )
      for (let i = 0; i < 3; i++) outbox.offer(payload)
      yield* turn()
      assert.deepStrictEqual(written, [], "refused: waiting for its retry")
      writable = true
      yield* Effect.promise(() => outbox.close())
      assert.deepStrictEqual(written, [3])
      assert.strictEqual(dropped.count, 0)
    }),
  )
})
