// Supervised worker pools of real OS processes (fixtures/pool-worker.ts, bundled once with esbuild) under real
// signals. The pool, its node and the load generator run in this process; workers are killed by PID.
//
// - kill -9 a worker every 2 s, three times, under a steady load of 10,000 at-least-once calls with
//   idempotency keys: each death is noticed in < 100 ms, the worker serves again in < 1 s, no request is sent
//   to the dead worker after its death was noticed, and every call succeeds (none lost, none hanging).
// - restart intensity: 3 kills within the period are restarted, the 4th escalates and stops the pool; a
//   crash-looping worker is started 1 + 3 times with growing backoff and never again (no restart storm).
// - graceful drain and resize: a worker removed by a shrink finishes the slow call it has in flight.
// - autoscaling: under a steady load the pool grows to maxSize; when the load stops it shrinks back to minSize,
//   one drained worker at a time (a slow call on the retired worker completes).

import { cpus, loadavg } from "node:os"
import { monitorEventLoopDelay } from "node:perf_hooks"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Schedule, Scope, Stream } from "effect"
import * as Admin from "../src/Admin.ts"
import type * as Liveness from "../src/Liveness.ts"
import * as ProcessChild from "../src/ProcessChild.ts"
import { start, supervise } from "../src/promise.ts"
import { RpcError } from "../src/RpcError.ts"
import * as Supervisor from "../src/Supervisor.ts"
import { ProcessExitError, ProcessStartError, SupervisorError } from "../src/SupervisorError.ts"
import * as WorkerPool from "../src/WorkerPool.ts"
import { bundle } from "./fixtures/bundle.ts"
import { PoolWork } from "./fixtures/poolContract.ts"
import { type CallOutcome, pacedLoad, recordingNode, workerBundle } from "./fixtures/poolHarness.ts"
import { waitFor } from "./fixtures.ts"

let entry: string | undefined
const bundled = Effect.promise(async () => {
  entry ??= await workerBundle()
  return entry
})

/** Records a supervisor's events (with their Date.now() timestamps) from its start. */
const recordEvents = (events: Stream.Stream<Supervisor.SupervisorEvent>) =>
  Effect.gen(function* () {
    const recorded: Array<Supervisor.SupervisorEvent> = []
    yield* Effect.forkScoped(Stream.runForEach(events, (event) => Effect.sync(() => recorded.push(event))))
    return recorded
  })

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

const quantile = (values: ReadonlyArray<number>, q: number) =>
  [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(q * values.length))] ?? Number.NaN

/**
 * kill -9 a pool worker every 2 s, three times, under a steady load of 10,000 at-least-once calls with
 * idempotency keys; measures and checks detection, restart, serving again, routing after detection, loss.
 */
