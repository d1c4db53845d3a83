/**
 * `@zactor/core/promise`: the Promise facade of a node, for code written with async functions. It is the same
 * node, contracts and calls as the Effect API, generated rather than written twice: each contract is walked
 * once and every method maps to a function that runs the Effect client's method on a `ManagedRuntime` built
 * from the same layers, with the caller's `AbortSignal` wired to interruption. Every failure goes through one
 * translation: a typed failure rejects with the same error instance, interruption with an `AbortError`, a
 * defect with the original value.
 *
 * The facade owns no RPC behaviour: routing, deadlines, validation, cancellation and error codes all come from
 * `Node`. What it owns is the runtime's lifecycle (`close()`, `Symbol.asyncDispose`) and the mapping between
 * async functions and Effects.
 *
 * @example
 * ```ts
 * import { start } from "@zactor/core/promise"
 *
 * await using server = await start()
 * await server.serve(Calculator, { add: async ({ a, b }) => a + b })
 * await using client = await start()
 * await client.connect(server.endpoints()[0]!)
 * const sum = await client.client(Calculator).add({ a: 1, b: 2 }, { signal: AbortSignal.timeout(1000) })
 * ```
 *
 * @since 0.1.0
 */
import type { TransportOptions } from "@zactor/transport"
import { Cause, Effect, Exit, Layer, ManagedRuntime, Pull, Scope, Stream } from "effect"
import type { CallContext, CallOptions, Target } from "./CallContext.ts"
import type * as ChildSpec from "./ChildSpec.ts"
import type * as Contract from "./Contract.ts"
import type { Discovery } from "./Discovery.ts"
import type { NodeMetrics } from "./internal/nodeMetrics.ts"
import type * as Liveness from "./Liveness.ts"
import * as Node from "./Node.ts"
import type * as NodeOptions from "./NodeOptions.ts"
import { RpcError } from "./RpcError.ts"
import * as Supervisor from "./Supervisor.ts"
import type * as Topic from "./Topic.ts"
import type * as Topics from "./Topics.ts"
import * as WorkerPool from "./WorkerPool.ts"
import * as WorkerProcess from "./WorkerProcess.ts"

// ---- models ------------------------------------------------------------------------------------------------

/**
 * Per-call settings of the Promise API: the Effect API's `CallOptions` plus an `AbortSignal`.
 *
 * @since 0.1.0
 */
export interface PromiseCallOptions extends CallOptions {
  /**
   * Aborting it interrupts the call: the Promise rejects with an `AbortError` and the callee is sent CANCEL.
   * An already aborted signal rejects at once, without sending anything.
   */
  readonly signal?: AbortSignal | undefined
}

/**
 * What a Promise handler knows about the call it serves: the Effect API's `CallContext` plus a signal.
 *
 * @since 0.1.0
 */
export interface PromiseCallContext extends CallContext {
  /**
   * Aborted when the call is interrupted on this node: the caller cancelled it, its deadline passed, or the
   * node is closing. The handler's Promise is not awaited after that; pass the signal on to stop its work.
   */
  readonly signal: AbortSignal
}

/**
 * A typed Promise client of a contract: one function per method.
 *
 * @since 0.1.0
 */
export type PromiseClient<C extends Contract.Contract> = {
  readonly [K in keyof C["methods"]]: PromiseMethodClient<C["methods"][K]>
}

/**
 * The Promise client function of one method. A unary call rejects with the contract's error instance, an
 * `RpcError`, a `RemoteDefect`, or an `AbortError`. A streaming call returns an `AsyncIterable` whose
 * iteration rejects the same way.
 *
 * @since 0.1.0
 */
export type PromiseMethodClient<M> =
  M extends Contract.Unary<infer P, infer S, infer _E>
    ? (payload: P, options?: PromiseCallOptions) => Promise<S>
    : M extends Contract.ServerStream<infer P, infer A, infer _E>
      ? (payload: P, options?: PromiseCallOptions) => AsyncIterable<A>
      : never

/**
 * The Promise handlers serving a contract: one per method.
 *
 * @since 0.1.0
 */
export type PromiseHandlers<C extends Contract.Contract> = {
  readonly [K in keyof C["methods"]]: PromiseHandler<C["methods"][K]>
}

