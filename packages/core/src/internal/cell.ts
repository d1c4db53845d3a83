/**
 * The runtime of actors: one `Cell` per running actor (its state, turn and mailbox), the per-node table of cells
 * that the node's dispatcher resolves `@name` addresses through, and the lifecycle (start, stop, finish).
 *
 * How a message flows: the node forks one fiber per request or tell (it needs one anyway for deadlines and
 * cancellation). That fiber takes the actor's turn if the actor is idle and runs the handler itself; if the
 * actor is busy it parks in the mailbox until the previous message hands the turn on. So an idle actor has no
 * fiber and no queue, and cancellation needs nothing actor-specific: a caller that gives up (CANCEL or deadline)
 * interrupts that fiber, which skips the message if it still waits or interrupts its handler if it runs.
 *
 * All actors of a node are served through one `Node.serveFamily("@", ...)` registration: the node asks this
 * table which actor an address names, so an actor costs one map entry here rather than a registration there.
 */
import { Cause, Context, Effect, Exit, type Fiber, Scope } from "effect"
import * as ActorRef from "../ActorRef.ts"
import { type CallContext, CurrentCall } from "../CallContext.ts"
import type * as Contract from "../Contract.ts"
import type * as Node from "../Node.ts"
import { RpcError } from "../RpcError.ts"
import { Mailbox, type Waiter, WaiterState } from "./mailbox.ts"
import { type ActorQueues, DEEPEST_LISTED, registerActorQueues } from "./metricsSnapshot.ts"

/** Lifecycle of a cell. */
export const Status = { Running: 0, Stopping: 1, Stopped: 2 } as const
/** A lifecycle status. */
export type Status = (typeof Status)[keyof typeof Status]

/** Why a message was not delivered. */
export type DeadLetterReason = "mailbox_full" | "stopped"

type AnyHandler = (payload: unknown, context: MessageContext) => Effect.Effect<unknown, unknown, unknown>

/** A behaviour with its types erased, as the runtime sees it. */
export interface AnyBehavior {
  readonly contract: Contract.Contract
  readonly handlers: { readonly [method: string]: AnyHandler }
  readonly onStart: ((context: MessageContext) => Effect.Effect<void, unknown, unknown>) | undefined
  readonly onStop: ((context: MessageContext) => Effect.Effect<void, never, unknown>) | undefined
  readonly mailboxCapacity: number
  readonly overflow: "fail" | "drop"
}

/** The actors of one node, by name, and what they share, so an actor carries no closures of its own. */
export interface NodeActors {
  readonly node: Node.NodeShape
  readonly cells: Map<string, Cell>
  /** The cells that hold a mailbox now (messages waiting, or skipped ones not yet swept): read by the metrics. */
  readonly backlogged: Set<Cell>
  /** The node's endpoints, read once: every ref of this node shares the array. */
  readonly endpoints: ReadonlyArray<string>
  /** The dispatch entry of each behaviour on this node, shared by its actors. */
  readonly members: WeakMap<AnyBehavior, Node.FamilyMember>
  readonly ask: <D extends Contract.Contract>(ref: ActorRef.ActorRef<D>) => Node.Client<D>
  readonly tell: <D extends Contract.Contract>(ref: ActorRef.ActorRef<D>) => Node.Teller<D>
  /** The services the `@` family was registered with (the first spawn's): every message's fiber runs with them. */
  readonly context: Context.Context<never>
}

/** One actor. Plain fields only: this object is most of what an idle actor costs. */
export class Cell {
  status: Status = Status.Running
  /** Whether a message (or `onStart`) holds the turn. */
  busy = false
  /** Whether `onStart` completed, so `onStop` is due. */
  started = false
  /** The fiber running the current handler, to interrupt it on stop. */
  holder: Fiber.Fiber<unknown, unknown> | undefined = undefined
  /** Created by the first message that finds the actor busy; dropped when empty again. */
  mailbox: Mailbox | undefined = undefined
  processed = 0
  failed = 0
  defects = 0
  deadLetters = 0
  /** Stop bookkeeping, allocated only once a stop begins. */
  stopping: Stopping | undefined = undefined
  /** Supervision bookkeeping (crash on defect, exit watchers), allocated only for actors that use it. */
  watch: Watch | undefined = undefined
  state: unknown
  readonly ref: ActorRef.ActorRef
  readonly behavior: AnyBehavior
  readonly actors: NodeActors
  /** Closing it stops the actor; a child of the spawn's scope. */
  readonly scope: Scope.Closeable
  /**
   * The services of the spawn, which handlers and `onStop` run with, when they are not the family's (see
   * `servicesOf`); `undefined` when they are, as for every actor spawned where the first one was: a message's
   * fiber has them already, and providing them again would copy the context on every message.
   */
  readonly context: Context.Context<never> | undefined

