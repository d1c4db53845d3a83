/**
 * Actors: a contract served at the address `@name` by a behaviour that owns a state and handles one message at
 * a time, in arrival order, from a bounded mailbox. `Actor.make` declares a behaviour; `Actor.spawn` starts an
 * actor on a node and returns its `ActorRef`, which any node can use to ask (request/reply) or tell (one-way).
 *
 * Handlers have the shape `(payload, context) => Effect<Success, Error>`, as in `Node.serve`, with the state on
 * the context: `context.state` reads it and `context.setState(next)` sets the state the next message sees.
 * That keeps a handler's signature the contract's (reply type, error type) rather than a `[reply, state]`
 * tuple, so read-only methods don't restate the state and errors stay in the error channel. The new state is
 * committed when the handler completes, with a success or with a typed failure (both are the handler's
 * decision); a defect or an interruption discards it, so a handler that blew up half-way never leaves a
 * half-updated state behind.
 *
 * Processing costs nothing while idle: a message runs its handler in the fiber the node already forks for it,
 * parking in the mailbox only while another message holds the turn (see `internal/cell.ts`), so an idle actor
 * costs about 0.7 KiB of heap and no fiber (`packages/examples/bench/actors.bench.ts`). All actors of a node
 * are served through one `Node.serveFamily("@")` registration; they are reached by ref (which names the node's
 * endpoints) and are not announced in HELLO.
 *
 * Failure policy: a typed failure fails that ask and the actor goes on; a defect fails that ask with
 * `internal`, and the actor either keeps its previous state and goes on (counted in `stats`, the default) or,
 * spawned with `onDefect: "stop"` (as supervisors do, `ChildSpec.actor`), crashes so that its supervisor
 * restarts it from a clean state.
 *
 * This module owns behaviours, spawning, the mailbox discipline and the actor lifecycle (`onStart`, `onStop`,
 * `stop`). It does not own routing, correlation, deadlines or the wire (`Node.ts`), the ref and its codec
 * (`ActorRef.ts`), supervision and restarts, or the dead-letter stream (its hook is `deadLetter` in
 * `internal/cell.ts`).
 *
 * @since 0.1.0
 */
import { Context, Effect, Exit, Scope } from "effect"
import * as ActorRef from "./ActorRef.ts"
import type { CallContext } from "./CallContext.ts"
import type * as Contract from "./Contract.ts"
import * as Cell from "./internal/cell.ts"
import * as Node from "./Node.ts"
import { type RemoteDefect, RpcError } from "./RpcError.ts"

// ---- models --------------------------------------------------------------------------------------------------

/**
 * What `onStart` and `onStop` see: the state, the actor's own ref, and its node.
 *
 * @since 0.1.0
 */
export interface LifecycleContext<S, C extends Contract.Contract> {
  /** The current state: as committed so far, or as last set by `setState` in this handler. */
  readonly state: S
  /**
   * Sets the state the next message will see, committed when this handler completes with a success or a typed
   * failure (discarded on a defect or interruption). Calling it after the handler completed is a defect.
   */
  readonly setState: (next: S) => void
  /** This actor's ref, e.g. to pass as a reply-to address. */
  readonly self: ActorRef.ActorRef<C>
  /** The node hosting this actor. */
  readonly node: Node.NodeShape
  /** Typed asks to another actor through this actor's node (`ActorRef.ask(node, ref)`). */
  readonly ask: <D extends Contract.Contract>(ref: ActorRef.ActorRef<D>) => Node.Client<D>
  /** Typed tells to another actor through this actor's node (`ActorRef.tell(node, ref)`). */
  readonly tell: <D extends Contract.Contract>(ref: ActorRef.ActorRef<D>) => Node.Teller<D>
}

/**
 * What a message handler sees: the lifecycle context plus the call being served (caller, deadline, headers).
 *
 * @since 0.1.0
 */
export interface ActorContext<S, C extends Contract.Contract> extends LifecycleContext<S, C> {
  /** The call: method, caller, deadline (`Infinity` for a tell) and headers. */
  readonly call: CallContext
}

/**
 * The handler of one unary method: the payload and the context in, an Effect of the method's success type out,
 * failing with the method's error type (or an `RpcError`). Streaming methods cannot be served by actors.
 *
 * @since 0.1.0
 */
export type Handler<M, S, C extends Contract.Contract, R> =
  M extends Contract.Unary<infer P, infer A, infer E>
    ? (payload: P, context: ActorContext<S, C>) => Effect.Effect<A, E | RpcError | RemoteDefect, R>
    : never