/**
 * The Promise handler of one method. Throwing (or rejecting with) a value of the contract's error type sends
 * it as the application error, an `RpcError` sends its code, and anything else is sent as `internal`.
 * A streaming handler returns an `AsyncIterable`.
 *
 * @since 0.1.0
 */
export type PromiseHandler<M> =
  M extends Contract.Unary<infer P, infer S, infer _E>
    ? (payload: P, context: PromiseCallContext) => Promise<S>
    : M extends Contract.ServerStream<infer P, infer A, infer _E>
      ? (payload: P, context: PromiseCallContext) => AsyncIterable<A>
      : never

/**
 * One-way Promise senders of a contract's methods: each resolves once the message is queued.
 *
 * @since 0.1.0
 */
export type PromiseTeller<C extends Contract.Contract> = {
  readonly [K in keyof C["methods"]]: (
    payload: Contract.PayloadOf<C["methods"][K]>,
    options?: PromiseCallOptions,
  ) => Promise<void>
}

/**
 * A contract being served; `stop` (or `await using`) stops serving it. Idempotent.
 *
 * @since 0.1.0
 */
export interface PromiseServing extends AsyncDisposable {
  /** Stops serving and tells connected nodes. Calls in flight are not interrupted. */
  readonly stop: () => Promise<void>
}

/**
 * Options of `start`: the node's options plus the ZeroMQ transport's.
 *
 * @since 0.1.0
 */
export type StartOptions = NodeOptions.NodeOptions & {
  /** Options of the ZeroMQ transport under the node. */
  readonly transport?: TransportOptions.TransportOptions | undefined
  /**
   * A registry to join (a layer from `@zactor/discovery`, e.g. `Discovery.layerBeacon({ cluster })`): the node
   * registers itself and calls services by name with no endpoint configured. Default none.
   */
  readonly discovery?: Layer.Layer<Discovery, unknown> | undefined
}

/**
 * A topic publisher seen from Promise code (`Topic.Publisher`); `close()` (or `await using`) releases it.
 *
 * @since 0.1.0
 */
export interface PromisePublisher<A> extends AsyncDisposable {
  readonly topic: Topic.Topic<A>
  /** The publisher id carried by its events (the node id). */
  readonly id: string
  /** This process's epoch. */
  readonly epoch: number
  /** Publishes an event (queued; never waits for subscribers). Throws `TopicError` (`InvalidEvent`, `Overloaded`, `Closed`). */
  readonly publish: (value: A) => void
  /** The sequence number of the last event published. */
  readonly lastSeq: () => number
  /** Stops this handle; the last handle of a topic sends a closing heartbeat. Idempotent. */
  readonly close: () => Promise<void>
}

/**
 * A node's topics seen from Promise code (`Topics.TopicsShape`).
 *
 * @since 0.1.0
 */
export interface PromiseTopics {
  /** A publisher of `topic` on this node. Rejects with `TopicError`. */
  readonly publisher: <A>(topic: Topic.Topic<A>, options?: Topic.PublisherOptions) => Promise<PromisePublisher<A>>
  /**
   * Subscribes for as long as the iteration runs: events and notices (gaps, liveness, snapshot ends). Breaking
   * out of the loop, or aborting `signal`, ends the subscription.
   */
  readonly subscribe: <A>(
    topic: Topic.Topic<A>,
    options?: Topic.SubscribeOptions & { readonly signal?: AbortSignal | undefined },
  ) => AsyncIterable<Topic.Message<A>>
  /** A snapshot of the topic counters. */
  readonly metrics: () => Topics.TopicsMetrics
}

/**
 * A running node, seen from Promise code. `close()` and `Symbol.asyncDispose` dispose its runtime; both are
 * idempotent, and every call made after them rejects with `RpcError` code `unavailable`.
 *
 * @since 0.1.0
 */
