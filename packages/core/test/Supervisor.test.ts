// Supervisors in one process: strategies, restart policies, intensity and escalation, backoff (on TestClock),
// start order and reverse stop order, shutdown timeouts, nested supervisors, dynamic children, and actors as
// children (crash on defect, restarted at the same address from the initial state).

import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Schema, Scope, Stream } from "effect"
import { TestClock } from "effect/testing"
import * as Actor from "../src/Actor.ts"
import * as ActorRef from "../src/ActorRef.ts"
import * as ChildSpec from "../src/ChildSpec.ts"
import * as Contract from "../src/Contract.ts"
import { RpcError } from "../src/RpcError.ts"
import * as Supervisor from "../src/Supervisor.ts"
import { SupervisorError } from "../src/SupervisorError.ts"
import { zmqNode } from "./fixtures.ts"

// ---- a probe: children whose lives are recorded and whose ends the test decides -----------------------------

const died: ChildSpec.ExitReason = { _tag: "Died", defect: new Error("boom") }

const makeProbe = () => {
  const log: Array<string> = []
  const ends = new Map<string, Deferred.Deferred<ChildSpec.ExitReason>>()
  const child = (id: string, options?: ChildSpec.ChildOptions) =>
    ChildSpec.make(
      id,
      Effect.gen(function* () {
        const end = yield* Deferred.make<ChildSpec.ExitReason>()
        ends.set(id, end)
        log.push(`start ${id}`)
        yield* Effect.addFinalizer(() => Effect.sync(() => log.push(`stop ${id}`)))
        return { value: id, exit: Deferred.await(end) }
      }),
      options,
    )
  /** Ends the running incarnation of `id` with `reason`. */
  const end = (id: string, reason: ChildSpec.ExitReason = died) => Deferred.succeed(ends.get(id)!, reason)
  const take = () => log.splice(0)
  return { child, end, take, log }
}

/** Lets forked fibers run until `condition` holds (bounded: a test fails rather than hangs). */
const until = (condition: () => boolean, what = "condition") =>
  Effect.gen(function* () {
    for (let i = 0; i < 1000 && !condition(); i++) yield* Effect.yieldNow
    if (!condition()) return yield* Effect.die(new Error(`never reached: ${what}`))
  })

/** Moves the test clock in small steps until `condition` holds: backoff timers are registered as fibers run. */
const advanceUntil = (condition: () => boolean, what = "condition") =>
  Effect.gen(function* () {
    for (let i = 0; i < 1000 && !condition(); i++) {
      yield* TestClock.adjust("10 millis")
      yield* Effect.repeat(Effect.yieldNow, { times: 5 })
    }
    if (!condition()) return yield* Effect.die(new Error(`never reached: ${what}`))
  })

const statusOf = (supervisor: Supervisor.SupervisorShape, id: string) =>
  supervisor.children().find((c) => c.id === id)?.status

const allRunning = (supervisor: Supervisor.SupervisorShape) =>
  supervisor.children().every((c) => c.status === "running")

/**
 * Records the supervisor's events from its start (the hub replays recent ones to a new subscriber); `collect`
 * lets the recording fiber catch up and returns them.
 */
const record = (supervisor: Supervisor.SupervisorShape) =>
  Effect.gen(function* () {
    const events: Array<Supervisor.SupervisorEvent> = []
    yield* Effect.forkScoped(Stream.runForEach(supervisor.events, (event) => Effect.sync(() => events.push(event))))
    return events
  })

const collect = (events: ReadonlyArray<Supervisor.SupervisorEvent>) =>
  Effect.as(Effect.repeat(Effect.yieldNow, { times: 50 }), events)