/**
 * One handler per method of the contract.
 *
 * @since 0.1.0
 */
export type Handlers<C extends Contract.Contract, S, R = never> = {
  readonly [K in keyof C["methods"]]: Handler<C["methods"][K], S, C, R>
}

/**
 * The services a handlers object needs (the union over its handlers).
 *
 * @since 0.1.0
 */
export type HandlersContext<H> = {
  [K in keyof H]: H[K] extends (...args: never) => Effect.Effect<unknown, unknown, infer R> ? R : never
}[keyof H]

/**
 * What happens to a message arriving at a full mailbox:
 * - `"fail"`: the new message is refused (an ask fails with `overloaded`, a tell becomes a dead letter).
 * - `"drop"`: the oldest waiting message is dropped to make room (an ask fails with `overloaded`, a tell becomes
 *   a dead letter), for actors where the latest messages matter most (telemetry, position updates).
 *
 * @since 0.1.0
 */
export type Overflow = "fail" | "drop"

/**
 * The declaration of an actor: its contract, initial state, handlers, lifecycle hooks and mailbox policy.
 *
 * @since 0.1.0
 */
export interface Behavior<C extends Contract.Contract, S, R = never, E = never> {
  readonly _tag: "Behavior"
  readonly contract: C
  /** The state of a new actor (unless `spawn` is given another). Shared by actors: treat states as immutable. */
  readonly initialState: S
  readonly handlers: Handlers<C, S, R>
  /** Runs once before the first message; its failure fails the spawn (the actor never starts). */
  readonly onStart: ((context: LifecycleContext<S, C>) => Effect.Effect<void, E, R>) | undefined
  /** Runs once after the last message, on `stop` or when the spawn's scope closes; sees the final state. */
  readonly onStop: ((context: LifecycleContext<S, C>) => Effect.Effect<void, never, R>) | undefined
  /** Messages that may wait while one is processed. */
  readonly mailboxCapacity: number
  readonly overflow: Overflow
}

/**
 * Options of `make`.
 *
 * @since 0.1.0
 */
export interface BehaviorOptions<C extends Contract.Contract, S, H, E, R1, R2> {
  /** The state of a new actor. */
  readonly initialState: S
  /** One handler per method. */
  readonly handlers: H & Handlers<C, S, unknown>
  /** Runs before the first message, may set the state; a failure fails `spawn`. Default none. */
  readonly onStart?: ((context: LifecycleContext<S, C>) => Effect.Effect<void, E, R1>) | undefined
  /** Runs after the last message (on stop or scope close) with the final state. Default none. */
  readonly onStop?: ((context: LifecycleContext<S, C>) => Effect.Effect<void, never, R2>) | undefined
  /**
   * Messages that may wait while one is processed; the one being processed does not count. Default 1000. Raise
   * it for bursty producers that must not see `overloaded`; lower it to push back on callers sooner.
   */
  readonly mailboxCapacity?: number | undefined
  /** What a full mailbox does with one more message. Default `"fail"`. */
  readonly overflow?: Overflow | undefined
}

/**
 * Per-spawn settings.
 *
 * @since 0.1.0
 */
export interface SpawnOptions<S> {
  /** The state to start from instead of the behaviour's `initialState`. */
  readonly initialState?: S | undefined
  /**
   * What a defect in a handler does to the actor. `"resume"` (default): the caller gets `internal`, the actor
   * keeps its previous state and goes on. `"stop"`: the caller gets `internal` and the actor stops (crashes):
   * waiting asks fail `not_found`, `onStop` runs, and `awaitStop` reports the defect; supervisors use it to
   * restart the actor from a clean state (see `ChildSpec.actor`).
   */
  readonly onDefect?: "resume" | "stop" | undefined
}

/**
 * The defaults of `BehaviorOptions`.
 *
 * @since 0.1.0
 */
export const defaults = Object.freeze({
  mailboxCapacity: 1000,
  overflow: "fail" as Overflow,
})

/**
 * Why a message was not delivered to an actor.
 *
 * @since 0.1.0
 */
export type DeadLetterReason = Cell.DeadLetterReason

/**
 * A message an actor did not process and nobody was told about (a tell; a refused ask fails its caller instead):
 * its record. Such messages are counted (`ActorStats.deadLetters`) and published on the node's `deadLetters`.
 *
 * @since 0.1.0
 */
export interface DeadLetter {
  readonly actor: ActorRef.ActorRef
  readonly method: string
  readonly reason: DeadLetterReason
}

