/**
 * The running side of `Supervisor`: the children's states, the decisions taken when one ends, and the fibers
 * that watch children and run delayed restarts.
 *
 * Concurrency: every fiber here runs on one JS thread, so a check of a child's state followed by a synchronous
 * update cannot be interleaved. Decisions that span several steps (stop siblings, then schedule a restart)
 * hold `lock`, so they apply one at a time and in the order the ends were seen. A restart scheduled earlier is
 * identified by a token in `Child.pending`: anything that takes a child over (a newer restart, a stop,
 * shutdown) replaces or clears it, and the older restart then leaves the child alone.
 *
 * Watchers and restart timers run in `jobs`, a scope closed first on shutdown; children run in scopes of their
 * own, closed explicitly in reverse start order.
 */
import {
  Cause,
  type Clock,
  type Context,
  Deferred,
  Effect,
  Exit,
  Fiber,
  Option,
  PubSub,
  Scope,
  Semaphore,
  Stream,
} from "effect"
import * as ChildSpec from "../ChildSpec.ts"
import type {
  ChildInfo,
  ChildStatus,
  ResolvedSupervisorOptions,
  SupervisorCounters,
  SupervisorEvent,
  SupervisorShape,
} from "../Supervisor.ts"
import { SupervisorError } from "../SupervisorError.ts"
import * as Intensity from "./restartIntensity.ts"

/** One child as the supervisor tracks it. */
interface Child {
  readonly spec: ChildSpec.ChildSpec<unknown, never>
  /** The services its start runs with: the supervisor's (or the `startChild` caller's). */
  readonly context: Context.Context<never>
  status: ChildStatus
  incarnation: number
  scope: Scope.Closeable | undefined
  value: unknown
  restarts: number
  /** Consecutive quick restarts, for the backoff. */
  streak: number
  startedAt: number
  endedAt: number
  /** The token of the restart scheduled for it; 0 for none. */
  pending: number
}

type StartResult = "started" | "superseded" | Cause.Cause<unknown>

const shouldRestart = (policy: ChildSpec.RestartPolicy, reason: ChildSpec.ExitReason): boolean =>
  policy === "permanent" || (policy === "transient" && !ChildSpec.isNormal(reason))

class SupervisorRuntime {
  readonly children: Array<Child> = []
  readonly counters: { -readonly [K in keyof SupervisorCounters]: number } = {
    started: 0,
    restarts: 0,
    exits: 0,
    startFailures: 0,
    stops: 0,
    stopTimeouts: 0,
    escalations: 0,
  }
  /** No more starts or restarts: set by escalation and shutdown. */
  terminated = false
  private shutdownStarted = false
  private nextToken = 1
  private readonly lock = Semaphore.makeUnsafe(1)
  private readonly window: Intensity.RestartWindow
  readonly options: ResolvedSupervisorOptions
  private readonly clock: Clock.Clock
  readonly hub: PubSub.PubSub<SupervisorEvent>
  readonly done: Deferred.Deferred<void, SupervisorError>
  private readonly stopped: Deferred.Deferred<void>
  private readonly jobs: Scope.Closeable

  constructor(
    options: ResolvedSupervisorOptions,
    clock: Clock.Clock,
    hub: PubSub.PubSub<SupervisorEvent>,
    done: Deferred.Deferred<void, SupervisorError>,
    stopped: Deferred.Deferred<void>,
    jobs: Scope.Closeable,
  ) {
    this.options = options
    this.clock = clock
    this.hub = hub
    this.done = done
    this.stopped = stopped
    this.jobs = jobs
    this.window = new Intensity.RestartWindow(options.maxRestarts, options.periodMs)
  }

  private now(): number {
    return this.clock.currentTimeMillisUnsafe()
  }

  private emit(event: SupervisorEvent): void {
    PubSub.publishUnsafe(this.hub, event)
  }

  private locked<A, E>(effect: Effect.Effect<A, E>): Effect.Effect<A, E> {
    return this.lock.withPermit(effect)
  }

