/**
 * Supervisors: own a list of children (fibers, actors, OS processes, other supervisors; see `ChildSpec`),
 * start them in order, watch them, restart them by a strategy when they end, and stop them in reverse order.
 *
 * - Strategies: `one-for-one` restarts the child that ended; `one-for-all` stops the others (in reverse order)
 *   and restarts all (in order); `rest-for-one` does that for the child and those started after it.
 * - Restart intensity (as in OTP): at most `maxRestarts` restarts within any `period`. One more and the
 *   supervisor escalates: it stops every child and fails with `SupervisorError` `RestartIntensity`, which a
 *   parent supervisor sees as its child failing (and handles by its own strategy), and a top-level caller
 *   sees in `await`.
 * - Backoff: the first restart after a healthy run is immediate; a child that ends again within
 *   `backoffResetAfter` of its start waits `initialBackoff`, then twice that, up to `maxBackoff`.
 * - Observability: `events` (started, exited with reason, restart scheduled, restarted, stopped, escalated)
 *   and `counters()`.
 *
 * Built on Effect scopes and fibers: each child runs in a scope of its own, closed to stop it (bounded by its
 * shutdown timeout); the supervisor's own scope closing stops everything. Timing uses the Effect `Clock`, so
 * tests drive it with `TestClock`.
 *
 * This module owns the policy (what to restart, when, how often). It does not own how a child is started or
 * stopped (`ChildSpec`, `ProcessChild`), nor routing calls to children (`WorkerPool`).
 *
 * @since 0.1.0
 */
import { Duration, Effect, type Scope, type Stream } from "effect"
import type * as ChildSpec from "./ChildSpec.ts"
import * as Runtime from "./internal/supervisor.ts"
import type { SupervisorError } from "./SupervisorError.ts"

// ---- models --------------------------------------------------------------------------------------------------

/**
 * Which children restart when one ends (see the module doc).
 *
 * @since 0.1.0
 */
export type Strategy = "one-for-one" | "one-for-all" | "rest-for-one"

/**
 * Options of a supervisor.
 *
 * @since 0.1.0
 */
export interface SupervisorOptions {
  /** Names the supervisor in events and errors. Default `"supervisor"`. */
  readonly id?: string | undefined
  /** Default `"one-for-one"`. */
  readonly strategy?: Strategy | undefined
  /**
   * Most restarts within `period`; one more escalates. Default 3. Raise it for children that crash often but
   * harmlessly; 0 escalates on the first restart wanted.
   */
  readonly maxRestarts?: number | undefined
  /** The sliding window of `maxRestarts`. Default 5 s. */
  readonly period?: Duration.Input | undefined
  /** Delay before the second restart of a streak (the first is immediate). Default 100 ms. */
  readonly initialBackoff?: Duration.Input | undefined
  /** Cap of the doubling delay. Default 5 s. */
  readonly maxBackoff?: Duration.Input | undefined
  /** A child that ran at least this long before it ended starts a new streak (immediate restart). Default 1 s. */
  readonly backoffResetAfter?: Duration.Input | undefined
}

/**
 * A supervisor's options plus its children, started in this order and stopped in the reverse.
 *
 * @since 0.1.0
 */
export interface SupervisorSpec<R = never> extends SupervisorOptions {
  readonly children: ReadonlyArray<ChildSpec.ChildSpec<unknown, R>>
}

/**
 * Options with defaults applied, durations in milliseconds.
 *
 * @since 0.1.0
 */
export interface ResolvedSupervisorOptions {
  readonly id: string
  readonly strategy: Strategy
  readonly maxRestarts: number
  readonly periodMs: number
  readonly initialBackoffMs: number
  readonly maxBackoffMs: number
  readonly backoffResetAfterMs: number
}

/**
 * The defaults.
 *
 * @since 0.1.0
 */
export const defaults: Omit<ResolvedSupervisorOptions, "id"> = Object.freeze({
  strategy: "one-for-one" as Strategy,
  maxRestarts: 3,
  periodMs: 5_000,
  initialBackoffMs: 100,
  maxBackoffMs: 5_000,
  backoffResetAfterMs: 1_000,
})

/**
 * Where a child is in its life.
 *
 * @since 0.1.0
 */
export type ChildStatus = "starting" | "running" | "restarting" | "stopping" | "stopped"