/**
 * Counters of one actor.
 *
 * @since 0.1.0
 */
export interface ActorStats {
  readonly status: "running" | "stopping" | "stopped"
  /** Messages waiting now (the one being processed not included). */
  readonly mailbox: number
  /** Messages handled (succeeded, failed, died or interrupted). */
  readonly processed: number
  /** Messages whose handler failed with a typed error. */
  readonly failed: number
  /** Messages whose handler died (a defect). */
  readonly defects: number
  /** Tells dropped: mailbox full, or the actor stopping. */
  readonly deadLetters: number
}

const namePattern = /^[A-Za-z0-9_][A-Za-z0-9_.:-]*$/

// ---- constructors --------------------------------------------------------------------------------------------

/**
 * Declares an actor's behaviour for `contract` (unary methods only). The state type is inferred from
 * `initialState`; the services needed are the union of what the handlers and hooks need. Throws on an invalid
 * `mailboxCapacity` or a streaming method (a programming error, caught at module load).
 *
 * @example
 * const CounterActor = Actor.make(Counter, {
 *   initialState: 0,
 *   handlers: {
 *     increment: ({ by }, ctx) => Effect.sync(() => { ctx.setState(ctx.state + by); return ctx.state }),
 *     get: (_, ctx) => Effect.succeed(ctx.state),
 *   },
 * })
 *
 * @since 0.1.0
 */
export const make = <
  C extends Contract.Contract,
  S,
  H extends Handlers<C, S, unknown>,
  E = never,
  R1 = never,
  R2 = never,
>(
  contract: C,
  options: BehaviorOptions<C, S, H, E, R1, R2>,
): Behavior<C, S, HandlersContext<H> | R1 | R2, E> => {
  for (const [name, method] of Object.entries(contract.methods)) {
    if (method._tag !== "Unary") throw new Error(`actor contract ${contract.name}: "${name}" is not unary`)
    if (typeof (options.handlers as Record<string, unknown>)[name] !== "function") {
      throw new Error(`actor behaviour of ${contract.name}: no handler for "${name}"`)
    }
  }
  const mailboxCapacity = options.mailboxCapacity ?? defaults.mailboxCapacity
  if (!Number.isInteger(mailboxCapacity) || mailboxCapacity < 1) {
    throw new Error(`actor behaviour of ${contract.name}: mailboxCapacity must be an integer >= 1`)
  }
  const overflow = options.overflow ?? defaults.overflow
  if (overflow !== "fail" && overflow !== "drop") {
    throw new Error(`actor behaviour of ${contract.name}: overflow must be "fail" or "drop"`)
  }
  return {
    _tag: "Behavior",
    contract,
    initialState: options.initialState,
    handlers: options.handlers as Handlers<C, S, HandlersContext<H>>,
    onStart: options.onStart,
    onStop: options.onStop,
    mailboxCapacity,
    overflow,
  }
}

/**
 * Starts an actor named `name` on `node`, served at `@name`, and returns its ref once `onStart` has run. The
 * actor runs until `stop` or until the scope closes (then `onStop` runs after the last message). Its handlers
 * run with the services of the spawn, see the call each serves as `CurrentCall` (not the call a spawn from a
 * handler ran in), and get the actor's own `Scope`: what a handler acquires with it is released when the actor
 * stops. Fails with `RpcError` `invalid_argument` for a name that is not `[A-Za-z0-9_][A-Za-z0-9_.:-]*` (at most
 * 256 characters) or is in use on the node, and with `onStart`'s error if it fails (the actor is then gone).
 *
 * @since 0.1.0
 */