  private error(reason: SupervisorError["reason"], message: string, child?: string, cause?: unknown) {
    return new SupervisorError({ reason, supervisor: this.options.id, child, message, cause })
  }

  newChild(spec: ChildSpec.ChildSpec<unknown, never>, context: Context.Context<never>): Child {
    return {
      spec,
      context,
      status: "starting",
      incarnation: 0,
      scope: undefined,
      value: undefined,
      restarts: 0,
      streak: 0,
      startedAt: 0,
      endedAt: 0,
      pending: 0,
    }
  }

  // ---- starting ----------------------------------------------------------------------------------------------

  /**
   * Starts one incarnation in a new scope. On success, if `valid()` still holds, the child is adopted in the
   * same uninterruptible step (so an opened scope is always either recorded or closed); otherwise, and on
   * failure, the scope is closed.
   */
  private startOnce(child: Child, restarted: boolean, valid: () => boolean): Effect.Effect<StartResult> {
    return Effect.uninterruptibleMask((restore) =>
      Effect.suspend(() => {
        const scope = Scope.makeUnsafe()
        child.status = "starting"
        const start = child.spec.start.pipe(Scope.provide(scope), Effect.provideContext(child.context))
        return Effect.flatMap(Effect.exit(restore(start)), (exit): Effect.Effect<StartResult> => {
          if (Exit.isSuccess(exit) && valid())
            return Effect.as(this.adopt(child, scope, exit.value, restarted), "started")
          const result: StartResult = Exit.isSuccess(exit) ? "superseded" : exit.cause
          return Effect.as(this.closeBounded(scope, child.spec.shutdownTimeoutMs), result)
        })
      }),
    )
  }

  /** Records a started incarnation and watches it. */
  private adopt(
    child: Child,
    scope: Scope.Closeable,
    running: ChildSpec.Running<unknown>,
    restarted: boolean,
  ): Effect.Effect<void> {
    const at = this.now()
    child.incarnation++
    child.scope = scope
    child.value = running.value
    child.status = "running"
    child.startedAt = at
    child.pending = 0
    this.counters.started++
    const base = { supervisor: this.options.id, child: child.spec.id, incarnation: child.incarnation, at }
    if (restarted) {
      child.restarts++
      this.counters.restarts++
      this.emit({ _tag: "ChildRestarted", ...base, downtimeMs: at - child.endedAt })
    } else {
      this.emit({ _tag: "ChildStarted", ...base })
    }
    const incarnation = child.incarnation
    const watch = Effect.flatMap(running.exit, (reason) => this.onExit(child, incarnation, reason))
    return Effect.asVoid(Effect.forkIn(watch, this.jobs))
  }

  /** Starts the initial children in order; on a failure stops those started, in reverse. */
  startAll(children: ReadonlyArray<Child>): Effect.Effect<void, SupervisorError> {
    return this.locked(
      Effect.gen({ self: this }, function* () {
        for (const child of children) {
          this.children.push(child)
          const result = yield* this.startOnce(child, false, () => !this.terminated)
          if (result !== "started") {
            this.counters.startFailures++
            const cause = result === "superseded" ? Cause.interrupt() : result
            this.emitStartFailed(child, cause)
            this.terminated = true
            yield* this.stopAll()
            return yield* this.error(
              "StartFailed",
              `supervisor ${this.options.id}: child "${child.spec.id}" failed to start: ${Cause.pretty(cause)}`,
              child.spec.id,
              Cause.squash(cause),
            )
          }
        }
      }),
    )
  }

  private emitStartFailed(child: Child, cause: Cause.Cause<unknown>): void {
    this.emit({
      _tag: "ChildStartFailed",
      supervisor: this.options.id,
      child: child.spec.id,
      error: Cause.squash(cause),
      at: this.now(),
    })
  }

  // ---- ends and restarts -------------------------------------------------------------------------------------

