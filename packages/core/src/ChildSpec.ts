/**
 * Child specifications: what a supervisor needs to know about one child to start it, watch it and stop it.
 *
 * A child is anything with a lifetime: it is started by an Effect that runs in the child's own `Scope` and
 * returns once the child is up (a `Running`); it ends on its own when `Running.exit` completes (with an
 * `ExitReason`), and it is stopped by closing its scope, which the supervisor bounds by `shutdownTimeoutMs`.
 * This module declares that shape and builds it for fibers (`effect`), actors (`actor`) and any acquire/release
 * pair (`make`); OS processes are in `ProcessChild.ts`, nested supervisors in `Supervisor.child`.
 *
 * It does not restart anything: restart policy, intensity and backoff are the supervisor's.
 *
 * @since 0.1.0
 */
import { Cause, Duration, Effect, Exit, Fiber, type Scope } from "effect"
import * as Actor from "./Actor.ts"
import type * as ActorRef from "./ActorRef.ts"
import type * as Contract from "./Contract.ts"
import type * as Node from "./Node.ts"

// ---- models --------------------------------------------------------------------------------------------------

/**
 * When a supervisor restarts a child that ended:
 * - `permanent`: always (a worker that should run for as long as its supervisor);
 * - `transient`: only after an abnormal end (failure, defect, non-zero process exit, signal), not after it
 *   completed or was interrupted;
 * - `temporary`: never; the child is removed when it ends.
 *
 * @since 0.1.0
 */
export type RestartPolicy = "permanent" | "transient" | "temporary"

/**
 * Why a child ended.
 *
 * @since 0.1.0
 */
export type ExitReason =
  | { readonly _tag: "Completed" }
  | { readonly _tag: "Failed"; readonly error: unknown }
  | { readonly _tag: "Died"; readonly defect: unknown }
  | { readonly _tag: "Interrupted" }

/**
 * A started child: the value it exposes (a ref, a process handle, nothing) and an Effect that completes when the
 * child ends on its own. `exit` must not fail; it is awaited once by the supervisor.
 *
 * @since 0.1.0
 */
export interface Running<A> {
  readonly value: A
  readonly exit: Effect.Effect<ExitReason>
}

/**
 * One child of a supervisor.
 *
 * Invariants the supervisor relies on: `start` acquires everything in the `Scope` it is given (so closing that
 * scope stops the child and frees its resources), and returns only once the child is up; a failed `start`
 * leaves nothing running once its scope is closed.
 *
 * @since 0.1.0
 */
export interface ChildSpec<A = unknown, R = never> {
  /** Unique among the supervisor's children; names the child in events and errors. */
  readonly id: string
  /** Starts the child in the given scope; returns once it is up. */
  readonly start: Effect.Effect<Running<A>, unknown, Scope.Scope | R>
  /** When the child is restarted after it ends. */
  readonly restart: RestartPolicy
  /** How long stopping the child (closing its scope) may take before the supervisor gives up waiting. */
  readonly shutdownTimeoutMs: number
}

/**
 * Common options of the child constructors.
 *
 * @since 0.1.0
 */
export interface ChildOptions {
  /** Default `"permanent"`. */
  readonly restart?: RestartPolicy | undefined
  /**
   * How long stopping the child may take before the supervisor stops waiting for it (and reports
   * `ChildStopped` with `timedOut`). Default 5 s. Lower it for children whose stop must not delay a restart of
   * their siblings; raise it for children that finish long work on stop.
   */
  readonly shutdownTimeout?: Duration.Input | undefined
}

/**
 * The defaults of `ChildOptions`.
 *
 * @since 0.1.0
 */
export const defaults = Object.freeze({
  restart: "permanent" as RestartPolicy,
  shutdownTimeoutMs: 5_000,
})

// ---- helpers -------------------------------------------------------------------------------------------------

/**
 * Whether a reason counts as a normal end (`Completed` or `Interrupted`): a `transient` child is not restarted
 * after one.
 *
 * @since 0.1.0
 */
export const isNormal = (reason: ExitReason): boolean => reason._tag === "Completed" || reason._tag === "Interrupted"

/**
 * The reason of an Effect's exit: success is `Completed`, a typed failure `Failed`, a defect `Died`, an
 * interruption alone `Interrupted`.
 *
 * @since 0.1.0
 */