  constructor(
    ref: ActorRef.ActorRef,
    behavior: AnyBehavior,
    actors: NodeActors,
    scope: Scope.Closeable,
    context: Context.Context<never> | undefined,
    state: unknown,
  ) {
    this.ref = ref
    this.behavior = behavior
    this.actors = actors
    this.scope = scope
    this.context = context
    this.state = state
  }
}

/** What a stop in progress waits for. */
interface Stopping {
  /** A stop waiting for the handler in progress to end. */
  idleWaiter: (() => void) | undefined
  /** Set when the actor stops itself from its own handler: finish once that handler ends. */
  finishOnRelease: boolean
  /** Further `stop` calls, woken when the stop completes. */
  readonly waiters: Array<() => void>
}

/** How a supervised actor ends: whether a defect crashes it, why it ended, and who waits for that. */
export interface Watch {
  crashOnDefect: boolean
  /** Set when a defect crashed the actor; its exit is then that failure instead of a success. */
  crash: Cause.Cause<never> | undefined
  exit: Exit.Exit<void> | undefined
  readonly waiters: Array<(exit: Exit.Exit<void>) => void>
}

/** The context handed to one handler or hook; buffers its state change until the handler ends. */
export class MessageContext {
  private next: unknown = undefined
  private changed = false
  private done = false
  private setter: ((next: unknown) => void) | undefined = undefined
  readonly cell: Cell
  readonly call: CallContext | undefined

  constructor(cell: Cell, call: CallContext | undefined) {
    this.cell = cell
    this.call = call
  }

  get state(): unknown {
    return this.changed ? this.next : this.cell.state
  }

  // A bound function, so `(payload, { setState }) => ...` works; made on first use, not for every message (a
  // function per message, and under tsx a `name` defined on each: 0.4 µs per ask at 32 in flight).
  get setState(): (next: unknown) => void {
    this.setter ??= (next) => this.set(next)
    return this.setter
  }

  private set(next: unknown): void {
    if (this.done) throw new Error(`${ActorRef.address(this.cell.ref)}: setState called after its handler completed`)
    this.next = next
    this.changed = true
  }

  get self(): ActorRef.ActorRef {
    return this.cell.ref
  }

  get node(): Node.NodeShape {
    return this.cell.actors.node
  }

  get ask(): NodeActors["ask"] {
    return this.cell.actors.ask
  }

  get tell(): NodeActors["tell"] {
    return this.cell.actors.tell
  }

  /** Ends the handler: the state it set, if any, becomes the actor's when `commit`. */
  settle(commit: boolean): void {
    this.done = true
    if (commit && this.changed) this.cell.state = this.next
  }
}

// ---- the table of a node -------------------------------------------------------------------------------------

const tables = new WeakMap<Node.NodeShape, NodeActors>()

/**
 * The actors of `node`. The first call registers the `@` family with the node, with the services of `context`
 * (the first spawn's): node interceptors and the mailbox run with them, while each handler runs with its own
 * actor's (`cell.context`), which may differ per spawn.
 */
export const actorsOf = (node: Node.NodeShape, context: Context.Context<never>): NodeActors => {
  const existing = tables.get(node)
  if (existing !== undefined) return existing
  const actors: NodeActors = {
    node,
    cells: new Map(),
    backlogged: new Set(),
    endpoints: node.endpoints(),
    members: new WeakMap(),
    ask: (ref) => ActorRef.ask(node, ref),
    tell: (ref) => ActorRef.tell(node, ref),
    context,
  }
  // Registered for the node's lifetime: its scope is never closed, the registration dies with the node.
  // Registering only updates the dispatcher's table, so it runs synchronously here.
  Effect.runSyncWith(context)(
    node
      .serveFamily("@", (address) => {
        const cell = actors.cells.get(address.slice(1))
        return cell === undefined ? undefined : memberOf(actors, cell.behavior)
      })
      .pipe(Effect.provideService(Scope.Scope, Scope.makeUnsafe())),
  )
  tables.set(node, actors)
  registerActorQueues(node, () => queuesOf(actors))
  return actors
}