export interface PromiseNode extends AsyncDisposable {
  /** This node's id. */
  readonly id: string
  /** The endpoints this node is bound to. */
  readonly endpoints: () => ReadonlyArray<string>
  /** Serves a contract until `stop()` or `close()`. Rejects with the defect if it is already served here. */
  readonly serve: <C extends Contract.Contract>(
    contract: C,
    handlers: PromiseHandlers<C>,
    options?: Node.AddressOptions,
  ) => Promise<PromiseServing>
  /** A typed client of a contract, sending to `target` (default: any connected node serving it). */
  readonly client: <C extends Contract.Contract>(
    contract: C,
    target?: Target,
    options?: Node.AddressOptions,
  ) => PromiseClient<C>
  /** Typed one-way senders (TELL, at most once) of a contract's methods. */
  readonly teller: <C extends Contract.Contract>(
    contract: C,
    target?: Target,
    options?: Node.AddressOptions,
  ) => PromiseTeller<C>
  /** Connects to a node and waits for its WELCOME. Rejects with `RpcError` `unavailable` or `incompatible_version`. */
  readonly connect: (endpoint: string) => Promise<Node.RemoteNode>
  /** The nodes this node has connected to. */
  readonly remotes: () => ReadonlyArray<Node.RemoteNode>
  /**
   * Health check (`NodeShape.ping`): resolves with the round trip and the node's load; rejects with `RpcError`
   * `deadline_exceeded` after `timeoutMs` (default 1000) or `unavailable` when not connected.
   */
  readonly ping: (
    target: Liveness.PingTarget,
    options?: { readonly timeoutMs?: number | undefined; readonly signal?: AbortSignal | undefined },
  ) => Promise<Liveness.PingResult>
  /**
   * Death watch (`NodeShape.watch`): resolves once, when the node or actor dies or becomes unreachable. Aborting
   * the signal stops watching (rejects with an `AbortError`).
   */
  readonly watch: (
    target: Liveness.WatchTarget,
    options?: { readonly signal?: AbortSignal | undefined },
  ) => Promise<Liveness.DeathNotice>
  /** Liveness changes of connected nodes as they happen; stop by breaking out of the loop. */
  readonly peerChanges: () => AsyncIterable<Liveness.PeerChange>
  /** Typed PUB/SUB topics on this node. */
  readonly topics: PromiseTopics
  /** A snapshot of this node's counters. */
  readonly metrics: () => NodeMetrics
  /**
   * Drains before a stop (`NodeShape.drain`): refuses new calls, tells peers, waits up to `timeoutMs` (default
   * 5000) for the calls being served; resolves with the number still running (0: drained).
   */
  readonly drain: (options?: { readonly timeoutMs?: number | undefined }) => Promise<number>
  /**
   * Disposes the runtime: stops serving, fails calls in flight with `unavailable`, closes sockets. Idempotent.
   * With `drainTimeoutMs`, drains first (`drain`): the calls being served finish, up to that bound.
   */
  readonly close: (options?: { readonly drainTimeoutMs?: number | undefined }) => Promise<void>
  /** The runtime behind this facade, to run Effects on the same node (e.g. while migrating code). */
  readonly runtime: ManagedRuntime.ManagedRuntime<Node.Node, unknown>
}

// ---- the one runner and the one failure translation --------------------------------------------------------

/** Runs an Effect on the node's runtime, with the caller's signal, translating its failure. */
type Run = <A, E>(effect: Effect.Effect<A, E, Node.Node>, signal?: AbortSignal) => Promise<A>

const abortError = (signal: AbortSignal | undefined): DOMException =>
  new DOMException("the call was aborted", { name: "AbortError", cause: signal?.reason })

const closedError = (): RpcError => new RpcError({ code: "unavailable", message: "the node is closed" })

/**
 * The only place an Effect outcome becomes a Promise rejection. A typed failure is the error instance itself;
 * a defect is the original thrown value; an interruption is the caller's abort, unless the node closed under
 * the call, which is `unavailable` as on the Effect side.
 */
const toRejection = (cause: Cause.Cause<unknown>, signal: AbortSignal | undefined, closed: boolean): unknown => {
  const failure = cause.reasons.find(Cause.isFailReason)
  if (failure !== undefined) return failure.error
  const defect = cause.reasons.find(Cause.isDieReason)
  if (defect !== undefined) return defect.defect
  return closed ? closedError() : abortError(signal)
}

// ---- walking contracts -------------------------------------------------------------------------------------

type AnyEffectMethod = (payload: unknown, options?: CallOptions) => Effect.Effect<unknown, unknown>
type AnyStreamMethod = (payload: unknown, options?: CallOptions) => Stream.Stream<unknown, unknown>
type AnyPromiseHandler = (payload: unknown, context: PromiseCallContext) => Promise<unknown> | AsyncIterable<unknown>