  /** A child ended on its own: reported at once, then decided on under the lock. */
  private onExit(child: Child, incarnation: number, reason: ChildSpec.ExitReason): Effect.Effect<void> {
    return Effect.suspend(() => {
      // A stop by the supervisor (or a newer incarnation) makes this end expected: nothing to do.
      if (this.terminated || child.incarnation !== incarnation || child.status !== "running") return Effect.void
      const at = this.now()
      child.status = "restarting"
      child.endedAt = at
      child.value = undefined
      this.counters.exits++
      this.emit({ _tag: "ChildExited", supervisor: this.options.id, child: child.spec.id, incarnation, reason, at })
      return this.locked(
        Effect.suspend(() => {
          // Taken over meanwhile (stopped, part of a group restart, supervisor terminated).
          if (this.terminated || child.incarnation !== incarnation || child.status !== "restarting") return Effect.void
          if (child.pending !== 0) return Effect.void
          const scope = child.scope
          child.scope = undefined
          // What it held (a dead process's handles, a finished fiber's scope) is released before restarting.
          const release = scope === undefined ? Effect.void : this.closeBounded(scope, child.spec.shutdownTimeoutMs)
          return Effect.andThen(release, this.decide(child, reason))
        }),
      )
    })
  }

  /** Under the lock: restart (with its group, after the backoff), leave stopped, or escalate. */
  private decide(child: Child, reason: ChildSpec.ExitReason): Effect.Effect<void> {
    return Effect.gen({ self: this }, function* () {
      if (!shouldRestart(child.spec.restart, reason)) {
        child.status = "stopped"
        if (child.spec.restart === "temporary") this.remove(child)
        return
      }
      const now = this.now()
      if (!this.window.record(now)) return yield* this.escalate(child, reason)
      child.streak = Intensity.nextStreak(this.options, child.streak, child.endedAt - child.startedAt)
      const delayMs = Intensity.delayMs(this.options, child.streak)
      const group = this.groupOf(child)
      for (const sibling of [...group].reverse()) {
        if (sibling !== child) yield* this.stopChild(sibling, "restarting")
      }
      const token = this.nextToken++
      for (const member of group) {
        member.pending = token
        member.status = "restarting"
      }
      this.emit({
        _tag: "RestartScheduled",
        supervisor: this.options.id,
        child: child.spec.id,
        children: group.map((member) => member.spec.id),
        delayMs,
        restartsInPeriod: this.window.count(now),
        at: now,
      })
      const restart =
        this.options.strategy === "one-for-one" ? this.restartOne(child, token) : this.restartGroup(group, token)
      yield* Effect.forkIn(delayMs > 0 ? Effect.andThen(Effect.sleep(delayMs), restart) : restart, this.jobs)
    })
  }

  /** The children restarted together with `child`, in start order. */
  private groupOf(child: Child): Array<Child> {
    const active = (c: Child) =>
      c === child || c.status === "running" || c.status === "starting" || c.status === "restarting"
    switch (this.options.strategy) {
      case "one-for-one":
        return [child]
      case "one-for-all":
        return this.children.filter(active)
      case "rest-for-one":
        return this.children.slice(this.children.indexOf(child)).filter(active)
    }
  }

  /** One-for-one: starts outside the lock, so that one slow start never delays decisions about the others. */
  private restartOne(child: Child, token: number): Effect.Effect<void> {
    const valid = () => child.pending === token && !this.terminated
    return Effect.suspend(() => {
      if (!valid()) return Effect.void
      return Effect.flatMap(this.startOnce(child, true, valid), (result) =>
        typeof result === "string" ? Effect.void : this.locked(valid() ? this.startFailed(child, result) : Effect.void),
      )
    })
  }

  /** One-for-all and rest-for-one: starts the group in order, under the lock. */
  private restartGroup(group: ReadonlyArray<Child>, token: number): Effect.Effect<void> {
    return this.locked(
      Effect.gen({ self: this }, function* () {
        for (const member of group) {
          const valid = () => member.pending === token && !this.terminated
          if (!valid()) continue
          const result = yield* this.startOnce(member, true, valid)
          // A failed start is that member's crash: deciding on it supersedes the rest of this group.
          if (typeof result !== "string") return yield* this.startFailed(member, result)
        }
      }),
    )
  }