describe("Supervisor", () => {
  it.effect("starts children in order and stops them in reverse order", () =>
    Effect.gen(function* () {
      const probe = makeProbe()
      const scope = yield* Scope.make()
      const supervisor = yield* Supervisor.make({
        children: [probe.child("a"), probe.child("b"), probe.child("c")],
      }).pipe(Scope.provide(scope))
      assert.deepStrictEqual(probe.take(), ["start a", "start b", "start c"])
      assert.deepStrictEqual(
        supervisor.children().map((c) => [c.id, c.status, c.incarnation, c.value]),
        [
          ["a", "running", 1, "a"],
          ["b", "running", 1, "b"],
          ["c", "running", 1, "c"],
        ],
      )
      yield* Scope.close(scope, Exit.void)
      assert.deepStrictEqual(probe.take(), ["stop c", "stop b", "stop a"])
      assert.deepStrictEqual(supervisor.counters().stops, 3)
      // `await` completes (without failure) once the supervisor stopped.
      yield* supervisor.await
    }),
  )

  it.effect("one-for-one restarts only the child that ended", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const probe = makeProbe()
        const supervisor = yield* Supervisor.make({
          strategy: "one-for-one",
          children: [probe.child("a"), probe.child("b"), probe.child("c")],
        })
        const events = yield* record(supervisor)
        probe.take()
        yield* probe.end("b")
        yield* until(() => supervisor.counters().restarts === 1, "restart of b")
        assert.deepStrictEqual(probe.take(), ["stop b", "start b"])
        assert.deepStrictEqual(
          supervisor.children().map((c) => [c.id, c.incarnation, c.restarts]),
          [
            ["a", 1, 0],
            ["b", 2, 1],
            ["c", 1, 0],
          ],
        )
        const tags = (yield* collect(events)).map((e) => `${e._tag} ${e.child}`)
        assert.deepStrictEqual(tags.slice(3), ["ChildExited b", "RestartScheduled b", "ChildRestarted b"])
      }),
    ),
  )

  it.effect("one-for-all stops the others in reverse order and restarts all in order", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const probe = makeProbe()
        const supervisor = yield* Supervisor.make({
          strategy: "one-for-all",
          children: [probe.child("a"), probe.child("b"), probe.child("c")],
        })
        const events = yield* record(supervisor)
        probe.take()
        yield* probe.end("b")
        yield* until(() => supervisor.counters().restarts === 3 && allRunning(supervisor), "group restart")
        assert.deepStrictEqual(probe.take(), ["stop b", "stop c", "stop a", "start a", "start b", "start c"])
        const scheduled = (yield* collect(events)).find((e) => e._tag === "RestartScheduled")
        assert.deepStrictEqual(scheduled?._tag === "RestartScheduled" ? scheduled.children : [], ["a", "b", "c"])
      }),
    ),
  )

  it.effect("rest-for-one restarts the child and those started after it", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const probe = makeProbe()
        const supervisor = yield* Supervisor.make({
          strategy: "rest-for-one",
          children: [probe.child("a"), probe.child("b"), probe.child("c")],
        })
        probe.take()
        yield* probe.end("b")
        yield* until(() => supervisor.counters().restarts === 2 && allRunning(supervisor), "rest restart")
        assert.deepStrictEqual(probe.take(), ["stop b", "stop c", "start b", "start c"])
        assert.strictEqual(supervisor.children()[0]!.incarnation, 1)
      }),
    ),
  )

  it.effect("restart policies: permanent, transient and temporary", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const probe = makeProbe()
        const supervisor = yield* Supervisor.make({
          maxRestarts: 10,
          children: [
            probe.child("perm"),
            probe.child("trans", { restart: "transient" }),
            probe.child("temp", { restart: "temporary" }),
          ],
        })
        // A permanent child is restarted even after it completed.
        yield* probe.end("perm", { _tag: "Completed" })
        yield* until(() => supervisor.counters().restarts === 1, "permanent restart")
        // A transient child that completed stays stopped...
        yield* probe.end("trans", { _tag: "Completed" })
        yield* until(() => statusOf(supervisor, "trans") === "stopped", "transient stopped")
        // ...and one that failed is restarted (restartChild brings it back first).
        yield* supervisor.restartChild("trans")
        yield* probe.end("trans", { _tag: "Failed", error: "bad" })
        yield* until(() => supervisor.counters().restarts === 3 && statusOf(supervisor, "trans") === "running")
        // A temporary child is never restarted and leaves the list.
        yield* probe.end("temp", died)
        yield* until(() => statusOf(supervisor, "temp") === undefined, "temporary removed")
        assert.deepStrictEqual(
          supervisor.children().map((c) => c.id),
          ["perm", "trans"],
        )
        assert.strictEqual(supervisor.counters().restarts, 3)
      }),
    ),
  )

  it.effect("restart intensity: 3 crashes within the period are restarted, the 4th escalates", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const probe = makeProbe()
        const supervisor = yield* Supervisor.make({
          id: "top",
          maxRestarts: 3,
          period: "5 seconds",
          children: [probe.child("a"), probe.child("b")],
        })
        const events = yield* record(supervisor)
        probe.take()
        for (let i = 1; i <= 3; i++) {
          yield* probe.end("b")
          // Backoff grows within a streak (0, 100, 200 ms): let the clock run past it.
          yield* advanceUntil(() => supervisor.counters().restarts === i, `restart ${i}`)
        }
        yield* probe.end("b")
        const error = yield* Effect.flip(supervisor.await)
        assert.isTrue(SupervisorError.is(error))
        assert.strictEqual(error.reason, "RestartIntensity")
        assert.strictEqual(error.child, "b")
        assert.strictEqual(supervisor.counters().escalations, 1)
        // Everything stopped, in reverse order; and nothing is restarted afterwards (no storm).
        assert.deepStrictEqual(probe.take(), [
          ...["stop b", "start b", "stop b", "start b", "stop b", "start b"],
          ...["stop b", "stop a"],
        ])
        assert.isTrue(supervisor.children().every((c) => c.status === "stopped"))
        yield* TestClock.adjust("10 seconds")
        assert.strictEqual(supervisor.counters().started, 2 + 3)
        assert.isTrue((yield* collect(events)).some((e) => e._tag === "Escalated"))
        const refused = yield* Effect.flip(supervisor.restartChild("a"))
        assert.strictEqual(refused.reason, "Terminated")
      }),
    ),
  )

  it.effect("crashes spread wider than the period do not escalate", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const probe = makeProbe()
        const supervisor = yield* Supervisor.make({ maxRestarts: 3, period: "5 seconds", children: [probe.child("a")] })
        for (let i = 1; i <= 6; i++) {
          yield* TestClock.adjust("2 seconds")
          yield* probe.end("a")
          yield* until(() => supervisor.counters().restarts === i, `restart ${i}`)
        }
        assert.strictEqual(supervisor.counters().escalations, 0)
      }),
    ),
  )

  it.effect("backoff doubles within a streak and resets after a healthy run", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const probe = makeProbe()
        const supervisor = yield* Supervisor.make({
          maxRestarts: 100,
          period: "1 minute",
          initialBackoff: "100 millis",
          maxBackoff: "400 millis",
          backoffResetAfter: "1 second",
          children: [probe.child("a")],
        })
        const events = yield* record(supervisor)
        const delays: Array<number> = []
        for (let i = 1; i <= 5; i++) {
          yield* probe.end("a")
          yield* until(() => statusOf(supervisor, "a") === "restarting")
          const scheduled = (yield* collect(events)).filter((e) => e._tag === "RestartScheduled")
          const last = scheduled[scheduled.length - 1]!
          delays.push(last._tag === "RestartScheduled" ? last.delayMs : -1)
          // Not restarted before its delay...
          if (delays[i - 1]! > 0) {
            yield* TestClock.adjust(delays[i - 1]! - 1)
            assert.strictEqual(statusOf(supervisor, "a"), "restarting")
            yield* TestClock.adjust(1)
          }
          // ...and restarted right after it.
          yield* until(() => supervisor.counters().restarts === i, `restart ${i}`)
        }
        assert.deepStrictEqual(delays, [0, 100, 200, 400, 400])
        // After running 1 s the streak resets: the next restart is immediate.
        yield* TestClock.adjust("1 second")
        yield* probe.end("a")
        yield* until(() => supervisor.counters().restarts === 6, "restart after reset")
      }),
    ),
  )

  it.effect("a child that ignores its stop is left behind after its shutdown timeout", () =>
    Effect.gen(function* () {
      const probe = makeProbe()
      const stubborn = ChildSpec.make(
        "stubborn",
        Effect.gen(function* () {
          yield* Effect.addFinalizer(() => Effect.never)
          return { value: undefined, exit: Effect.never }
        }),
        { shutdownTimeout: "2 seconds" },
      )
      const scope = yield* Scope.make()
      const supervisor = yield* Supervisor.make({ children: [probe.child("a"), stubborn, probe.child("c")] }).pipe(
        Scope.provide(scope),
      )
      const events = yield* record(supervisor).pipe(Scope.provide(yield* Scope.make()))
      probe.take()
      const closing = yield* Effect.forkChild(Scope.close(scope, Exit.void))
      yield* until(() => statusOf(supervisor, "stubborn") === "stopping", "stopping stubborn")
      assert.deepStrictEqual(probe.take(), ["stop c"])
      yield* TestClock.adjust("2 seconds")
      yield* until(() => probe.log.length === 1, "stop a")
      yield* Fiber.join(closing)
      assert.deepStrictEqual(probe.take(), ["stop a"])
      assert.strictEqual(supervisor.counters().stopTimeouts, 1)
      const stopped = (yield* collect(events)).filter((e) => e._tag === "ChildStopped")
      assert.deepStrictEqual(
        stopped.map((e) => (e._tag === "ChildStopped" ? [e.child, e.timedOut] : [])),
        [
          ["c", false],
          ["stubborn", true],
          ["a", false],
        ],
      )
    }),
  )

  it.effect("a failing child start fails make, after stopping the children already started", () =>
    Effect.gen(function* () {
      const probe = makeProbe()
      const broken = ChildSpec.make("broken", Effect.fail("no database"))
      const error = yield* Effect.flip(
        Effect.scoped(Supervisor.make({ children: [probe.child("a"), broken, probe.child("c")] })),
      )
      assert.strictEqual(error.reason, "StartFailed")
      assert.strictEqual(error.child, "broken")
      assert.strictEqual(error.cause, "no database")
      assert.deepStrictEqual(probe.take(), ["start a", "stop a"])
    }),
  )

  it.effect("a failed restart counts as a crash and is retried with backoff until the intensity is exceeded", () =>
    Effect.scoped(
      Effect.gen(function* () {
        let starts = 0
        // The first incarnation dies at once; every restart then fails to start.
        const flaky = ChildSpec.make(
          "flaky",
          Effect.suspend(() => {
            starts++
            return starts === 1
              ? Effect.succeed({ value: starts, exit: Effect.succeed<ChildSpec.ExitReason>(died) })
              : Effect.fail(`start ${starts} refused`)
          }),
        )
        const supervisor = yield* Supervisor.make({ maxRestarts: 3, children: [flaky] })
        yield* advanceUntil(() => supervisor.counters().escalations === 1, "escalation")
        const error = yield* Effect.flip(supervisor.await)
        assert.strictEqual(error.reason, "RestartIntensity")
        // First start, then 3 restart attempts; the 4th wanted restart escalated.
        assert.strictEqual(starts, 4)
        assert.strictEqual(supervisor.counters().startFailures, 3)
      }),
    ),
  )

  it.effect("a nested supervisor's escalation is its parent's child failure: the subtree restarts", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const probe = makeProbe()
        const parent = yield* Supervisor.make({
          id: "parent",
          strategy: "one-for-one",
          children: [
            probe.child("sibling"),
            Supervisor.child("sub", { maxRestarts: 0, children: [probe.child("x"), probe.child("y")] }),
          ],
        })
        const events = yield* record(parent)
        probe.take()
        yield* probe.end("y")
        yield* until(() => parent.counters().restarts === 1 && allRunning(parent), "subtree restart")
        // The subtree stopped its children in reverse order, escalated, and was started again in order.
        assert.deepStrictEqual(probe.take(), ["stop y", "stop x", "start x", "start y"])
        const exited = (yield* collect(events)).find((e) => e._tag === "ChildExited")
        assert.isTrue(
          exited?._tag === "ChildExited" &&
            exited.reason._tag === "Failed" &&
            SupervisorError.is(exited.reason.error) &&
            exited.reason.error.reason === "RestartIntensity",
        )
        const sub = parent.children().find((c) => c.id === "sub")!.value as Supervisor.SupervisorShape
        assert.strictEqual(sub.children().length, 2)
      }),
    ),
  )

  it.effect("dynamic children: startChild, terminateChild, restartChild, duplicates", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const probe = makeProbe()
        const supervisor = yield* Supervisor.make({ children: [probe.child("a")] })
        assert.strictEqual(yield* supervisor.startChild(probe.child("b")), "b")
        const duplicate = yield* Effect.flip(supervisor.startChild(probe.child("b")))
        assert.strictEqual(duplicate.reason, "DuplicateChild")
        yield* supervisor.restartChild("a")
        yield* supervisor.terminateChild("b")
        assert.deepStrictEqual(probe.take(), ["start a", "start b", "stop a", "start a", "stop b"])
        assert.deepStrictEqual(
          supervisor.children().map((c) => [c.id, c.incarnation]),
          [["a", 2]],
        )
        const unknown = yield* Effect.flip(supervisor.terminateChild("b"))
        assert.strictEqual(unknown.reason, "UnknownChild")
      }),
    ),
  )

  it.effect("an effect child: its failure is its exit reason, and it is interrupted on stop", () =>
    Effect.gen(function* () {
      let runs = 0
      const interrupted = yield* Deferred.make<void>()
      const worker = ChildSpec.effect(
        "worker",
        Effect.suspend(() => {
          runs++
          return runs === 1
            ? Effect.fail("first run fails")
            : Effect.onInterrupt(Effect.never, () => Deferred.succeed(interrupted, undefined))
        }),
      )
      const scope = yield* Scope.make()
      const supervisor = yield* Supervisor.make({ children: [worker] }).pipe(Scope.provide(scope))
      const events = yield* record(supervisor).pipe(Scope.provide(scope))
      yield* until(() => supervisor.counters().restarts === 1, "restart after failure")
      const exited = (yield* collect(events)).find((e) => e._tag === "ChildExited")
      assert.deepStrictEqual(exited?._tag === "ChildExited" ? exited.reason : undefined, {
        _tag: "Failed",
        error: "first run fails",
      })
      yield* Scope.close(scope, Exit.void)
      yield* Deferred.await(interrupted)
    }),
  )
})