/** Consumes an Effect stream as an `AsyncIterable`, each pull going through `run` (signal and translation). */
const toAsyncIterable = <A>(
  stream: Stream.Stream<A, unknown>,
  run: Run,
  signal: AbortSignal | undefined,
): AsyncIterable<A> => ({
  async *[Symbol.asyncIterator]() {
    const scope = Scope.makeUnsafe()
    try {
      const pull = await run(Scope.provide(scope)(Stream.toPull(stream)), signal)
      const next = Pull.catchDone(pull, () => Effect.undefined)
      while (true) {
        const chunk = await run(next, signal)
        if (chunk === undefined) return
        yield* chunk
      }
    } finally {
      // Closing a scope needs no services, so this also works after the runtime is disposed.
      await Effect.runPromise(Scope.close(scope, Exit.void))
    }
  },
})

/** Maps each method of the Effect client to its Promise twin: one walk, no per-method code. */
const toPromiseClient = <C extends Contract.Contract>(
  contract: C,
  client: Node.Client<C>,
  run: Run,
): PromiseClient<C> => {
  const methods = client as unknown as Record<string, AnyEffectMethod | AnyStreamMethod>
  const promiseClient: Record<string, unknown> = {}
  for (const [name, method] of Object.entries(contract.methods)) {
    if (method._tag === "Unary") {
      const call = methods[name] as AnyEffectMethod
      promiseClient[name] = (payload: unknown, options?: PromiseCallOptions) =>
        run(call(payload, options), options?.signal)
    } else {
      const open = methods[name] as AnyStreamMethod
      promiseClient[name] = (payload: unknown, options?: PromiseCallOptions) =>
        toAsyncIterable(open(payload, options), run, options?.signal)
    }
  }
  return promiseClient as PromiseClient<C>
}

/** Maps each one-way sender of the Effect teller to a Promise one. */
const toPromiseTeller = <C extends Contract.Contract>(
  contract: C,
  teller: Node.Teller<C>,
  run: Run,
): PromiseTeller<C> => {
  const methods = teller as unknown as Record<string, AnyEffectMethod>
  const promiseTeller: Record<string, unknown> = {}
  for (const name of Object.keys(contract.methods)) {
    const tell = methods[name]!
    promiseTeller[name] = (payload: unknown, options?: PromiseCallOptions) =>
      run(tell(payload, options), options?.signal)
  }
  return promiseTeller as PromiseTeller<C>
}

/**
 * Maps Promise handlers to Effect handlers. A rejection goes to the error channel as is, so `Node` decides
 * between application error, `RpcError` code and `internal`. The signal is the one `Effect.tryPromise` aborts
 * when the handler fiber is interrupted (CANCEL, deadline, shutdown).
 */
const toEffectHandlers = <C extends Contract.Contract>(contract: C, handlers: PromiseHandlers<C>): Node.Handlers<C> => {
  const promiseHandlers = handlers as unknown as Record<string, AnyPromiseHandler | undefined>
  const effectHandlers: Record<string, unknown> = {}
  for (const [name, method] of Object.entries(contract.methods)) {
    const handler = promiseHandlers[name]
    // A missing handler is left missing: `Node.serve` reports it.
    if (handler === undefined) continue
    effectHandlers[name] =
      method._tag === "Unary"
        ? (payload: unknown, context: CallContext) =>
            Effect.tryPromise({
              try: async (signal) => handler(payload, promiseContext(context, signal)),
              catch: (error) => error,
            })
        : (payload: unknown, context: CallContext) =>
            Stream.suspend(() => {
              const controller = new AbortController()
              const iterable = handler(payload, promiseContext(context, controller.signal)) as AsyncIterable<unknown>
              return Stream.fromAsyncIterable(iterable, (error) => error).pipe(
                Stream.onExit((exit) => Effect.sync(() => (Exit.hasInterrupts(exit) ? controller.abort() : undefined))),
              )
            })
  }
  return effectHandlers as Node.Handlers<C>
}

/** The handler's context plus its signal; the traceparent stays lazy (it is a getter on the node's context). */
const promiseContext = (context: CallContext, signal: AbortSignal): PromiseCallContext => ({
  ...context,
  get traceparent() {
    return context.traceparent
  },
  signal,
})

