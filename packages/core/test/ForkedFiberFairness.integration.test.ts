// Fibers forked beside a heavy call load keep running: while 32 callers loop on at-least-once calls to a pool of
// worker processes (routed by service name through the delivery path), a fiber forked with `Effect.forkScoped`
// starts at once and ticks on its timer throughout. Guards the caller-side event loop and Effect scheduler
// against starvation by the call path (completions resumed synchronously in a loop, dispatchers flushed or
// cancelled from callbacks, and the like).

import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import * as Node from "../src/Node.ts"
import * as WorkerPool from "../src/WorkerPool.ts"
import { PoolWork } from "./fixtures/poolContract.ts"
import { workerBundle } from "./fixtures/poolHarness.ts"

const CALLERS = 32
const LOAD_MS = 2_000
const TICK_MS = 50

describe("forked fibers under call load", () => {
  it.live(
    "a fiber forked with forkScoped starts and ticks while 32 callers loop on a process pool",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const entry = yield* Effect.promise(workerBundle)
          const node = yield* Node.makeZmq({ id: "fairness-caller" })
          const pool = yield* WorkerPool.makeOn(
            node,
            PoolWork,
            WorkerPool.processes({ entry, readyTimeout: "30 seconds", shutdownTimeout: "2 seconds" }),
            { size: 3 },
          )

          let completed = 0
          let inFlight = 0
          // Each tick records when it ran and how many calls were in flight then.
          const ticks: Array<{ readonly at: number; readonly inFlight: number }> = []
          const ticker = yield* Effect.forkScoped(
            Effect.forever(
              Effect.andThen(
                Effect.sync(() => ticks.push({ at: Date.now(), inFlight })),
                Effect.sleep(TICK_MS),
              ),
            ),
          )

          const startedAt = Date.now()
          const until = startedAt + LOAD_MS
          const caller = (c: number) =>
            Effect.gen(function* () {
              for (let i = 0; Date.now() < until; i++) {
                const key = `c${c}-${i}`
                inFlight++
                yield* pool.client
                  .work({ key, ms: 1 }, { delivery: "at-least-once", idempotencyKey: key, timeout: "15 seconds" })
                  .pipe(Effect.ensuring(Effect.sync(() => inFlight--)))
                completed++
              }
            })
          yield* Effect.forEach(
            Array.from({ length: CALLERS }, (_, c) => c),
            caller,
            {
              concurrency: "unbounded",
              discard: true,
            },
          )
          const endedAt = Date.now()
          yield* Fiber.interrupt(ticker)

          const during = ticks.filter((t) => t.at >= startedAt && t.at <= endedAt)
          const loaded = during.filter((t) => t.inFlight > 0)
          const gaps = during.slice(1).map((t, i) => t.at - during[i]!.at)
          console.log(
            `forked ticker under load: ${completed} calls by ${CALLERS} callers in ${endedAt - startedAt} ms; ` +
              `${during.length} ticks (every ${TICK_MS} ms) during the load, ${loaded.length} with calls in ` +
              `flight; first tick ${(ticks[0]?.at ?? Number.NaN) - startedAt} ms after the load started, ` +
              `largest gap ${Math.max(0, ...gaps)} ms`,
          )

          assert.isAbove(completed, CALLERS, "the callers made calls")
          // It started before the load, not once the callers were done...
          assert.isAtMost((ticks[0]?.at ?? Number.POSITIVE_INFINITY) - startedAt, 500, "the forked fiber started")
          // ...and kept ticking with calls in flight all along: ~40 ticks expected; a loaded machine gets slack.
          assert.isAtLeast(loaded.length, 10, "the forked fiber ticked while calls were in flight")
          const lastLoaded = loaded.at(-1)?.at ?? 0
          assert.isAtLeast(lastLoaded, startedAt + LOAD_MS / 2, "it still ticked in the second half of the load")
        }),
      ),
    60_000,
  )
})