/**
 * A snapshot of one child.
 *
 * @since 0.1.0
 */
export interface ChildInfo {
  readonly id: string
  readonly status: ChildStatus
  /** 1 for the first start, +1 per restart. */
  readonly incarnation: number
  /** Restarts of this child so far. */
  readonly restarts: number
  /** What the running incarnation exposes (`Running.value`), `undefined` when not running. */
  readonly value: unknown
}

/**
 * Counters of a supervisor since it started.
 *
 * @since 0.1.0
 */
export interface SupervisorCounters {
  /** Child starts, first starts and restarts together. */
  readonly started: number
  readonly restarts: number
  /** Children that ended on their own. */
  readonly exits: number
  readonly startFailures: number
  /** Children stopped by the supervisor (shutdown, siblings of a group restart, `terminateChild`). */
  readonly stops: number
  /** Stops that did not complete within the child's shutdown timeout. */
  readonly stopTimeouts: number
  readonly escalations: number
}

/**
 * What a supervisor reports. `at` is the Effect clock's time (epoch ms) when it happened.
 *
 * @since 0.1.0
 */
export type SupervisorEvent =
  | {
      readonly _tag: "ChildStarted"
      readonly supervisor: string
      readonly child: string
      readonly incarnation: number
      readonly at: number
    }
  | {
      readonly _tag: "ChildExited"
      readonly supervisor: string
      readonly child: string
      readonly incarnation: number
      readonly reason: ChildSpec.ExitReason
      readonly at: number
    }
  | {
      readonly _tag: "RestartScheduled"
      readonly supervisor: string
      /** The child whose end caused the restart. */
      readonly child: string
      /** Every child restarted by it, in start order (more than one for one-for-all and rest-for-one). */
      readonly children: ReadonlyArray<string>
      readonly delayMs: number
      /** Restarts within the current period, this one included. */
      readonly restartsInPeriod: number
      readonly at: number
    }
  | {
      readonly _tag: "ChildRestarted"
      readonly supervisor: string
      readonly child: string
      readonly incarnation: number
      /** From the end (or stop) of the previous incarnation to this one being up. */
      readonly downtimeMs: number
      readonly at: number
    }
  | {
      readonly _tag: "ChildStartFailed"
      readonly supervisor: string
      readonly child: string
      readonly error: unknown
      readonly at: number
    }
  | {
      readonly _tag: "ChildStopped"
      readonly supervisor: string
      readonly child: string
      readonly incarnation: number
      /** The stop did not complete within the shutdown timeout; the supervisor stopped waiting for it. */
      readonly timedOut: boolean
      readonly at: number
    }
  | {
      readonly _tag: "Escalated"
      readonly supervisor: string
      readonly child: string
      readonly error: SupervisorError
      readonly at: number
    }

/**
 * A running supervisor.
 *
 * @since 0.1.0
 */
export interface SupervisorShape {
  readonly id: string
  /** Events as they happen; a new subscriber first gets up to the last 256. */
  readonly events: Stream.Stream<SupervisorEvent>
  readonly counters: () => SupervisorCounters
  /** The children in start order. */
  readonly children: () => ReadonlyArray<ChildInfo>
  /** Completes when the supervisor stops (`stop` or its scope closing); fails when it escalates. */
  readonly await: Effect.Effect<void, SupervisorError>
  /**
   * Adds a child after the others and starts it; returns its `Running.value`. The child's services are
   * captured now and reused for its restarts. Fails `DuplicateChild`, `StartFailed` or `Terminated`.
   */
  readonly startChild: <A, R>(spec: ChildSpec.ChildSpec<A, R>) => Effect.Effect<A, SupervisorError, R>
  /** Stops a child (bounded by its shutdown timeout) and removes it. Fails `UnknownChild` or `Terminated`. */
  readonly terminateChild: (id: string) => Effect.Effect<void, SupervisorError>
  /**
   * Stops and starts a child now (not counted against the intensity). A failed start is handled like a crash.
   * Fails `UnknownChild` or `Terminated`.
   */
  readonly restartChild: (id: string) => Effect.Effect<void, SupervisorError>
  /** Stops every child in reverse order; `await` then completes. Idempotent. */
  readonly stop: Effect.Effect<void>
}

// ---- constructors --------------------------------------------------------------------------------------------