// ---- constructors ------------------------------------------------------------------------------------------

/**
 * Wraps a runtime that provides a `Node` (built from any layers: ZeroMQ, memory transport, discovery...) in
 * the Promise facade, building the node now. The facade owns the runtime from here: `close()` disposes it.
 * Rejects with the layer's failure (the same instance), after disposing the runtime.
 *
 * @since 0.1.0
 */
export const fromRuntime = async <ER>(runtime: ManagedRuntime.ManagedRuntime<Node.Node, ER>): Promise<PromiseNode> => {
  let closed = false
  let closing: Promise<void> | undefined
  const run: Run = (effect, signal) => {
    if (closed) return Promise.reject(closedError())
    // Checked here because the runtime would start the call (and send it) before it sees the abort.
    if (signal?.aborted) return Promise.reject(abortError(signal))
    return runtime
      .runPromiseExit(effect, { signal })
      .then((exit) => (Exit.isSuccess(exit) ? exit.value : Promise.reject(toRejection(exit.cause, signal, closed))))
  }
  const close = (): Promise<void> => {
    closed = true
    closing ??= runtime.dispose()
    return closing
  }

  const node = await run(Node.Node.useSync((node) => node)).catch(async (error: unknown) => {
    await close()
    throw error
  })

  const serve = async <C extends Contract.Contract>(
    contract: C,
    handlers: PromiseHandlers<C>,
    options?: Node.AddressOptions,
  ): Promise<PromiseServing> => {
    // A child of the runtime's scope: `stop()` closes it alone, `close()` closes it with the runtime.
    const scope = await run(Scope.fork(runtime.scope, "sequential"))
    const stop = (): Promise<void> => Effect.runPromise(Scope.close(scope, Exit.void))
    try {
      await run(Scope.provide(scope)(node.serve(contract, toEffectHandlers(contract, handlers), options)))
    } catch (error) {
      await stop()
      throw error
    }
    return { stop, [Symbol.asyncDispose]: stop }
  }

  const topics: PromiseTopics = {
    publisher: async <A>(topic: Topic.Topic<A>, options?: Topic.PublisherOptions) => {
      // A child of the runtime's scope, like `serve`: `close()` releases this handle alone.
      const scope = await run(Scope.fork(runtime.scope, "sequential"))
      const release = (): Promise<void> => Effect.runPromise(Scope.close(scope, Exit.void))
      try {
        const publisher = await run(Scope.provide(scope)(node.topics.publisher(topic, options)))
        const handle: PromisePublisher<A> = {
          topic,
          id: publisher.id,
          epoch: publisher.epoch,
          publish: (value) => {
            const error = publisher.offer(value)
            if (error !== undefined) throw error
          },
          lastSeq: () => publisher.lastSeq(),
          close: release,
          [Symbol.asyncDispose]: release,
        }
        return handle
      } catch (error) {
        await release()
        throw error
      }
    },
    subscribe: (topic, options) => toAsyncIterable(node.topics.subscribe(topic, options), run, options?.signal),
    metrics: () => node.topics.metrics(),
  }

  const facade: PromiseNode = {
    id: node.id,
    endpoints: () => node.endpoints(),
    serve,
    client: (contract, target, options) => toPromiseClient(contract, node.client(contract, target, options), run),
    teller: (contract, target, options) => toPromiseTeller(contract, node.teller(contract, target, options), run),
    connect: (endpoint) => run(node.connect(endpoint)),
    remotes: () => node.remotes(),
    topics,
    ping: (target, options) => run(node.ping(target, { timeout: options?.timeoutMs }), options?.signal),
    drain: (options) => run(node.drain({ timeout: options?.timeoutMs })),
    watch: (target, options) => run(node.watch(target), options?.signal),
    peerChanges: () => toAsyncIterable(node.peerChanges, run, undefined),
    metrics: () => node.metrics(),
    close: (options) =>
      options?.drainTimeoutMs === undefined || closed
        ? close()
        : run(node.drain({ timeout: options.drainTimeoutMs })).then(close, close),
    [Symbol.asyncDispose]: close,
    runtime,
  }
  return facade
}