export const spawnOn = <C extends Contract.Contract, S, R, E>(
  node: Node.NodeShape,
  behavior: Behavior<C, S, R, E>,
  name: string,
  options?: SpawnOptions<S>,
): Effect.Effect<ActorRef.ActorRef<C>, RpcError | E, Scope.Scope | R> =>
  Effect.uninterruptibleMask((restore) =>
    Effect.contextWith(
      (context: Context.Context<Scope.Scope | R>): Effect.Effect<ActorRef.ActorRef<C>, RpcError | E> => {
        if (name.length > 256 || !namePattern.test(name)) {
          return Effect.fail(
            new RpcError({ code: "invalid_argument", message: `actor name "${name}" must match ${namePattern}` }),
          )
        }
        const actors = Cell.actorsOf(node, context as Context.Context<never>)
        if (actors.cells.has(name)) {
          return Effect.fail(
            new RpcError({ code: "invalid_argument", message: `actor name "${name}" is in use on node ${node.id}` }),
          )
        }
        const ref = ActorRef.make(behavior.contract, { name, node: node.id, endpoints: actors.endpoints })
        // A child of the spawn's scope: closing it stops this actor alone, and a closed child leaves its parent.
        const scope = Scope.forkUnsafe(Context.get(context, Scope.Scope))
        const state = options?.initialState !== undefined ? options.initialState : behavior.initialState
        const cell = new Cell.Cell(
          ref,
          behavior as unknown as Cell.AnyBehavior,
          actors,
          scope,
          Cell.servicesOf(actors, context as Context.Context<never>),
          state,
        )
        if (options?.onDefect === "stop") Cell.watchOf(cell).crashOnDefect = true
        // onStart holds the turn from the moment the actor is reachable, so early messages wait for it.
        if (behavior.onStart !== undefined) cell.busy = true
        Cell.register(cell)
        const registered = Scope.addFinalizerExit(scope, Cell.finalizerOf(cell))
        const started =
          behavior.onStart === undefined ? registered : Effect.andThen(registered, Cell.start(cell, restore))
        return Effect.as(started, ref) as Effect.Effect<ActorRef.ActorRef<C>, E>
      },
    ),
  )

/**
 * `spawnOn` the `Node` service in context: the usual form inside an application.
 *
 * @example
 * const counter = yield* Actor.spawn(CounterActor, "counter-1")
 * yield* (yield* ActorRef.client(counter)).increment({ by: 2 })
 *
 * @since 0.1.0
 */
export const spawn = <C extends Contract.Contract, S, R, E>(
  behavior: Behavior<C, S, R, E>,
  name: string,
  options?: SpawnOptions<S>,
): Effect.Effect<ActorRef.ActorRef<C>, RpcError | E, Scope.Scope | Node.Node | R> =>
  Node.Node.use((node) => spawnOn(node, behavior, name, options))

// ---- combinators ---------------------------------------------------------------------------------------------

/**
 * Stops an actor spawned in this process, given the ref `spawn` returned (or `context.self`): later messages
 * are refused at once (asks fail `not_found`, tells become dead letters), waiting asks fail `not_found`, waiting
 * tells become dead letters, the handler in progress is interrupted (its caller gets `cancelled`), then
 * `onStop` runs and the name is free again. Completes when all that is done, except when called from the
 * actor's own handler, where the stop completes after that handler. Idempotent. Dies for a ref this process
 * did not spawn: a copy decoded from a message cannot stop the actor.
 *
 * @since 0.1.0
 */
export const stop = (ref: ActorRef.ActorRef): Effect.Effect<void> =>
  Effect.suspend(() => {
    const cell = Cell.cellOf(ref)
    if (cell === undefined) {
      return Effect.die(new Error(`Actor.stop: ${ActorRef.address(ref)} was not spawned by this process`))
    }
    if (cell.status === Cell.Status.Stopped) return Effect.void
    if (cell.status === Cell.Status.Stopping) return Cell.awaitStopped(cell)
    // Refuse new messages before the scope's finalizer runs, so a concurrent `stop` waits instead of returning.
    Cell.beginStop(cell)
    return Scope.close(cell.scope, Exit.void)
  })

/**
 * Waits until an actor spawned in this process has stopped, and tells how: a success after `stop` or the close
 * of its scope, a failure with the defect that crashed it (`onDefect: "stop"`). Returns at once for an actor
 * already stopped. Dies for a ref this process did not spawn.
 *
 * @since 0.1.0
 */
export const awaitStop = (ref: ActorRef.ActorRef): Effect.Effect<Exit.Exit<void>> =>
  Effect.suspend(() => {
    const cell = Cell.cellOf(ref)
    if (cell === undefined) {
      return Effect.die(new Error(`Actor.awaitStop: ${ActorRef.address(ref)} was not spawned by this process`))
    }
    return Cell.awaitExit(cell)
  })

/**
 * The counters of an actor spawned in this process, or `undefined` for a ref it did not spawn.
 *
 * @since 0.1.0
 */
export const stats = (ref: ActorRef.ActorRef): ActorStats | undefined => {
  const cell = Cell.cellOf(ref)
  if (cell === undefined) return undefined
  return {
    status:
      cell.status === Cell.Status.Running ? "running" : cell.status === Cell.Status.Stopping ? "stopping" : "stopped",
    mailbox: cell.mailbox?.size ?? 0,
    processed: cell.processed,
    failed: cell.failed,
    defects: cell.defects,
    deadLetters: cell.deadLetters,
  }
}
