// Worker pools of in-process workers (handler sets served through one registration on the pool's node): the
// least busy worker takes each call, a crashed worker is replaced with fresh state, drain finishes calls in
// flight and refuses new ones; load-based autoscaling grows the pool under load and shrinks it (drained) when the
// load goes; a pool under a supervisor escalates to it; plus the restart and autoscaling arithmetic on its own.

import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Schema, Stream } from "effect"
import * as Contract from "../src/Contract.ts"
import * as Autoscaler from "../src/internal/poolAutoscaler.ts"
import * as Intensity from "../src/internal/restartIntensity.ts"
import { RpcError } from "../src/RpcError.ts"
import * as Supervisor from "../src/Supervisor.ts"
import { SupervisorError } from "../src/SupervisorError.ts"
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
        // It went where least-in-flight routing sends it: both live workers idle, the first in rotation (2, which
        // served a call of each pair above), never the crashed one; and it completed although the pool drained.
        assert.deepStrictEqual(yield* Fiber.join(slow), { worker: 2, served: 3 })
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

/** Waits until `condition` holds (checked every 5 ms); fails the test with `what` after `timeoutMs`. */
const eventually = (condition: () => boolean, timeoutMs: number, what: string) =>
  Effect.gen(function* () {
    while (!condition()) yield* Effect.sleep(5)
  }).pipe(Effect.timeoutOrElse({ duration: timeoutMs, orElse: () => Effect.die(new Error(`timed out: ${what}`)) }))

describe("WorkerPool autoscaling (in-process workers)", () => {
  it.live("grows toward maxSize under load, shrinks back to minSize when it stops, draining the retired worker", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const node = yield* zmqNode({ id: "autoscaled-pool" })
        const pool = yield* WorkerPool.makeOn(node, Work, makeWorkers(), {
          minSize: 1,
          maxSize: 3,
          // 3 calls in flight on 3 workers counts as low (1.5 per worker of 2): the shrink happens while the
          // slow calls below are still in flight.
          autoscale: {
            scaleUpAbove: 2,
            scaleUpAfter: "300 millis",
            scaleDownBelow: 1.5,
            scaleDownAfter: "600 millis",
            sampleInterval: "20 millis",
          },
        })
        let largest = 0
        let smallest = Number.POSITIVE_INFINITY
        yield* Effect.forkScoped(
          Effect.forever(
            Effect.andThen(
              Effect.sync(() => {
                largest = Math.max(largest, pool.workers().length)
                smallest = Math.min(smallest, pool.workers().length)
              }),
              Effect.sleep(5),
            ),
          ),
        )
        // Steady load: 8 callers, one 20 ms call after another (8 in flight: 8 per worker at size 1, 4 at 2).
        let loading = true
        const caller = Effect.whileLoop({
          while: () => loading,
          body: () => pool.client.run({ ms: 20 }),
          step: () => {},
        })
        const load = yield* Effect.forkChild(
          Effect.all(
            Array.from({ length: 8 }, () => caller),
            { concurrency: 8 },
          ),
        )
        yield* eventually(() => pool.size() === 3, 10_000, "the pool to grow to maxSize")
        loading = false
        yield* Fiber.join(load)
        // One slow call on each worker (the least busy takes each): the newest is retired while its call runs.
        const slow = yield* Effect.forkChild(
          Effect.all(
            Array.from({ length: 3 }, () => pool.client.run({ ms: 3_000 })),
            { concurrency: 3 },
          ),
        )
        yield* eventually(() => pool.size() === 2, 2_500, "a shrink while the slow calls run")
        // The newest drains (stopping, taking no calls) while its call runs on.
        assert.deepStrictEqual(
          pool.workers().map((w) => [w.id, w.status]),
          [
            ["InProcessWork-pool-1", "running"],
            ["InProcessWork-pool-2", "running"],
            ["InProcessWork-pool-3", "stopping"],
          ],
        )
        const replies = yield* Fiber.join(slow)
        // Then it stops (its drain looks every 5 ms).
        yield* eventually(() => pool.workers().length === 2, 1_000, "the retired worker to stop")
        // Drained, not failed: the retired worker (3) finished its call.
        assert.deepStrictEqual(replies.map((r) => r.worker).sort(), [1, 2, 3])
        yield* eventually(() => pool.size() === 1, 5_000, "the pool to shrink back to minSize")
        yield* Effect.sleep(1_000)
        assert.deepStrictEqual(
          pool.workers().map((w) => w.id),
          ["InProcessWork-pool-1"],
        )
        assert.strictEqual(largest, 3)
        assert.strictEqual(smallest, 1)
        // Retired, not crashed: no worker ended on its own.
        assert.strictEqual(pool.supervisor.counters().exits, 0)
      }),
    ),
  )

  it("the load window: grows above the line, shrinks when one worker fewer would do, waits a full window", () => {
    const config = { scaleUpAbove: 2, scaleUpAfterMs: 1_000, scaleDownBelow: 1, scaleDownAfterMs: 3_000 }
    const window = new Autoscaler.LoadWindow(config, 0)
    // 5 in flight on 2 workers (2.5 each): a grow, but only once a whole window was seen.
    for (let t = 0; t <= 900; t += 100) window.record(t, 5)
    assert.isUndefined(window.decide(900, 2, 2, 1, 4))
    window.record(1_000, 5)
    assert.strictEqual(window.decide(1_000, 2, 2, 1, 4), "grow")
    // Never above maxSize.
    assert.isUndefined(window.decide(1_000, 4, 4, 1, 4))
    // The size changed: the next decision needs a new window.
    window.reset(1_000)
    window.record(1_100, 1)
    assert.isUndefined(window.decide(1_100, 3, 3, 1, 4))
    // 2 in flight on 3 workers: at most 1 per worker of 2, after 3 s a shrink; 3 in flight would not be.
    for (let t = 1_200; t <= 4_000; t += 100) window.record(t, 2)
    assert.strictEqual(window.decide(4_000, 3, 3, 1, 4), "shrink")
    // Never below minSize.
    assert.isUndefined(window.decide(4_000, 3, 3, 3, 4))
    const busy = new Autoscaler.LoadWindow(config, 0)
    for (let t = 0; t <= 3_000; t += 100) busy.record(t, 3)
    assert.isUndefined(busy.decide(3_000, 3, 3, 1, 4))
    // A mean, not every sample: a burst of 9 among 2s still counts as above 2 per worker on 2.
    const bursty = new Autoscaler.LoadWindow(config, 0)
    for (let t = 0; t <= 1_000; t += 100) bursty.record(t, t === 500 ? 30 : 2)
    assert.strictEqual(bursty.decide(1_000, 2, 2, 1, 4), "grow")
  })

  it.live("invalid autoscaling rules are refused", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const node = yield* zmqNode({ id: "misconfigured-pool" })
        for (const options of [
          { minSize: 1, maxSize: 2, autoscale: { scaleUpAbove: 2, scaleDownBelow: 2 } },
          { minSize: 0, maxSize: 2, autoscale: true as const },
        ]) {
          const error = yield* Effect.flip(WorkerPool.makeOn(node, Work, makeWorkers(), options))
          assert.strictEqual(error._tag === "WorkerPoolError" ? error.reason : undefined, "InvalidSize")
        }
      }),
    ),
  )
})