// ---- actors as children ----------------------------------------------------------------------------------------

const Counter = Contract.make("SupervisedCounter", {
  add: Contract.unary({ payload: Schema.Struct({ by: Schema.Number }), success: Schema.Number }),
  crash: Contract.unary({ payload: Schema.Struct({}), success: Schema.Number }),
})

const CounterActor = Actor.make(Counter, {
  initialState: 0,
  handlers: {
    add: ({ by }, ctx) =>
      Effect.sync(() => {
        ctx.setState(ctx.state + by)
        return ctx.state
      }),
    crash: () => Effect.die(new Error("counter crashed")),
  },
})

describe("Supervisor with actor children", () => {
  it.live("a crashed actor is restarted at the same address with its initial state", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const node = yield* zmqNode({ id: "supervised-actors" })
        const supervisor = yield* Supervisor.make({
          children: [ChildSpec.actor("counter", node, CounterActor, "counter-1")],
        })
        const events = yield* record(supervisor)
        const ref = supervisor.children()[0]!.value as ActorRef.ActorRef<typeof Counter>
        const caller = yield* zmqNode({ id: "caller" })
        const counter = ActorRef.ask(caller, ref)
        assert.strictEqual(yield* counter.add({ by: 2 }), 2)
        assert.strictEqual(yield* counter.add({ by: 3 }), 5)
        const crash = yield* Effect.flip(counter.crash({}))
        assert.isTrue(RpcError.is(crash) && crash.code === "internal")
        // The crash is handled as the failure is sent: by the time the caller has it, the restart is under way.
        while (supervisor.counters().restarts < 1) yield* Effect.sleep(1)
        // The same ref reaches the new incarnation, which starts from the initial state.
        assert.strictEqual(yield* counter.add({ by: 1 }), 1)
        const exited = (yield* collect(events)).find((e) => e._tag === "ChildExited")
        assert.strictEqual(exited?._tag === "ChildExited" ? exited.reason._tag : undefined, "Died")
        // Actor.awaitStop reports a normal stop of the current incarnation as a success.
        const current = supervisor.children()[0]!.value as ActorRef.ActorRef
        yield* supervisor.terminateChild("counter")
        assert.isTrue(Exit.isSuccess(yield* Actor.awaitStop(current)))
      }),
    ),
  )
})
