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
import type * as Contract from "./Contract.ts"
import type { Discovery } from "./Discovery.ts"
import type { NodeMetrics } from "./internal/nodeMetrics.ts"
import * as Node from "./Node.ts"
import type * as NodeOptions from "./NodeOptions.ts"
import { RpcError } from "./RpcError.ts"

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
  /** A snapshot of this node's counters. */
  readonly metrics: () => NodeMetrics
  /** Disposes the runtime: stops serving, fails calls in flight with `unavailable`, closes sockets. Idempotent. */
  readonly close: () => Promise<void>
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
              try: async (signal) => handler(payload, { ...context, signal }),
              catch: (error) => error,
            })
        : (payload: unknown, context: CallContext) =>
            Stream.suspend(() => {
              const controller = new AbortController()
              const iterable = handler(payload, { ...context, signal: controller.signal }) as AsyncIterable<unknown>
              return Stream.fromAsyncIterable(iterable, (error) => error).pipe(
                Stream.onExit((exit) => Effect.sync(() => (Exit.hasInterrupts(exit) ? controller.abort() : undefined))),
              )
            })
  }
  return effectHandlers as Node.Handlers<C>
}

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

  const facade: PromiseNode = {
    id: node.id,
    endpoints: () => node.endpoints(),
    serve,
    client: (contract, target, options) => toPromiseClient(contract, node.client(contract, target, options), run),
    teller: (contract, target, options) => toPromiseTeller(contract, node.teller(contract, target, options), run),
    connect: (endpoint) => run(node.connect(endpoint)),
    remotes: () => node.remotes(),
    metrics: () => node.metrics(),
    close,
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