const killScenario = (spares: number, servingBoundMs: number) =>
  Effect.scoped(
    Effect.gen(function* () {
      const workerEntry = yield* bundled
      const { node, sent } = yield* recordingNode({ id: "pool-caller" })
      const pool = yield* WorkerPool.makeOn(
        node,
        PoolWork,
        WorkerPool.processes({ entry: workerEntry, readyTimeout: "20 seconds", shutdownTimeout: "2 seconds" }),
        { size: 3, maxRestarts: 10, period: "10 seconds", spares },
      )
      const events = yield* recordEvents(pool.events)
      // Warm-up (not measured): the first thousand calls through a fresh process compile the hot paths.
      yield* pacedLoad(1_000, 1_000, (i) =>
        pool.client.work({ key: `w${i}`, ms: 2 }, { delivery: "at-least-once", idempotencyKey: `w${i}` }),
      )

      const CALLS = 10_000
      const LOAD_MS = 8_000
      // This process runs the pool, its node and the load generator. A process's death reaches it as the child
      // process `exit` event, which runs only when its event loop gets to it: if the loop is busy with other
      // work (the load generator's 1,250 calls/s, garbage collection, other processes taking the 2 CPUs), the
      // supervisor cannot notice sooner, however it is written. That lateness belongs to the host, not to the
      // supervision: it is measured here (the worst delay of this loop over the run) and added to the bounds,
      // and printed with the results (docs/SUPERVISION.md section 4 reports both).
      const loopDelay = monitorEventLoopDelay({ resolution: 10 })
      loopDelay.enable()
      const cpuBefore = process.cpuUsage()
      const wallBefore = Date.now()
      const load = yield* Effect.forkChild(
        pacedLoad(CALLS, LOAD_MS, (i) =>
          pool.client.work(
            { key: `k${i}`, ms: 2 },
            { delivery: "at-least-once", idempotencyKey: `k${i}`, timeout: "15 seconds" },
          ),
        ),
      )

      interface Kill {
        readonly worker: string
        readonly pid: number
        readonly endpoint: string
        readonly at: number
      }
      const kills: Array<Kill> = []
      for (let round = 0; round < 3; round++) {
        yield* Effect.sleep(2_000)
        const victim = pool.workers()[round % 3]!
        assert.strictEqual(victim.status, "running", `worker ${victim.id} is up before kill ${round + 1}`)
        kills.push({ worker: victim.id, pid: victim.pid!, endpoint: victim.endpoint!, at: Date.now() })
        process.kill(victim.pid!, "SIGKILL")
      }
      const outcomes = yield* Fiber.join(load)
      // A cold restart on a loaded machine may outlast the load: let the third one finish before measuring.
      for (let i = 0; i < 200 && pool.supervisor.counters().restarts < 3; i++) yield* Effect.sleep(50)
      // "Serving again" is the first reply from the new process. If the load ended before a replacement answered
      // (a slow cold start), bursts of calls go on, routed as usual, until each has answered (at most 15 s):
      // a burst of 6 at once puts at least one on every idle worker (least outstanding calls).
      const replacementPid = (kill: Kill) => pool.workers().find((w) => w.id === kill.worker)?.pid
      const tail: Array<CallOutcome> = []
      const answeredBy = (pid: number | undefined) =>
        pid !== undefined && [...outcomes, ...tail].some((o) => o.ok && o.pid === pid)
      for (let burst = 0; burst < 300 && !kills.every((kill) => answeredBy(replacementPid(kill))); burst++) {
        tail.push(
          ...(yield* pacedLoad(6, 10, (i) =>
            pool.client.work({ key: `t${burst}.${i}`, ms: 2 }, { delivery: "at-least-once", timeout: "15 seconds" }),
          )),
        )
        yield* Effect.sleep(50)
      }
      loopDelay.disable()
      // The `exit` event cannot run before this process's event loop gets to it: the bounds allow for how late
      // the loop ran (other work on a 2-core machine), and the printed numbers show both.
      const loopLateMs = loopDelay.max / 1e6
      const cpu = process.cpuUsage(cpuBefore)
      const cpuShare = (cpu.user + cpu.system) / 1000 / (Date.now() - wallBefore)

      const failed = outcomes.filter((o) => !o.ok)
      const latencies = outcomes.map((o) => o.endedAt - o.startedAt)
      const measured = kills.map((kill) => {
        const exited = events.find((e) => e._tag === "ChildExited" && e.child === kill.worker && e.at >= kill.at)
        const restarted = events.find((e) => e._tag === "ChildRestarted" && e.child === kill.worker && e.at >= kill.at)
        // Each worker is killed once: its pid now is the process that replaced the killed one.
        const newPid = replacementPid(kill)
        const replies = [...outcomes, ...tail].filter((o) => o.ok && o.pid === newPid && newPid !== kill.pid)
        const firstReply = Math.min(...replies.map((o) => o.endedAt))
        return {
          kill,
          newPid,
          detectedMs: (exited?.at ?? Number.NaN) - kill.at,
          // When the child process `exit` event ran, as the exit reason records it.
          exitEventMs:
            exited?._tag === "ChildExited" &&
            exited.reason._tag === "Failed" &&
            ProcessExitError.is(exited.reason.error)
              ? exited.reason.error.at - kill.at
              : Number.NaN,
          restartedMs: (restarted?.at ?? Number.NaN) - kill.at,
          servingMs: firstReply - kill.at,
          routedAfter: sent.filter((s) => s.endpoint === kill.endpoint && s.at > (exited?.at ?? 0)).length,
        }
      })
      console.log(
        [
          `pool kill -9 x3 under ${CALLS} calls over ${LOAD_MS / 1000} s, ${spares} spare(s):`,
          ...measured.map(
            (m) =>
              `${m.kill.worker} pid ${m.kill.pid}: exit noticed after ${m.detectedMs} ms (exit event after ` +
              `${m.exitEventMs} ms), restarted after ` +
              `${m.restartedMs} ms, serving again after ${m.servingMs} ms (new pid ${m.newPid}); ` +
              `requests sent to it after detection: ${m.routedAfter}`,
          ),
          `calls: ${CALLS - failed.length} ok, ${failed.length} failed, ${node.metrics().retried} retries, ` +
            `${tail.length} more after the load until every replacement had answered; latency ` +
            `p50 ${quantile(latencies, 0.5)} ms, p99 ${quantile(latencies, 0.99)} ms, max ${Math.max(...latencies)} ms`,
          `this process's event-loop delay: p99 ${(loopDelay.percentile(99) / 1e6).toFixed(0)} ms, max ` +
            `${(loopDelay.max / 1e6).toFixed(0)} ms, CPU ${(cpuShare * 100).toFixed(0)} % of a core; load average ` +
            `${loadavg()[0]!.toFixed(1)} on ${cpus().length} CPUs`,
        ].join("\n  "),
      )

      // Nothing lost, nothing hanging: every call ended, and ended well.
      assert.strictEqual(outcomes.length, CALLS)
      assert.deepStrictEqual(
        failed.slice(0, 3).map((o) => String(o.error)),
        [],
        `${failed.length} calls failed`,
      )
      for (const m of measured) {
        assert.isBelow(m.detectedMs, 100 + loopLateMs, `${m.kill.worker}: death noticed in < 100 ms (+ loop delay)`)
        // Serving again: the first reply from the new process, and nothing else.
        assert.isTrue(Number.isFinite(m.servingMs), `${m.kill.worker}: a reply from its new process`)
        assert.isBelow(
          m.servingMs,
          servingBoundMs + loopLateMs,
          `${m.kill.worker}: serving again in < ${servingBoundMs} ms (+ loop delay)`,
        )
        assert.strictEqual(m.routedAfter, 0, `${m.kill.worker}: no request routed to the dead worker after detection`)
        assert.isFalse(isAlive(m.kill.pid))
      }
      assert.isTrue(
        tail.every((o) => o.ok),
        "the calls after the load succeeded",
      )
      assert.strictEqual(pool.supervisor.counters().restarts, 3)
    }),
  )