  /** Under the lock: a failed start counts as a crash of a child that ran for no time. */
  private startFailed(child: Child, cause: Cause.Cause<unknown>): Effect.Effect<void> {
    this.counters.startFailures++
    this.emitStartFailed(child, cause)
    const now = this.now()
    child.pending = 0
    child.status = "restarting"
    child.startedAt = now
    child.endedAt = now
    return this.decide(child, { _tag: "Failed", error: Cause.squash(cause) })
  }

  private escalate(child: Child, reason: ChildSpec.ExitReason): Effect.Effect<void> {
    const { id, maxRestarts, periodMs } = this.options
    const error = this.error(
      "RestartIntensity",
      `supervisor ${id}: child "${child.spec.id}" ${ChildSpec.describeReason(reason)}; restarting it would exceed ` +
        `${maxRestarts} restart${maxRestarts === 1 ? "" : "s"} within ${periodMs} ms`,
      child.spec.id,
      reason,
    )
    this.terminated = true
    this.counters.escalations++
    return Effect.gen({ self: this }, function* () {
      yield* this.stopAll()
      this.emit({ _tag: "Escalated", supervisor: id, child: child.spec.id, error, at: this.now() })
      yield* Deferred.fail(this.done, error)
    })
  }

  // ---- stopping ----------------------------------------------------------------------------------------------

  /**
   * Closes a scope, waiting at most `timeoutMs`; returns whether it timed out. The close runs in a fiber of its
   * own, so a child that ignores its stop is left behind rather than blocking the supervisor.
   */
  private closeBounded(scope: Scope.Closeable, timeoutMs: number): Effect.Effect<boolean> {
    return Effect.flatMap(Effect.forkDetach(Scope.close(scope, Exit.void)), (fiber) =>
      Effect.map(Effect.timeoutOption(Fiber.await(fiber), timeoutMs), Option.isNone),
    )
  }

  /** Under the lock: stops a child's running incarnation, if any, and leaves it in `next`. */
  private stopChild(child: Child, next: ChildStatus): Effect.Effect<void> {
    return Effect.suspend(() => {
      child.pending = 0
      const scope = child.scope
      child.scope = undefined
      child.value = undefined
      if (scope === undefined) {
        child.status = next
        return Effect.void
      }
      child.status = "stopping"
      const incarnation = child.incarnation
      return Effect.map(this.closeBounded(scope, child.spec.shutdownTimeoutMs), (timedOut) => {
        const at = this.now()
        child.status = next
        child.endedAt = at
        this.counters.stops++
        if (timedOut) this.counters.stopTimeouts++
        this.emit({
          _tag: "ChildStopped",
          supervisor: this.options.id,
          child: child.spec.id,
          incarnation,
          timedOut,
          at,
        })
      })
    })
  }

  /** Under the lock: stops every child, last started first. */
  private stopAll(): Effect.Effect<void> {
    return Effect.forEach([...this.children].reverse(), (child) => this.stopChild(child, "stopped"), {
      discard: true,
    })
  }

  private remove(child: Child): void {
    const index = this.children.indexOf(child)
    if (index >= 0) this.children.splice(index, 1)
  }

  /** Stops everything: restart timers and watchers first, then the children in reverse order. Idempotent. */
  readonly shutdown: Effect.Effect<void> = Effect.uninterruptible(
    Effect.suspend(() => {
      if (this.shutdownStarted) return Deferred.await(this.stopped)
      this.shutdownStarted = true
      this.terminated = true
      return Effect.gen({ self: this }, function* () {
        yield* Scope.close(this.jobs, Exit.void)
        yield* this.locked(this.stopAll())
        yield* Deferred.succeed(this.done, undefined)
        yield* Deferred.succeed(this.stopped, undefined)
      })
    }),
  )

  // ---- commands ----------------------------------------------------------------------------------------------

  private find(id: string): Effect.Effect<Child, SupervisorError> {
    if (this.terminated) return Effect.fail(this.error("Terminated", `supervisor ${this.options.id} has stopped`))
    const child = this.children.find((c) => c.spec.id === id)
    return child === undefined
      ? Effect.fail(this.error("UnknownChild", `supervisor ${this.options.id} has no child "${id}"`, id))
      : Effect.succeed(child)
  }