/** A context without `CurrentCall`: the call a spawn ran in is not the call an actor's message serves. */
const withoutCall = (context: Context.Context<never>): Context.Context<never> =>
  context.mapUnsafe.has(CurrentCall.key) ? Context.omit(CurrentCall)(context) : context

/**
 * What a new actor's handlers must be given on top of their message's fiber (`Cell.context`): nothing when it is
 * spawned with the family's services (the same context), else its spawn's services, less the spawning call.
 */
export const servicesOf = (actors: NodeActors, context: Context.Context<never>): Context.Context<never> | undefined =>
  context === actors.context ? undefined : withoutCall(context)

/** The mailbox depths of a node's actors now; visits only the actors with a mailbox, not every actor. */
const queuesOf = (actors: NodeActors): ActorQueues => {
  let queued = 0
  let max = 0
  let backlogged = 0
  const deepest: Array<{ readonly actor: string; readonly depth: number }> = []
  for (const cell of actors.backlogged) {
    const depth = cell.mailbox?.size ?? 0
    if (depth === 0) continue
    queued += depth
    backlogged++
    if (depth > max) max = depth
    if (deepest.length === DEEPEST_LISTED && depth <= deepest[DEEPEST_LISTED - 1]!.depth) continue
    // Kept sorted, deepest first; the list is a handful long.
    let at = deepest.length
    while (at > 0 && deepest[at - 1]!.depth < depth) at--
    deepest.splice(at, 0, { actor: `@${cell.ref.name}`, depth })
    if (deepest.length > DEEPEST_LISTED) deepest.pop()
  }
  return { queued, max, backlogged, deepest }
}

/** The dispatch entry of a behaviour on a node: one handler per method, finding the actor by address. */
const memberOf = (actors: NodeActors, behavior: AnyBehavior): Node.FamilyMember => {
  const existing = actors.members.get(behavior)
  if (existing !== undefined) return existing
  const handlers: Record<string, (payload: unknown, call: CallContext) => Effect.Effect<unknown, unknown>> = {}
  for (const method in behavior.contract.methods) {
    // `call.method` is `@name/method`.
    const suffix = method.length + 1
    handlers[method] = (payload, call) => {
      const cell = actors.cells.get(call.method.slice(1, call.method.length - suffix))
      return cell === undefined
        ? Effect.fail(new RpcError({ code: "not_found", message: `no actor at ${call.method}`, method: call.method }))
        : deliver(cell, method, payload, call)
    }
  }
  const member: Node.FamilyMember = { contract: behavior.contract, handlers }
  actors.members.set(behavior, member)
  return member
}

// ---- messages ------------------------------------------------------------------------------------------------

/** Records a message the actor will not process: counted in its stats and published on the node's dead letters. */
const deadLetter = (cell: Cell, method: string, reason: DeadLetterReason): void => {
  cell.deadLetters++
  cell.actors.node.reportDeadLetter({
    reason: reason === "mailbox_full" ? "mailbox-full" : "unroutable",
    target: `${ActorRef.address(cell.ref)}/${method}`,
    direction: "inbound",
    attempt: 1,
    count: 1,
    detail: reason === "mailbox_full" ? `mailbox full (${cell.behavior.mailboxCapacity} waiting)` : "actor stopped",
    at: Date.now(),
  })
}

const refusal = (cell: Cell, method: string, reason: DeadLetterReason): RpcError => {
  const address = ActorRef.address(cell.ref)
  return reason === "stopped"
    ? new RpcError({ code: "not_found", message: `${address} stopped`, method: `${address}/${method}` })
    : new RpcError({
        code: "overloaded",
        message: `${address}: mailbox full (${cell.behavior.mailboxCapacity} waiting)`,
        method: `${address}/${method}`,
      })
}