/** `count` slow calls at once: routed by least outstanding calls, one lands on each of `count` idle workers. */
const slowCallOnEveryWorker = (pool: WorkerPool.WorkerPoolShape<typeof PoolWork>, count: number, ms: number) =>
  Effect.all(
    Array.from({ length: count }, (_, i) => pool.client.work({ key: `slow${i}`, ms }, { timeout: "20 seconds" })),
    { concurrency: "unbounded" },
  )

describe("worker pools of processes", () => {
  // Two spares: each restart takes one and starts its replacement, which has 4 s (two kills) to get ready. With
  // one, a replacement spare must be ready within the 2 s to the next kill, which a busy 2-CPU machine does not
  // always manage (a cold start then: over 1 s).
  it.live(
    "kill -9 a worker every 2 s under 10,000 calls: noticed < 100 ms, serving again < 1 s, nothing lost",
    () => killScenario(2, 1_000),
    90_000,
  )

  // The same without a spare: every restart waits for a process start (bundled: ~250-350 ms on an idle 2-CPU
  // machine, over 1 s when other work saturates it), so this one checks behaviour and reports the time.
  it.live("kill -9 without spares: cold restarts, nothing lost", () => killScenario(0, 3_000), 90_000)

  it.live(
    "SIGSTOP a worker for 5 s: declared dead within the bound, its work moves elsewhere, accepted back once",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const workerEntry = yield* bundled
          const { node, sent } = yield* recordingNode({ id: "freeze-caller" })
          const changes: Array<Liveness.PeerChange> = []
          yield* Effect.forkScoped(
            Stream.runForEach(node.peerChanges, (change) => Effect.sync(() => changes.push(change))),
          )
          const pool = yield* WorkerPool.makeOn(
            node,
            PoolWork,
            WorkerPool.processes({ entry: workerEntry, readyTimeout: "20 seconds", shutdownTimeout: "2 seconds" }),
            { size: 3 },
          )
          const events = yield* recordEvents(pool.events)
          const CALLS = 6_000
          const LOAD_MS = 10_000
          const load = yield* Effect.forkChild(
            pacedLoad(CALLS, LOAD_MS, (i) =>
              pool.client.work(
                { key: `f${i}`, ms: 2 },
                { delivery: "at-least-once", idempotencyKey: `f${i}`, timeout: "15 seconds" },
              ),
            ),
          )
          yield* Effect.sleep(2_000)
          const victim = pool.workers()[1]!
          const boundMs = node.remotes().find((r) => r.endpoint === victim.endpoint)!.liveness.boundMs
          const frozenAt = Date.now()
          process.kill(victim.pid!, "SIGSTOP")
          yield* Effect.sleep(5_000)
          const thawedAt = Date.now()
          process.kill(victim.pid!, "SIGCONT")
          const outcomes = yield* Fiber.join(load)

          const mine = changes.filter((c) => c.endpoint === victim.endpoint)
          const dead = mine.find((c) => c.to === "dead" && c.at >= frozenAt)
          const back = mine.find((c) => c.to === "alive" && c.at >= thawedAt)
          assert.isDefined(dead, "the frozen worker is declared dead")
          assert.isDefined(back, "the resumed worker is accepted back")
          const detectedMs = dead!.at - frozenAt
          const acceptedMs = back!.at - thawedAt
          const sentWhileDead = sent.filter((s) => s.endpoint === victim.endpoint && s.at > dead!.at && s.at < back!.at)
          const servedAfter = outcomes.filter((o) => o.ok && o.pid === victim.pid && o.startedAt > back!.at).length
          const failed = outcomes.filter((o) => !o.ok)
          const latencies = outcomes.map((o) => o.endedAt - o.startedAt)
          console.log(
            [
              `pool SIGSTOP 5 s under ${CALLS} calls over ${LOAD_MS / 1000} s:`,
              `${victim.id} pid ${victim.pid}: declared dead ${detectedMs} ms after SIGSTOP, silent ${dead!.silentMs} ms then ` +
                `(liveness bound ${boundMs} ms), ` +
                `alive again ${acceptedMs} ms after SIGCONT; requests sent to it while dead: ${sentWhileDead.length}; ` +
                `calls it served after: ${servedAfter}`,
              `its transitions: ${mine.map((c) => `${c.from}->${c.to} (${c.reason})`).join(", ")}`,
              `calls: ${CALLS - failed.length} ok, ${failed.length} failed, ${node.metrics().retried} retries; ` +
                `latency p50 ${quantile(latencies, 0.5)} ms, p99 ${quantile(latencies, 0.99)} ms, max ${Math.max(...latencies)} ms`,
            ].join("\n  "),
          )
          assert.isBelow(detectedMs, 1_500, "declared dead within the default bound")
          assert.strictEqual(sentWhileDead.length, 0, "no request routed to it while dead")
          assert.deepStrictEqual(
            failed.slice(0, 3).map((o) => String(o.error)),
            [],
            `${failed.length} calls failed`,
          )
          assert.isAbove(servedAfter, 0, "it takes work again once resumed")
          // No flapping: one death, one return.
          assert.strictEqual(mine.filter((c) => c.to === "dead").length, 1)
          assert.isFalse(mine.some((c) => c.at > back!.at && c.to !== "alive"))
          // A frozen process is not a crashed one: the supervisor left it alone.
          assert.isFalse(events.some((e) => e._tag === "ChildExited"))
          assert.strictEqual(pool.workers()[1]!.pid, victim.pid)
        }),
      ),
    90_000,
  )

  it.live("restart intensity: 3 kills within the period are restarted, the 4th escalates and stops the pool", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const workerEntry = yield* bundled
        const { node } = yield* recordingNode({ id: "intensity-caller" })
        const pool = yield* WorkerPool.makeOn(
          node,
          PoolWork,
          WorkerPool.processes({ entry: workerEntry, readyTimeout: "20 seconds", shutdownTimeout: "2 seconds" }),
          { size: 2, maxRestarts: 3, period: "30 seconds" },
        )
        const events = yield* recordEvents(pool.events)
        const pids: Array<number> = pool.workers().map((w) => w.pid!)
        for (let kill = 1; kill <= 4; kill++) {
          const victim = pool.workers()[0]!
          process.kill(victim.pid!, "SIGKILL")
          if (kill < 4) {
            yield* waitFor(() => pool.supervisor.counters().restarts === kill, 15_000, `restart ${kill}`)
            yield* waitFor(() => pool.workers()[0]!.status === "running", 15_000, `worker up after kill ${kill}`)
            pids.push(pool.workers()[0]!.pid!)
          }
        }
        const error = yield* Effect.flip(pool.await)
        assert.isTrue(SupervisorError.is(error))
        assert.strictEqual(error.reason, "RestartIntensity")
        // The pool stopped every worker, the healthy one too, and started nothing more.
        yield* waitFor(() => pids.every((pid) => !isAlive(pid)), 10_000, "every worker process gone")
        yield* Effect.sleep(1_000)
        assert.strictEqual(pool.supervisor.counters().started, 2 + 3)
        assert.isTrue(events.some((e) => e._tag === "Escalated"))
        const refused = yield* Effect.flip(pool.client.work({ key: "after", ms: 0 }, { timeout: "1 second" }))
        assert.isTrue(RpcError.is(refused) && refused.code === "unavailable")
      }),
    ),
  )

  it.live("a crash-looping process is restarted 3 times with growing backoff, then escalates: no restart storm", () =>
    Effect.gen(function* () {
      const workerEntry = yield* bundled
      const scope = yield* Scope.make()
      const supervisor = yield* Supervisor.make({
        id: "looping",
        maxRestarts: 3,
        period: "30 seconds",
        initialBackoff: "200 millis",
        // Each incarnation runs about 1 s: keep them in one streak so the backoff grows.
        backoffResetAfter: "10 seconds",
        children: [
          ProcessChild.spec("crasher", {
            entry: workerEntry,
            // Long enough after ready that the ready message is always handled first, even on a stalled loop.
            env: { CRASH_AFTER_MS: "1000" },
            readyTimeout: "20 seconds",
          }),
        ],
      }).pipe(Scope.provide(scope))
      const events = yield* recordEvents(supervisor.events).pipe(Scope.provide(scope))
      const error = yield* Effect.flip(supervisor.await)
      assert.strictEqual(error.reason, "RestartIntensity")
      yield* Effect.sleep(2_000)
      const delays = events.flatMap((e) => (e._tag === "RestartScheduled" ? [e.delayMs] : []))
      assert.deepStrictEqual(delays, [0, 200, 400])
      // 1 + 3 processes, each of which crashed (with code 1), and no more after the escalation.
      assert.strictEqual(supervisor.counters().started, 4)
      const reasons = events.flatMap((e) =>
        e._tag === "ChildExited" && e.reason._tag === "Failed" && ProcessExitError.is(e.reason.error)
          ? [e.reason.error.code]
          : [],
      )
      assert.deepStrictEqual(reasons, [1, 1, 1, 1])
      yield* Scope.close(scope, Exit.void)
    }),
  )

  it("a worker written with the Promise API, supervised through the Promise facade, exits cleanly on stop", async () => {
    const promiseEntry = await bundle(new URL("./fixtures/promise-worker.ts", import.meta.url).pathname)
    const supervisor = await supervise({
      id: "promise-supervisor",
      children: [ProcessChild.spec("promise-worker", { entry: promiseEntry, readyTimeout: "20 seconds" })],
    })
    const handle = supervisor.children()[0]!.value as ProcessChild.ProcessHandle
    await using caller = await start({ id: "promise-caller" })
    await caller.connect(handle.ready.endpoints[0]!)
    const reply = await caller.client(PoolWork).work({ key: "p", ms: 0 })
    assert.strictEqual(reply.pid, handle.pid)
    await supervisor.stop()
    assert.isFalse(isAlive(handle.pid))
    await supervisor.done
    const stopped = []
    for await (const event of supervisor.events()) {
      stopped.push(event)
      if (event._tag === "ChildStopped") break
    }
    assert.deepStrictEqual(
      stopped.map((e) => e._tag),
      ["ChildStarted", "ChildStopped"],
    )
  })

  it.live(
    "a worker process told to stop (SIGTERM) drains: its callers route new calls to the other worker at once, " +
      "its call in flight finishes, and it exits Completed",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const workerEntry = yield* bundled
          const startWorker = ProcessChild.start({ entry: workerEntry, readyTimeout: "20 seconds" })
          const [first, second] = yield* Effect.all([startWorker, startWorker], { concurrency: 2 })
          // A caller of its own, not the workers' parent: it learns of the drain from the worker alone.
          const { node, sent } = yield* recordingNode({ id: "drain-caller" })
          const [leaving, staying] = [first.value, second.value]
          const leavingEndpoint = leaving.ready.endpoints[0]!
          yield* node.connect(leavingEndpoint)
          yield* node.connect(staying.ready.endpoints[0]!)
          const slow = yield* Effect.forkChild(
            node.client(PoolWork, { endpoint: leavingEndpoint }).work({ key: "slow", ms: 1500 }),
          )
          // The signal must find the slow call running: on a loaded machine it may not even have arrived 200 ms
          // later, and a draining worker refuses it. Its admin service (served while draining too) says when it has.
          const admin = node.client(Admin.Admin, { endpoint: leavingEndpoint })
          yield* admin.metrics({}).pipe(
            Effect.filterOrFail(
              (snapshot) => (snapshot.gauges.inflight ?? 0) >= 1,
              () => new Error("the slow call is not running yet"),
            ),
            Effect.retry({ schedule: Schedule.spaced("20 millis"), times: 250 }),
          )
          let sawDrainingAt: number | undefined
          const heard = waitFor(
            () => node.remotes().find((r) => r.endpoint === leavingEndpoint)?.info?.draining === true,
            10_000,
            "the caller to hear of the drain",
          )
          yield* Effect.forkChild(
            Effect.andThen(
              heard,
              Effect.sync(() => {
                sawDrainingAt = Date.now()
              }),
            ),
          )
          const load = yield* Effect.forkChild(
            // About six calls in flight: least outstanding spreads them over both workers until the drain.
            pacedLoad(300, 1000, (i) => node.client(PoolWork).work({ key: `k${i}`, ms: 20 })),
          )
          yield* Effect.sleep(200)
          const killedAt = Date.now()
          process.kill(leaving.pid, "SIGTERM")
          const outcomes = yield* Fiber.join(load)
          assert.deepStrictEqual(
            outcomes.filter((o) => !o.ok).map((o) => String(o.error)),
            [],
          )
          assert.isDefined(sawDrainingAt, "the caller never heard of the drain")
          // Once heard of, nothing more was sent to it. Only calls that could not know were refused and sent on:
          // those sent to it between the signal (less a round trip) and the news, a few at this load.
          const toLeaving = sent.filter((r) => r.endpoint === leavingEndpoint)
          assert.deepStrictEqual(
            toLeaving.filter((r) => r.at > sawDrainingAt!),
            [],
          )
          const unaware = toLeaving.filter((r) => r.at >= killedAt - 50).length
          assert.isAtMost(node.metrics().retried, unaware)
          assert.isAtMost(node.metrics().retried, 6)
          assert.isTrue(outcomes.filter((o) => o.startedAt > sawDrainingAt!).every((o) => o.pid === staying.pid))
          // The call it was serving finished there, and then it stopped of its own accord.
          assert.strictEqual((yield* Fiber.join(slow)).pid, leaving.pid)
          assert.deepStrictEqual(yield* first.exit, { _tag: "Completed" })
        }),
      ),
    30_000,
  )

  it.live("a process child that exits by itself on SIGTERM ends with Completed", () =>
    Effect.gen(function* () {
      const workerEntry = yield* bundled
      const scope = yield* Scope.make()
      const running = yield* ProcessChild.start({ entry: workerEntry, readyTimeout: "20 seconds" }).pipe(
        Scope.provide(scope),
      )
      process.kill(running.value.pid, "SIGTERM")
      assert.deepStrictEqual(yield* running.exit, { _tag: "Completed" })
      yield* Scope.close(scope, Exit.void)
      // A killed one ends with the signal.
      const scope2 = yield* Scope.make()
      const killed = yield* ProcessChild.start({ entry: workerEntry, readyTimeout: "20 seconds" }).pipe(
        Scope.provide(scope2),
      )
      process.kill(killed.value.pid, "SIGKILL")
      const reason = yield* killed.exit
      assert.isTrue(reason._tag === "Failed" && ProcessExitError.is(reason.error) && reason.error.signal === "SIGKILL")
      yield* Scope.close(scope2, Exit.void)
      // One that never reports ready fails its start, and is killed.
      const silent = yield* Effect.flip(
        Effect.scoped(
          ProcessChild.start({ entry: workerEntry, env: { CRASH_BEFORE_READY: "1" }, readyTimeout: "20 seconds" }),
        ),
      )
      assert.isTrue(ProcessStartError.is(silent) && silent.reason === "Exited")
    }),
  )

  it.live(
    "autoscaling: grows to maxSize under steady load, shrinks back to minSize when it stops, draining each worker",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const workerEntry = yield* bundled
          const { node, sent } = yield* recordingNode({ id: "autoscaled-caller" })
          const pool = yield* WorkerPool.makeOn(
            node,
            PoolWork,
            WorkerPool.processes({ entry: workerEntry, readyTimeout: "20 seconds" }),
            {
              minSize: 1,
              maxSize: 3,
              // Short windows to keep the test short; 3 slow calls on 3 workers count as low (1.5 per worker of 2),
              // so the first shrink comes while they are in flight.
              autoscale: {
                scaleUpAbove: 2,
                scaleUpAfter: "500 millis",
                scaleDownBelow: 1.5,
                scaleDownAfter: "1500 millis",
                sampleInterval: "50 millis",
              },
            },
          )
          const events = yield* recordEvents(pool.events)
          const sizes: Array<number> = []
          yield* Effect.forkScoped(
            Effect.forever(
              Effect.andThen(
                Effect.sync(() => sizes.push(pool.workers().length)),
                Effect.sleep(10),
              ),
            ),
          )
          // Steady load: 8 callers, one 20 ms call after another: 8 in flight, 8 per worker at size 1, 4 at 2.
          let loading = true
          let served = 0
          const caller = Effect.whileLoop({
            while: () => loading,
            body: () => pool.client.work({ key: "load", ms: 20 }, { timeout: "10 seconds" }),
            step: () => {
              served++
            },
          })
          const grownFrom = Date.now()
          const load = yield* Effect.forkChild(
            Effect.all(
              Array.from({ length: 8 }, () => caller),
              { concurrency: 8 },
            ),
          )
          yield* waitFor(() => pool.size() === 3, 20_000, "the pool to grow to maxSize under load")
          const grewMs = Date.now() - grownFrom
          loading = false
          yield* Fiber.join(load)
          // The load stops; one slow call on each worker. The newest is retired first, while its call runs.
          const newest = pool.workers()[2]!
          const stoppedAt = Date.now()
          const slow = yield* Effect.forkChild(slowCallOnEveryWorker(pool, 3, 4_000))
          yield* waitFor(() => pool.workers().every((w) => w.outstanding > 0), 5_000, "a slow call on every worker")
          yield* waitFor(() => pool.size() === 2, 3_500, "a shrink while the slow calls run")
          const shrunkAt = Date.now()
          const firstShrinkMs = shrunkAt - stoppedAt
          // It takes no new call while it drains.
          const probes = yield* Effect.all(
            Array.from({ length: 20 }, (_, i) => pool.client.work({ key: `probe${i}`, ms: 0 })),
            { concurrency: "unbounded" },
          )
          assert.notInclude(
            probes.map((r) => r.pid),
            newest.pid,
          )
          assert.strictEqual(sent.filter((r) => r.endpoint === newest.endpoint && r.at > shrunkAt).length, 0)
          // And shows so: the retired worker is `stopping` while its call runs, the others `running`.
          assert.deepStrictEqual(
            pool.workers().map((w) => (w.pid === newest.pid ? `retired ${w.status}` : w.status)),
            ["running", "running", "retired stopping"],
          )
          const replies = yield* Fiber.join(slow)
          // Drained, not failed: the retired process answered its call, then stopped.
          assert.include(
            replies.map((r) => r.pid),
            newest.pid,
          )
          yield* waitFor(() => !isAlive(newest.pid!), 5_000, "the retired worker to exit")
          yield* waitFor(() => pool.size() === 1, 10_000, "the pool to shrink back to minSize")
          const minMs = Date.now() - stoppedAt
          yield* Effect.sleep(2_000)
          console.log(
            `autoscaling: ${served} calls under load, grew 1 -> 3 in ${grewMs} ms; load stopped: 3 -> 2 after ` +
              `${firstShrinkMs} ms (its slow call drained), back to 1 after ${minMs} ms`,
          )
          assert.deepStrictEqual(
            pool.workers().map((w) => w.id),
            ["PoolWork-pool-1"],
          )
          assert.strictEqual(Math.max(...sizes), 3)
          assert.strictEqual(Math.min(...sizes), 1)
          // Retired, not crashed: no worker ended on its own, none was restarted.
          assert.isFalse(events.some((e) => e._tag === "ChildExited"))
          assert.strictEqual(pool.supervisor.counters().restarts, 0)
        }),
      ),
    90_000,
  )

  it.live("drain: calls in flight finish, new calls are refused, workers exit cleanly; resize within bounds", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const workerEntry = yield* bundled
        const { node } = yield* recordingNode({ id: "drain-caller" })
        const pool = yield* WorkerPool.makeOn(
          node,
          PoolWork,
          WorkerPool.processes({ entry: workerEntry, readyTimeout: "20 seconds" }),
          { size: 1, minSize: 1, maxSize: 3, drainTimeout: "5 seconds" },
        )
        const events = yield* recordEvents(pool.events)
        yield* pool.resize(3)
        assert.strictEqual(pool.workers().filter((w) => w.status === "running").length, 3)
        const tooBig = yield* Effect.flip(pool.resize(4))
        assert.strictEqual(tooBig._tag === "WorkerPoolError" ? tooBig.reason : undefined, "InvalidSize")
        // Shrinking drains the last worker: the slow call it has in flight completes, then it stops.
        const retired = pool.workers()[2]!
        const slowOnEach = yield* Effect.forkChild(slowCallOnEveryWorker(pool, 3, 1_000))
        yield* waitFor(() => pool.workers().every((w) => w.outstanding > 0), 5_000, "a slow call on every worker")
        yield* pool.resize(2)
        assert.deepStrictEqual(
          pool.workers().map((w) => w.id),
          ["PoolWork-pool-1", "PoolWork-pool-2"],
        )
        const slowReplies = yield* Fiber.join(slowOnEach)
        assert.include(
          slowReplies.map((r) => r.pid),
          retired.pid,
        )
        assert.isFalse(isAlive(retired.pid!))
        // Slow calls in flight on every worker, then drain.
        const inflight = yield* Effect.forkChild(
          Effect.all(
            Array.from({ length: 6 }, (_, i) =>
              pool.client.work({ key: `slow${i}`, ms: 800 }, { timeout: "10 seconds" }),
            ),
            { concurrency: "unbounded" },
          ),
        )
        yield* waitFor(() => pool.workers().every((w) => w.outstanding > 0), 5_000, "calls in flight on every worker")
        const pids = pool.workers().map((w) => w.pid!)
        const draining = yield* Effect.forkChild(pool.drain)
        yield* Effect.sleep(50)
        const refused = yield* Effect.flip(pool.client.work({ key: "late", ms: 0 }, { timeout: "1 second" }))
        assert.isTrue(RpcError.is(refused) && refused.code === "unavailable")
        const replies = yield* Fiber.join(inflight)
        assert.strictEqual(replies.length, 6)
        yield* Fiber.join(draining)
        assert.isTrue(pids.every((pid) => !isAlive(pid)))
        // Stopped by the pool, not crashed: no exit or restart was recorded after start-up.
        assert.strictEqual(events.filter((e) => e._tag === "ChildExited").length, 0)
        assert.strictEqual(pool.supervisor.counters().restarts, 0)
      }),
    ),
  )
})