/**
 * Starts a node on a ZeroMQ transport (`Node.layerZmq`) behind the Promise facade: binds (default
 * `tcp://127.0.0.1:*`), connects to `options.peers`, and resolves once it is ready. Rejects with `RpcError`
 * `invalid_argument` for bad options or `unavailable` if an endpoint cannot be bound.
 *
 * @since 0.1.0
 */
export const start = (options: StartOptions = {}): Promise<PromiseNode> =>
  fromRuntime(
    ManagedRuntime.make(
      options.discovery === undefined
        ? Node.layerZmq(options)
        : Node.layerZmq(options).pipe(Layer.provide(options.discovery)),
    ),
  )

// ---- supervision and worker pools --------------------------------------------------------------------------

/**
 * A supervisor seen from Promise code (`Supervisor.SupervisorShape`). `stop()` (or `await using`) stops its
 * children in reverse order.
 *
 * @since 0.1.0
 */
export interface PromiseSupervisor extends AsyncDisposable {
  readonly id: string
  /** The children in start order. */
  readonly children: () => ReadonlyArray<Supervisor.ChildInfo>
  readonly counters: () => Supervisor.SupervisorCounters
  /** Its events for as long as the iteration runs (starting with up to the last 256). */
  readonly events: (options?: {
    readonly signal?: AbortSignal | undefined
  }) => AsyncIterable<Supervisor.SupervisorEvent>
  /** Resolves when the supervisor stops; rejects with `SupervisorError` `RestartIntensity` when it escalates. */
  readonly done: Promise<void>
  /** Adds and starts a child; resolves with its `Running.value`. Rejects with `SupervisorError`. */
  readonly startChild: (spec: ChildSpec.ChildSpec<unknown>) => Promise<unknown>
  /** Stops and removes a child. Rejects with `SupervisorError` `UnknownChild` or `Terminated`. */
  readonly terminateChild: (id: string) => Promise<void>
  /** Stops and starts a child now. Rejects with `SupervisorError` `UnknownChild` or `Terminated`. */
  readonly restartChild: (id: string) => Promise<void>
  /** Stops every child in reverse order. Idempotent. */
  readonly stop: () => Promise<void>
}

/**
 * A worker pool seen from Promise code (`WorkerPool.WorkerPoolShape`). `drain()` (or `await using`) stops it
 * gracefully.
 *
 * @since 0.1.0
 */
export interface PromisePool<C extends Contract.Contract> extends AsyncDisposable {
  readonly id: string
  /** A Promise client of the contract, routed among the pool's live workers. */
  readonly client: PromiseClient<C>
  readonly workers: () => ReadonlyArray<WorkerPool.WorkerInfo>
  readonly size: () => number
  /** Rejects with `WorkerPoolError` `InvalidSize` outside `[minSize, maxSize]`, or a `SupervisorError`. */
  readonly resize: (size: number) => Promise<void>
  readonly counters: () => Supervisor.SupervisorCounters
  /** The pool supervisor's events for as long as the iteration runs. */
  readonly events: (options?: {
    readonly signal?: AbortSignal | undefined
  }) => AsyncIterable<Supervisor.SupervisorEvent>
  /** Resolves when the pool stops; rejects with `SupervisorError` when its supervisor escalated. */
  readonly done: Promise<void>
  /** Stops taking calls, lets the calls in flight finish (up to `drainTimeout`), stops the workers. Idempotent. */
  readonly drain: () => Promise<void>
}

/** Runs an Effect that needs no services, translating its failure like the node's `run`. */
const runPlain = <A, E>(effect: Effect.Effect<A, E>, signal?: AbortSignal): Promise<A> =>
  signal?.aborted
    ? Promise.reject(abortError(signal))
    : Effect.runPromiseExit(effect, { signal }).then((exit) =>
        Exit.isSuccess(exit) ? exit.value : Promise.reject(toRejection(exit.cause, signal, false)),
      )

/** A promise that does not count as unhandled when nobody awaits it (a supervisor nobody waits on may escalate). */
const settled = <A>(promise: Promise<A>): Promise<A> => {
  promise.catch(() => undefined)
  return promise
}

/**
 * Starts a supervisor (`Supervisor.make`) whose children need no services: OS processes
 * (`ProcessChild.spec`), nested supervisors (`Supervisor.child`), `ChildSpec.make` with plain Effects. Rejects
 * with `SupervisorError` `StartFailed` when a child cannot start.
 *
 * @since 0.1.0
 */