/** Refuses a message that never entered the mailbox: an ask fails, a tell becomes a dead letter. */
const refuse = (
  cell: Cell,
  method: string,
  oneWay: boolean,
  reason: DeadLetterReason,
): Effect.Effect<void, RpcError> => {
  // A refused ask is a dead letter too: its caller gets the failure, and operators see it on the stream.
  deadLetter(cell, method, reason)
  return oneWay ? Effect.void : Effect.fail(refusal(cell, method, reason))
}

/** Refuses a message that waited in the mailbox: its fiber resumes with the failure and never runs a handler. */
const refuseWaiter = (cell: Cell, waiter: Waiter, reason: DeadLetterReason): void => {
  waiter.state = WaiterState.Refused
  deadLetter(cell, waiter.method, reason)
  waiter.resume(Effect.fail(refusal(cell, waiter.method, reason)))
}

/** Gives the turn to the oldest waiting message, or marks the actor idle (and lets a pending stop go on). */
const release = (cell: Cell): void => {
  cell.holder = undefined
  const mailbox = cell.mailbox
  if (mailbox !== undefined) {
    const next = cell.status === Status.Running ? mailbox.shift() : undefined
    if (mailbox.isEmpty) {
      cell.mailbox = undefined
      cell.actors.backlogged.delete(cell)
    }
    if (next !== undefined) {
      next.state = WaiterState.Granted
      // Resume through the scheduler, not on this stack: a long line of synchronous handlers would otherwise
      // nest each fiber inside the previous one's exit and overflow the stack.
      next.resume(Effect.yieldNow)
      return
    }
  }
  cell.busy = false
  const stopping = cell.stopping
  if (stopping === undefined) return
  if (stopping.idleWaiter !== undefined) {
    const wake = stopping.idleWaiter
    stopping.idleWaiter = undefined
    wake()
  } else if (stopping.finishOnRelease) {
    stopping.finishOnRelease = false
    Effect.runFork(finish(cell))
  }
}

/** Parks a message until it is handed the turn. */
const waitTurn = (cell: Cell, mailbox: Mailbox, method: string, oneWay: boolean): Effect.Effect<void, RpcError> =>
  Effect.callback<void, RpcError>((resume) => {
    const waiter: Waiter = { state: WaiterState.Waiting, oneWay, method, resume }
    mailbox.push(waiter)
    return Effect.sync(() => {
      // The caller gave up (CANCEL, deadline, node closing): skip the message.
      if (waiter.state === WaiterState.Waiting) mailbox.cancel(waiter)
      // It was handed the turn just as it was interrupted: pass the turn on, or the actor would stall.
      else if (waiter.state === WaiterState.Granted) {
        waiter.state = WaiterState.Cancelled
        release(cell)
      }
    })
  })

type Restore = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>

/** Runs one handler holding the turn, then commits its state and hands the turn on. */
const turn = (
  cell: Cell,
  restore: Restore,
  method: string,
  payload: unknown,
  call: CallContext,
  oneWay: boolean,
): Effect.Effect<unknown, unknown> =>
  Effect.withFiber((fiber) => {
    // Handed the turn just before the actor began to stop.
    if (cell.status !== Status.Running) {
      release(cell)
      return refuse(cell, method, oneWay, "stopped")
    }
    cell.holder = fiber
    const context = new MessageContext(cell, call)
    const handler = cell.behavior.handlers[method]!
    // The actor's own scope (innermost, over the spawn's): what a handler acquires with it is released when the
    // actor stops.
    const run = Effect.provideService(
      Effect.suspend(() => handler(payload, context)),
      Scope.Scope,
      cell.scope,
    )
    const handled = (cell.context === undefined ? run : Effect.provideContext(run, cell.context)) as Effect.Effect<
      unknown,
      unknown
    >
    return Effect.onExitPrimitive(
      restore(handled),
      (exit) => {
        cell.processed++
        if (Exit.isSuccess(exit)) context.settle(true)
        else if (Cause.hasDies(exit.cause)) {
          // The caller gets `internal`; the actor keeps its previous state and goes on, unless it is supervised
          // (crash on defect): then it stops with that cause and its supervisor starts a new incarnation.
          cell.defects++
          context.settle(false)
          if (cell.watch?.crashOnDefect === true && cell.status === Status.Running) {
            cell.watch.crash = Cause.die(Cause.squash(exit.cause))
            beginStop(cell)
            release(cell)
            return Scope.close(cell.scope, Exit.failCause(cell.watch.crash))
          }
        } else if (Cause.hasInterrupts(exit.cause)) context.settle(false)
        else {
          cell.failed++
          context.settle(true)
        }
        release(cell)
        return undefined
      },
      true,
    )
  })