  startChild<A, R>(spec: ChildSpec.ChildSpec<A, R>): Effect.Effect<A, SupervisorError, R> {
    return Effect.flatMap(Effect.context<R>(), (context) =>
      this.locked(
        Effect.gen({ self: this }, function* () {
          if (this.terminated) return yield* this.error("Terminated", `supervisor ${this.options.id} has stopped`)
          if (this.children.some((c) => c.spec.id === spec.id)) {
            return yield* this.error("DuplicateChild", `supervisor ${this.options.id}: "${spec.id}" exists`, spec.id)
          }
          const child = this.newChild(spec as ChildSpec.ChildSpec<unknown, never>, context as Context.Context<never>)
          this.children.push(child)
          const result = yield* this.startOnce(child, false, () => !this.terminated)
          if (result === "started") return child.value as A
          this.remove(child)
          const cause = result === "superseded" ? Cause.interrupt() : result
          this.counters.startFailures++
          this.emitStartFailed(child, cause)
          return yield* this.error(
            "StartFailed",
            `supervisor ${this.options.id}: child "${spec.id}" failed to start: ${Cause.pretty(cause)}`,
            spec.id,
            Cause.squash(cause),
          )
        }),
      ),
    )
  }

  terminateChild(id: string): Effect.Effect<void, SupervisorError> {
    return this.locked(
      Effect.flatMap(this.find(id), (child) =>
        Effect.andThen(
          this.stopChild(child, "stopped"),
          Effect.sync(() => this.remove(child)),
        ),
      ),
    )
  }

  restartChild(id: string): Effect.Effect<void, SupervisorError> {
    return this.locked(
      Effect.gen({ self: this }, function* () {
        const child = yield* this.find(id)
        yield* this.stopChild(child, "restarting")
        const result = yield* this.startOnce(child, true, () => !this.terminated)
        if (typeof result !== "string") yield* this.startFailed(child, result)
      }),
    )
  }

  info(): ReadonlyArray<ChildInfo> {
    return this.children.map((c) => ({
      id: c.spec.id,
      status: c.status,
      incarnation: c.incarnation,
      restarts: c.restarts,
      value: c.value,
    }))
  }
}

/** Builds and starts a supervisor (see `Supervisor.make`). */
export const start = <R>(
  options: ResolvedSupervisorOptions,
  specs: ReadonlyArray<ChildSpec.ChildSpec<unknown, R>>,
): Effect.Effect<SupervisorShape, SupervisorError, Scope.Scope | R> =>
  Effect.gen(function* () {
    const ids = new Set<string>()
    for (const spec of specs) {
      if (ids.has(spec.id))
        return yield* Effect.die(new Error(`supervisor ${options.id}: duplicate child "${spec.id}"`))
      ids.add(spec.id)
    }
    const context = (yield* Effect.context<R>()) as Context.Context<never>
    const clock = yield* Effect.clockWith(Effect.succeed)
    const hub = yield* PubSub.sliding<SupervisorEvent>({ capacity: 1024, replay: 256 })
    const done = yield* Deferred.make<void, SupervisorError>()
    const stopped = yield* Deferred.make<void>()
    const jobs = yield* Scope.make("parallel")
    const runtime = new SupervisorRuntime(options, clock, hub, done, stopped, jobs)
    yield* Effect.addFinalizer(() => runtime.shutdown)
    yield* runtime.startAll(specs.map((spec) => runtime.newChild(spec as ChildSpec.ChildSpec<unknown, never>, context)))
    const shape: SupervisorShape = {
      id: options.id,
      events: Stream.fromPubSub(hub),
      counters: () => ({ ...runtime.counters }),
      children: () => runtime.info(),
      await: Deferred.await(done),
      startChild: (spec) => runtime.startChild(spec),
      terminateChild: (id) => runtime.terminateChild(id),
      restartChild: (id) => runtime.restartChild(id),
      stop: runtime.shutdown,
    }
    return shape
  })