export const reasonOf = (exit: Exit.Exit<unknown, unknown>): ExitReason => {
  if (Exit.isSuccess(exit)) return { _tag: "Completed" }
  const failure = exit.cause.reasons.find(Cause.isFailReason)
  if (failure !== undefined) return { _tag: "Failed", error: failure.error }
  const defect = exit.cause.reasons.find(Cause.isDieReason)
  if (defect !== undefined) return { _tag: "Died", defect: defect.defect }
  return { _tag: "Interrupted" }
}

/**
 * A short text for logs and event displays, e.g. `failed: ProcessExitError (signal SIGKILL)`.
 *
 * @since 0.1.0
 */
export const describeReason = (reason: ExitReason): string => {
  switch (reason._tag) {
    case "Completed":
      return "completed"
    case "Interrupted":
      return "interrupted"
    case "Failed":
      return `failed: ${messageOf(reason.error)}`
    case "Died":
      return `died: ${messageOf(reason.defect)}`
  }
}

const messageOf = (u: unknown): string =>
  u instanceof Error ? `${u.name === "Error" ? "" : `${u.name}: `}${u.message}` : String(u)

const resolveOptions = (options: ChildOptions | undefined) => {
  const timeout =
    options?.shutdownTimeout === undefined
      ? defaults.shutdownTimeoutMs
      : Duration.toMillis(Duration.fromInputUnsafe(options.shutdownTimeout))
  if (!(timeout >= 0)) throw new Error("ChildSpec: shutdownTimeout must be a duration >= 0")
  return { restart: options?.restart ?? defaults.restart, shutdownTimeoutMs: timeout }
}

// ---- constructors --------------------------------------------------------------------------------------------

/**
 * A child from its parts: `start` runs in the child's scope (acquire there whatever closing the scope must
 * release) and returns the `Running` handle. Throws on a negative `shutdownTimeout` (a programming error).
 *
 * @since 0.1.0
 */
export const make = <A, R = never>(
  id: string,
  start: Effect.Effect<Running<A>, unknown, Scope.Scope | R>,
  options?: ChildOptions,
): ChildSpec<A, R> => ({ id, start, ...resolveOptions(options) })

/**
 * A child that is a fiber running `effect`: started by forking it in the child's scope, ended when the effect
 * ends (success `Completed`, failure `Failed`, defect `Died`), stopped by interrupting it.
 *
 * @example
 * const ticker = ChildSpec.effect("ticker", Effect.forever(Effect.sleep("1 second")))
 *
 * @since 0.1.0
 */
export const effect = <R = never>(
  id: string,
  effect: Effect.Effect<unknown, unknown, R>,
  options?: ChildOptions,
): ChildSpec<void, R> =>
  make(
    id,
    Effect.gen(function* () {
      const fiber = yield* Effect.forkScoped(effect)
      return { value: undefined, exit: Effect.map(Fiber.await(fiber), reasonOf) }
    }),
    options,
  )

/**
 * Options of `actor`.
 *
 * @since 0.1.0
 */
export interface ActorChildOptions<S> extends ChildOptions {
  /** The state each incarnation starts from instead of the behaviour's `initialState`. */
  readonly initialState?: S | undefined
}

/**
 * A child that is an actor named `name` on `node`. Supervised, a defect in a handler crashes the actor (the
 * caller of that message gets `internal`, waiting messages are refused) instead of being survived, and the
 * supervisor starts a new incarnation at the same address with the initial state: refs held elsewhere keep
 * working. Stopped like `Actor.stop`. `value` is the actor's ref.
 *
 * @since 0.1.0
 */
export const actor = <C extends Contract.Contract, S, R, E>(
  id: string,
  node: Node.NodeShape,
  behavior: Actor.Behavior<C, S, R, E>,
  name: string,
  options?: ActorChildOptions<S>,
): ChildSpec<ActorRef.ActorRef<C>, R> =>
  make(
    id,
    Effect.gen(function* () {
      const ref = yield* Actor.spawnOn(node, behavior, name, {
        initialState: options?.initialState,
        onDefect: "stop",
      })
      return { value: ref, exit: Effect.map(Actor.awaitStop(ref), reasonOf) }
    }),
    options,
  )