/** The served side of every method: takes a place in line, waits for the turn, runs the handler. */
export const deliver = (
  cell: Cell,
  method: string,
  payload: unknown,
  call: CallContext,
): Effect.Effect<unknown, unknown> =>
  Effect.uninterruptibleMask((restore) => {
    // The node starts a message's fiber synchronously as it reads the envelope, so this runs in arrival order:
    // the place in line is taken here, before anything can yield. (Node server interceptors run before this; one
    // that suspends before calling through gives up that order.)
    // A tell is served with no deadline (Infinity); an ask always has a finite one.
    const oneWay = call.deadline === Number.POSITIVE_INFINITY
    if (cell.status !== Status.Running) return refuse(cell, method, oneWay, "stopped")
    if (!cell.busy) {
      cell.busy = true
      return turn(cell, restore, method, payload, call, oneWay)
    }
    let mailbox = cell.mailbox
    if (mailbox === undefined) {
      mailbox = new Mailbox()
      cell.mailbox = mailbox
      cell.actors.backlogged.add(cell)
    }
    if (mailbox.size >= cell.behavior.mailboxCapacity) {
      if (cell.behavior.overflow === "fail") return refuse(cell, method, oneWay, "mailbox_full")
      const oldest = mailbox.shift()
      if (oldest !== undefined) refuseWaiter(cell, oldest, "mailbox_full")
    }
    return Effect.flatMap(restore(waitTurn(cell, mailbox, method, oneWay)), () =>
      turn(cell, restore, method, payload, call, oneWay),
    )
  })

// ---- lifecycle -----------------------------------------------------------------------------------------------

/**
 * Runs `onStart` holding the turn (taken by the spawn before the actor became reachable), so messages arriving
 * meanwhile wait for it.
 */
export const start = (cell: Cell, restore: Restore): Effect.Effect<void, unknown, unknown> => {
  const onStart = cell.behavior.onStart
  if (onStart === undefined) {
    cell.started = true
    return Effect.void
  }
  return Effect.withFiber((fiber) => {
    cell.holder = fiber
    const context = new MessageContext(cell, undefined)
    return Effect.onExitPrimitive(
      restore(Effect.suspend(() => onStart(context))),
      (exit) => {
        if (Exit.isSuccess(exit)) {
          context.settle(true)
          cell.started = true
          release(cell)
          return undefined
        }
        // The actor never started: refuse what arrived meanwhile, give up the turn (waking a stop that waits
        // for it), and close its scope; `onStop` is skipped.
        context.settle(false)
        beginStop(cell)
        release(cell)
        return Scope.close(cell.scope, exit)
      },
      true,
    )
  })
}

/** Stops taking messages: later ones are refused, waiting ones fail (asks) or become dead letters (tells). */
export const beginStop = (cell: Cell): void => {
  if (cell.status !== Status.Running) return
  cell.status = Status.Stopping
  cell.stopping = { idleWaiter: undefined, finishOnRelease: false, waiters: [] }
  const mailbox = cell.mailbox
  if (mailbox === undefined) return
  cell.mailbox = undefined
  cell.actors.backlogged.delete(cell)
  for (const waiter of mailbox.drain()) refuseWaiter(cell, waiter, "stopped")
}