describe("WorkerPool under a supervisor", () => {
  it.live("a pool's escalation reaches its parent: restarted once as a whole, then the parent escalates", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const node = yield* zmqNode({ id: "supervised-pool" })
        const parent = yield* Supervisor.make({
          id: "app",
          maxRestarts: 1,
          period: "30 seconds",
          children: [
            WorkerPool.childSpec("pool", node, Work, makeWorkers(), { size: 1, maxRestarts: 1, period: "30 seconds" }),
          ],
        })
        const events: Array<Supervisor.SupervisorEvent> = []
        yield* Effect.forkScoped(Stream.runForEach(parent.events, (e) => Effect.sync(() => events.push(e))))
        const current = () => parent.children()[0]!.value as WorkerPool.WorkerPoolShape<typeof Work> | undefined
        /** Two crashes: the pool restarts its worker once, then its own intensity (1) is exceeded. */
        const crashTwice = Effect.gen(function* () {
          const pool = current()!
          yield* Effect.flip(pool.client.crash({}))
          yield* eventually(() => pool.supervisor.counters().restarts === 1, 5_000, "the worker restarted")
          yield* eventually(() => pool.workers()[0]?.status === "running", 5_000, "the worker running again")
          yield* Effect.flip(pool.client.crash({}))
          return yield* Effect.flip(pool.await)
        })
        const first = current()!
        const escalated = yield* crashTwice
        assert.strictEqual(escalated.reason, "RestartIntensity")
        assert.strictEqual(escalated.supervisor, "pool")
        // The parent saw its child fail with that error and started a fresh pool, which serves.
        yield* eventually(
          () => current() !== undefined && current() !== first && parent.children()[0]!.status === "running",
          5_000,
          "the parent to restart the pool",
        )
        const exited = events.find((e) => e._tag === "ChildExited" && e.child === "pool")
        assert.isTrue(
          exited?._tag === "ChildExited" &&
            exited.reason._tag === "Failed" &&
            SupervisorError.is(exited.reason.error) &&
            exited.reason.error.reason === "RestartIntensity",
        )
        assert.strictEqual(parent.counters().restarts, 1)
        const served = yield* current()!.client.run({ ms: 0 })
        assert.strictEqual(served.served, 1)
        // The fresh pool escalates too: one restart more than the parent allows, so the parent escalates.
        yield* crashTwice
        const error = yield* Effect.flip(parent.await)
        assert.strictEqual(error.reason, "RestartIntensity")
        assert.strictEqual(error.supervisor, "app")
        assert.strictEqual(error.child, "pool")
        assert.isTrue(events.some((e) => e._tag === "Escalated" && e.supervisor === "app"))
        // Nothing serves the contract any more.
        const refused = yield* Effect.flip(first.client.run({ ms: 0 }))
        assert.isTrue(RpcError.is(refused))
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
