// Worker pools of in-process workers (handler sets served through one registration on the pool's node): the
// least busy worker takes each call, a crashed worker is replaced with fresh state, drain finishes calls in
// flight and refuses new ones; plus the restart arithmetic (intensity window, backoff) on its own.

import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Schema, Stream } from "effect"
import * as Contract from "../src/Contract.ts"
import * as Intensity from "../src/internal/restartIntensity.ts"
import { RpcError } from "../src/RpcError.ts"
import type * as Supervisor from "../src/Supervisor.ts"
import * as WorkerPool from "../src/WorkerPool.ts"
import { zmqNode } from "./fixtures.ts"

const Work = Contract.make("InProcessWork", {
  run: Contract.unary({
    payload: Schema.Struct({ ms: Schema.Number }),
    success: Schema.Struct({ worker: Schema.Number, served: Schema.Number }),
  }),
  crash: Contract.unary({ payload: Schema.Struct({}), success: Schema.Number }),
})

/** Each worker numbers itself and counts what it served: its own state, lost when it is replaced. */
const makeWorkers = () => {
  let built = 0
  return WorkerPool.inProcess(
    Work,
    Effect.sync(() => {
      const worker = ++built
      let served = 0
      return {
        run: ({ ms }: { readonly ms: number }) =>
          Effect.as(Effect.sleep(ms), undefined).pipe(Effect.map(() => ({ worker, served: ++served }))),
        crash: () => Effect.die(new Error(`worker ${worker} crashed`)),
      }
    }),
  )
}

describe("WorkerPool (in-process workers)", () => {
  it.live("routes to the least busy worker, replaces a crashed one, drains", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const node = yield* zmqNode({ id: "in-process-pool" })
        const pool = yield* WorkerPool.makeOn(node, Work, makeWorkers(), { size: 2 })
        const events: Array<Supervisor.SupervisorEvent> = []
        yield* Effect.forkScoped(Stream.runForEach(pool.events, (e) => Effect.sync(() => events.push(e))))
        assert.deepStrictEqual(
          pool.workers().map((w) => [w.id, w.kind, w.status]),
          [
            ["InProcessWork-pool-1", "in-process", "running"],
            ["InProcessWork-pool-2", "in-process", "running"],
          ],
        )
        // Two calls at once: one each (the second finds the first worker busy).
        const both = yield* Effect.all([pool.client.run({ ms: 200 }), pool.client.run({ ms: 200 })], {
          concurrency: 2,
        })
        assert.deepStrictEqual(both.map((r) => r.worker).sort(), [1, 2])

        // A defect crashes the worker that ran it: the call fails `internal`, a fresh worker (3) replaces it.
        const crash = yield* Effect.flip(pool.client.crash({}))
        assert.isTrue(RpcError.is(crash) && crash.code === "internal")
        yield* Effect.gen(function* () {
          while (pool.supervisor.counters().restarts < 1) yield* Effect.sleep(5)
        }).pipe(Effect.timeout("5 seconds"))
        const exited = events.find((e) => e._tag === "ChildExited")
        assert.strictEqual(exited?._tag === "ChildExited" ? exited.reason._tag : undefined, "Died")
        const after = yield* Effect.all([pool.client.run({ ms: 100 }), pool.client.run({ ms: 100 })], {
          concurrency: 2,
        })
        assert.deepStrictEqual(after.map((r) => r.worker).sort(), [2, 3].sort())
        // The new worker starts from its own fresh state.
        assert.strictEqual(after.find((r) => r.worker === 3)?.served, 1)

        // Drain: the call in flight finishes, a new call is refused with `unavailable` (retryable elsewhere).
        const slow = yield* Effect.forkChild(pool.client.run({ ms: 300 }))
        yield* Effect.sleep(50)
        const draining = yield* Effect.forkChild(pool.drain)
        yield* Effect.sleep(50)
        const refused = yield* Effect.flip(pool.client.run({ ms: 0 }))
        assert.isTrue(RpcError.is(refused) && refused.code === "unavailable")
        assert.strictEqual((yield* Fiber.join(slow)).served >= 1, true)
        yield* Fiber.join(draining)
        assert.deepStrictEqual(
          pool.workers().map((w) => w.status),
          ["stopped", "stopped"],
        )
      }),
    ),
  )

  it.live("resize stays within [minSize, maxSize]", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const node = yield* zmqNode({ id: "resizing-pool" })
        const pool = yield* WorkerPool.makeOn(node, Work, makeWorkers(), { minSize: 1, size: 1, maxSize: 3 })
        yield* pool.resize(3)
        assert.strictEqual(pool.workers().length, 3)
        yield* pool.resize(1)
        assert.deepStrictEqual(
          pool.workers().map((w) => w.id),
          ["InProcessWork-pool-1"],
        )
        const below = yield* Effect.flip(pool.resize(0))
        assert.strictEqual(below._tag === "WorkerPoolError" ? below.reason : undefined, "InvalidSize")
        const invalid = yield* Effect.flip(WorkerPool.makeOn(node, Work, makeWorkers(), { minSize: 2, size: 1 }))
        assert.strictEqual(invalid._tag === "WorkerPoolError" ? invalid.reason : undefined, "InvalidSize")
      }),
    ),
  )
})

describe("restart arithmetic", () => {
  it("the intensity window allows maxRestarts within any period, not one more", () => {
    const window = new Intensity.RestartWindow(3, 5_000)
    assert.deepStrictEqual(
      [0, 1_000, 2_000].map((t) => window.record(t)),
      [true, true, true],
    )
    assert.isFalse(window.record(3_000))
    // The window slides: a restart exactly one period after the first no longer counts it.
    const sliding = new Intensity.RestartWindow(3, 5_000)
    for (const t of [0, 1_000, 2_000]) sliding.record(t)
    assert.isTrue(sliding.record(5_000))
    assert.strictEqual(sliding.count(5_000), 3)
    assert.isFalse(new Intensity.RestartWindow(0, 1_000).record(0))
  })

  it("backoff: immediate first restart, then doubling from the initial delay up to the cap; reset after a healthy run", () => {
    const backoff = { initialBackoffMs: 100, maxBackoffMs: 1_000, backoffResetAfterMs: 1_000 }
    assert.deepStrictEqual(
      [1, 2, 3, 4, 5, 6].map((streak) => Intensity.delayMs(backoff, streak)),
      [0, 100, 200, 400, 800, 1_000],
    )
    assert.strictEqual(Intensity.nextStreak(backoff, 4, 999), 5)
    assert.strictEqual(Intensity.nextStreak(backoff, 4, 1_000), 1)
  })
})