export const supervise = async (spec: Supervisor.SupervisorSpec): Promise<PromiseSupervisor> => {
  const scope = Scope.makeUnsafe()
  const stop = (): Promise<void> => Effect.runPromise(Scope.close(scope, Exit.void))
  const supervisor = await runPlain(Scope.provide(scope)(Supervisor.make(spec))).catch(async (error: unknown) => {
    await stop()
    throw error
  })
  return {
    id: supervisor.id,
    children: () => supervisor.children(),
    counters: () => supervisor.counters(),
    events: (options) => toAsyncIterable(supervisor.events, runPlain as Run, options?.signal),
    done: settled(runPlain(supervisor.await)),
    startChild: (child) => runPlain(supervisor.startChild(child)),
    terminateChild: (id) => runPlain(supervisor.terminateChild(id)),
    restartChild: (id) => runPlain(supervisor.restartChild(id)),
    stop,
    [Symbol.asyncDispose]: stop,
  }
}

/**
 * In-process workers for `startPool`: `make()` builds one worker's handlers (each worker gets its own, so each
 * may keep its own state).
 *
 * @since 0.1.0
 */
export const inProcessWorkers = <C extends Contract.Contract>(
  contract: C,
  make: () => PromiseHandlers<C> | Promise<PromiseHandlers<C>>,
): WorkerPool.Workers<C> =>
  WorkerPool.inProcess(
    contract,
    Effect.map(Effect.tryPromise({ try: async () => make(), catch: (error) => error }), (handlers) =>
      toEffectHandlers(contract, handlers),
    ),
  )

/**
 * Starts a worker pool on `node` (`WorkerPool.makeOn`): workers from `WorkerPool.processes(...)` or
 * `inProcessWorkers(...)`. Rejects with `SupervisorError` `StartFailed` or `WorkerPoolError` `InvalidSize`.
 * Closing the node drains the pool too.
 *
 * @since 0.1.0
 */
export const startPool = async <C extends Contract.Contract>(
  node: PromiseNode,
  contract: C,
  workers: WorkerPool.Workers<C>,
  options?: WorkerPool.WorkerPoolOptions,
): Promise<PromisePool<C>> => {
  const runtime = node.runtime
  const run: Run = (effect, signal) =>
    signal?.aborted
      ? Promise.reject(abortError(signal))
      : runtime
          .runPromiseExit(effect, { signal })
          .then((exit) => (Exit.isSuccess(exit) ? exit.value : Promise.reject(toRejection(exit.cause, signal, false))))
  // A child of the node's scope, as for `serve`: draining the pool closes it alone.
  const scope = await run(Scope.fork(runtime.scope, "sequential"))
  const close = (): Promise<void> => Effect.runPromise(Scope.close(scope, Exit.void))
  const pool = await run(Scope.provide(scope)(WorkerPool.make(contract, workers, options))).catch(
    async (error: unknown) => {
      await close()
      throw error
    },
  )
  const drain = (): Promise<void> => run(pool.drain).then(close)
  return {
    id: pool.id,
    client: toPromiseClient(contract, pool.client, run),
    workers: () => pool.workers(),
    size: () => pool.size(),
    resize: (size) => run(pool.resize(size)),
    counters: () => pool.supervisor.counters(),
    events: (options) => toAsyncIterable(pool.events, run, options?.signal),
    done: settled(run(pool.await)),
    drain,
    [Symbol.asyncDispose]: drain,
  }
}

/**
 * The main of a worker process written with async handlers (`WorkerProcess.serve`): serves `contract`, reports
 * ready to its parent, drains and exits on SIGTERM. Exits the process with code 1 if the node cannot start.
 *
 * @example
 * // worker.ts
 * serveWorker(Calculator, { add: async ({ a, b }) => a + b })
 *
 * @since 0.1.0
 */
export const serveWorker = <C extends Contract.Contract>(
  contract: C,
  handlers: PromiseHandlers<C>,
  options?: WorkerProcess.WorkerProcessOptions,
): void => WorkerProcess.runMain(WorkerProcess.serve(contract, toEffectHandlers(contract, handlers), options))