/** Runs `onStop` (if the actor started), then marks the actor stopped and frees its name. */
const finish = (cell: Cell): Effect.Effect<void> => {
  const onStop = cell.behavior.onStop
  const run =
    cell.started && onStop !== undefined
      ? (Effect.withFiber((fiber) => {
          // onStop holds the actor: a `stop` of itself from there returns instead of waiting for its own end.
          cell.holder = fiber
          return onStop(new MessageContext(cell, undefined))
        }).pipe(
          // One actor's failing onStop must not keep its scope from stopping the others.
          Effect.catchCause((cause) => Effect.logError(`${ActorRef.address(cell.ref)}: onStop failed`, cause)),
          Effect.provideContext(cell.context ?? withoutCall(cell.actors.context)),
        ) as Effect.Effect<void>)
      : Effect.void
  return Effect.ensuring(
    run,
    Effect.sync(() => {
      cell.holder = undefined
      cell.status = Status.Stopped
      const cells = cell.actors.cells
      if (cells.get(cell.ref.name) === cell) cells.delete(cell.ref.name)
      const waiters = cell.stopping?.waiters ?? []
      cell.stopping = undefined
      for (const wake of waiters) wake()
      const watch = cell.watch
      if (watch !== undefined) {
        watch.exit = watch.crash === undefined ? Exit.void : Exit.failCause(watch.crash)
        for (const wake of watch.waiters.splice(0)) wake(watch.exit)
      }
    }),
  )
}

/**
 * The actor's finalizer, run when its scope closes (by `stop` or with the spawn's scope): refuse what waits,
 * interrupt the handler in progress, wait for it to end, then `onStop`.
 */
export const stopFinalizer = (cell: Cell): Effect.Effect<void> =>
  Effect.withFiber((fiber) => {
    beginStop(cell)
    if (cell.status === Status.Stopped) return Effect.void
    if (!cell.busy) return finish(cell)
    const stopping = cell.stopping!
    // The actor is stopping itself from its own handler: it cannot wait for itself, so finish when it ends.
    if (cell.holder === fiber) {
      stopping.finishOnRelease = true
      return Effect.void
    }
    return Effect.callback<void>((resume) => {
      stopping.idleWaiter = () => resume(finish(cell))
      cell.holder?.interruptUnsafe()
    })
  })

/** The finalizer to add to the actor's scope; a closure over the cell alone, since every idle actor keeps one. */
export const finalizerOf =
  (cell: Cell) =>
  (_exit: Exit.Exit<unknown, unknown>): Effect.Effect<void> =>
    stopFinalizer(cell)

/** Waits for a stop begun elsewhere; returns at once from the actor's own handler (it would wait for itself). */
export const awaitStopped = (cell: Cell): Effect.Effect<void> =>
  Effect.withFiber((fiber) => {
    const stopping = cell.stopping
    if (stopping === undefined || fiber === cell.holder) return Effect.void
    return Effect.callback<void>((resume) => {
      stopping.waiters.push(() => resume(Effect.void))
    })
  })

/** The supervision bookkeeping of a cell, allocated on first use. */
export const watchOf = (cell: Cell): Watch => {
  cell.watch ??= { crashOnDefect: false, crash: undefined, exit: undefined, waiters: [] }
  return cell.watch
}

/** Waits until the actor has stopped: a success, or the defect that crashed it. */
export const awaitExit = (cell: Cell): Effect.Effect<Exit.Exit<void>> =>
  Effect.callback<Exit.Exit<void>>((resume) => {
    const watch = watchOf(cell)
    if (watch.exit !== undefined) return resume(Effect.succeed(watch.exit))
    // Stopped before anyone watched: it did not crash (a crash allocates the watch first).
    if (cell.status === Status.Stopped) return resume(Effect.succeed(Exit.void))
    const wake = (exit: Exit.Exit<void>) => resume(Effect.succeed(exit))
    watch.waiters.push(wake)
    return Effect.sync(() => {
      const index = watch.waiters.indexOf(wake)
      if (index >= 0) watch.waiters.splice(index, 1)
    })
  })

/** Registers a new cell under its name and ref. */
export const register = (cell: Cell): void => {
  cell.actors.cells.set(cell.ref.name, cell)
  cellsByRef.set(cell.ref, cell)
}

const cellsByRef = new WeakMap<ActorRef.ActorRef, Cell>()

/** The cell of a ref returned by spawn in this process. */
export const cellOf = (ref: ActorRef.ActorRef): Cell | undefined => cellsByRef.get(ref)