/**
 * Applies defaults and checks ranges; dies with a message naming the bad field (a programming error).
 *
 * @since 0.1.0
 */
export const resolve = (options: SupervisorOptions): ResolvedSupervisorOptions => {
  const ms = (name: string, input: Duration.Input | undefined, fallback: number): number => {
    if (input === undefined) return fallback
    const value = Duration.toMillis(Duration.fromInputUnsafe(input))
    if (!(value >= 0) || !Number.isFinite(value)) throw new Error(`supervisor: ${name} must be a finite duration >= 0`)
    return value
  }
  const maxRestarts = options.maxRestarts ?? defaults.maxRestarts
  if (!Number.isInteger(maxRestarts) || maxRestarts < 0)
    throw new Error("supervisor: maxRestarts must be an integer >= 0")
  const strategy = options.strategy ?? defaults.strategy
  if (strategy !== "one-for-one" && strategy !== "one-for-all" && strategy !== "rest-for-one") {
    throw new Error(`supervisor: unknown strategy ${String(strategy)}`)
  }
  const resolved = {
    id: options.id ?? "supervisor",
    strategy,
    maxRestarts,
    periodMs: ms("period", options.period, defaults.periodMs),
    initialBackoffMs: ms("initialBackoff", options.initialBackoff, defaults.initialBackoffMs),
    maxBackoffMs: ms("maxBackoff", options.maxBackoff, defaults.maxBackoffMs),
    backoffResetAfterMs: ms("backoffResetAfter", options.backoffResetAfter, defaults.backoffResetAfterMs),
  }
  if (resolved.periodMs <= 0) throw new Error("supervisor: period must be > 0")
  if (resolved.maxBackoffMs < resolved.initialBackoffMs) throw new Error("supervisor: maxBackoff < initialBackoff")
  return resolved
}

/**
 * Starts a supervisor: its children in order, each up before the next starts. Returns once all are up; they
 * run until the scope closes (then they stop in reverse order) or the supervisor escalates. Fails with
 * `SupervisorError` `StartFailed` when a child cannot start (those already started are stopped first). Dies on
 * invalid options or duplicate child ids.
 *
 * @example
 * const supervisor = yield* Supervisor.make({
 *   strategy: "rest-for-one",
 *   children: [ChildSpec.effect("db", connectDb), ChildSpec.effect("cache", warmCache)],
 * })
 *
 * @since 0.1.0
 */
export const make = <R = never>(
  spec: SupervisorSpec<R>,
): Effect.Effect<SupervisorShape, SupervisorError, Scope.Scope | R> =>
  Effect.suspend(() => Runtime.start(resolve(spec), spec.children))

/**
 * `make`, then wait: fails with the escalation (`RestartIntensity`), never succeeds while its scope is open.
 *
 * @since 0.1.0
 */
export const run = <R = never>(spec: SupervisorSpec<R>): Effect.Effect<void, SupervisorError, Scope.Scope | R> =>
  Effect.flatMap(make(spec), (supervisor) => supervisor.await)

/**
 * A supervisor as the child of another (a supervision tree). Its escalation is its end (`Failed` with the
 * `SupervisorError`), so the parent applies its own strategy, restarting the whole subtree; stopping it stops
 * its children in reverse order. `value` is the running `SupervisorShape`.
 *
 * @since 0.1.0
 */
export const child = <R = never>(
  id: string,
  spec: SupervisorSpec<R>,
  options?: ChildSpec.ChildOptions,
): ChildSpec.ChildSpec<SupervisorShape, R> => {
  const restart = options?.restart ?? "permanent"
  // Stopping a subtree stops its children one by one: by default wait for all their timeouts.
  const own = spec.children.reduce((sum, c) => sum + c.shutdownTimeoutMs, 0)
  const shutdownTimeoutMs =
    options?.shutdownTimeout === undefined ? own : Duration.toMillis(Duration.fromInputUnsafe(options.shutdownTimeout))
  return {
    id,
    restart,
    shutdownTimeoutMs,
    start: Effect.map(make({ ...spec, id: spec.id ?? id }), (supervisor) => ({
      value: supervisor,
      exit: Effect.match(supervisor.await, {
        onFailure: (error): ChildSpec.ExitReason => ({ _tag: "Failed", error }),
        onSuccess: (): ChildSpec.ExitReason => ({ _tag: "Completed" }),
      }),
    })),
  }
}
