/**
 * Worker pools: one contract served by N supervised workers, called by service name through a node that
 * routes each call to a live worker.
 *
 * - Workers are OS processes (`processes`: each runs `WorkerProcess.serve` and a zactor node; the pool's node
 *   connects to it once it is ready), or in-process handler sets (`inProcess`: served at the contract's
 *   address on the pool's node, each worker built by its own `make`). Other nodes serving the contract that
 *   the node is connected to (e.g. found through discovery) take calls too, and show in `workers()` as
 *   `remote`; the pool does not restart them.
 * - A supervisor (one-for-one) restarts a worker that dies. A process worker's death is seen through the
 *   child process `exit` event; the pool drops the node's connection to it at once, so no call is routed to
 *   it after that and its pending calls fail `unavailable` at once: retry-safe calls (idempotent methods,
 *   idempotency keys, at-least-once delivery) are then retried by the caller's delivery loop on another worker.
 * - Routing: the node's (least outstanding calls among live instances; see `Node.route`), or the pool's own
 *   least-in-flight choice for in-process workers.
 * - Size between `minSize` and `maxSize`: set by hand (`resize`), or by the load (`autoscale`: grow by one
 *   worker while the calls in flight per worker stay high, shrink by one while they stay low). A worker
 *   removed by a shrink is retired gracefully: no new call is routed to it, the calls in flight to it finish
 *   (up to `drainTimeout`), then it stops. `drain` does that for every worker and stops the pool.
 * - Under a supervisor: `childSpec` makes the pool a child, so its escalation reaches the parent.
 *
 * @since 0.1.0
 */
import { Deferred, Duration, Effect, Exit, Scope, Semaphore, type Stream } from "effect"
import * as ChildSpec from "./ChildSpec.ts"
import type * as Contract from "./Contract.ts"
import * as InProcess from "./internal/inProcessWorkers.ts"
import * as Autoscaler from "./internal/poolAutoscaler.ts"
import * as Spares from "./internal/spareProcesses.ts"
import * as Node from "./Node.ts"
import * as ProcessChild from "./ProcessChild.ts"
import * as Supervisor from "./Supervisor.ts"
import { type SupervisorError, WorkerPoolError } from "./SupervisorError.ts"

// ---- models --------------------------------------------------------------------------------------------------

/**
 * Where a pool's workers come from (`processes` or `inProcess`).
 *
 * @since 0.1.0
 */
export type Workers<C extends Contract.Contract, R = never> =
  | { readonly _tag: "Processes"; readonly options: ProcessChild.ProcessOptions }
  | { readonly _tag: "InProcess"; readonly make: Effect.Effect<Node.Handlers<C, R>, unknown, Scope.Scope | R> }

/**
 * Options of a pool. The supervisor's options apply to the pool's supervisor (always one-for-one).
 *
 * @since 0.1.0
 */
export interface WorkerPoolOptions extends Omit<Supervisor.SupervisorOptions, "strategy" | "maxRestarts"> {
  /** Workers started with the pool. Default `minSize`. */
  readonly size?: number | undefined
  /** Default 1. */
  readonly minSize?: number | undefined
  /** Default the larger of `size` and `minSize`. */
  readonly maxSize?: number | undefined
  /** Restarts allowed within `period` before the pool escalates. Default 3 per worker of `maxSize`. */
  readonly maxRestarts?: number | undefined
  /** How long a retired worker may finish its calls in flight before it is stopped anyway. Default 5 s. */
  readonly drainTimeout?: Duration.Input | undefined
  /**
   * Process workers only: processes started ahead and kept ready (serving, not routed to). A restart or a grow
   * takes one and starts a replacement in the background, so a dead worker is replaced in the time of a connect
   * (a few ms) rather than of a process start (100s of ms, more on a loaded machine). Each costs an idle
   * process. Default 0.
   */
  readonly spares?: number | undefined
  /** Sizes the pool by its load within `[minSize, maxSize]` (see `AutoscaleOptions`). Default off. */
  readonly autoscale?: AutoscaleOptions | true | undefined
}

/**
 * Load-based sizing. Every `sampleInterval` the pool adds up the calls in flight to its live workers (for each,
 * the larger of the calls in flight from the pool's node and the requests it last reported serving, so callers
 * on other nodes count too). It grows by one worker when, over the last `scaleUpAfter`, that averaged more than
 * `scaleUpAbove` per worker; it shrinks by one (the newest worker, drained first) when, over the last
 * `scaleDownAfter`, it averaged at most `scaleDownBelow` per worker counted on one worker fewer. Never below
 * `minSize` (at least 1) nor above `maxSize`. After each change the next needs a whole window of samples again,
 * so a pool grows at most one worker per `scaleUpAfter` (plus a worker's start) and shrinks at most one per
 * `scaleDownAfter` (plus its drain).
 *
 * @since 0.1.0
 */
export interface AutoscaleOptions {
  /**
   * Grow when the calls in flight per worker averaged above this. Default 2: a worker whose handlers use the
   * CPU queues calls beyond one; raise it for handlers that mostly wait on I/O.
   */
  readonly scaleUpAbove?: number | undefined
  /** How long the load must stay above `scaleUpAbove` before a grow. Default 1 s. */
  readonly scaleUpAfter?: Duration.Input | undefined
  /**
   * Shrink when the calls in flight averaged at most this per worker of a pool one worker smaller. Default half
   * of `scaleUpAbove` (must be below it: a shrink must not itself call for a grow). 0: only when idle.
   */
  readonly scaleDownBelow?: number | undefined
  /** How long the load must stay that low before a shrink. Default 30 s. */
  readonly scaleDownAfter?: Duration.Input | undefined
  /** How often the load is sampled. Default 100 ms. */
  readonly sampleInterval?: Duration.Input | undefined
}

/**
 * The defaults of `WorkerPoolOptions`.
 *
 * @since 0.1.0
 */
export const defaults = Object.freeze({
  minSize: 1,
  drainTimeoutMs: 5_000,
  restartsPerWorker: 3,
  autoscale: Object.freeze({ scaleUpAbove: 2, scaleUpAfterMs: 1_000, scaleDownAfterMs: 30_000, sampleIntervalMs: 100 }),
})

/**
 * A snapshot of one worker.
 *
 * @since 0.1.0
 */
export interface WorkerInfo {
  readonly id: string
  readonly kind: "process" | "in-process" | "remote"
  /** Supervision status: `stopping` while it drains (retired by a shrink, or a member node draining); `running` for connected remote workers. */
  readonly status: Supervisor.ChildStatus
  readonly restarts: number
  readonly pid: number | undefined
  readonly nodeId: string | undefined
  readonly endpoint: string | undefined
  /** Calls in flight to it (from the pool's node for process and remote workers). */
  readonly outstanding: number
}

/**
 * What a running process worker exposes as its supervised value.
 *
 * @since 0.1.0
 */
export interface ProcessWorker {
  readonly pid: number
  readonly nodeId: string
  readonly endpoint: string
  /** From spawn to connected and welcomed by the pool's node, in ms. */
  readonly startMs: number
}

/**
 * A running pool.
 *
 * @since 0.1.0
 */
export interface WorkerPoolShape<C extends Contract.Contract> {
  readonly id: string
  /** A client of the contract on the pool's node, routed among the live workers. */
  readonly client: Node.Client<C>
  /** Managed workers in start order, then remote ones. */
  readonly workers: () => ReadonlyArray<WorkerInfo>
  /** The managed workers wanted now. */
  readonly size: () => number
  /**
   * Starts workers, or retires the newest ones (drained: calls in flight to them finish first), to reach `size`.
   * With `autoscale` on, the autoscaler goes on from the new size. Fails `InvalidSize` outside
   * `[minSize, maxSize]`, `Stopped` once drained.
   */
  readonly resize: (size: number) => Effect.Effect<void, WorkerPoolError | SupervisorError>
  /** The supervisor's events (worker started, exited, restarted, escalated). */
  readonly events: Stream.Stream<Supervisor.SupervisorEvent>
  readonly supervisor: Supervisor.SupervisorShape
  /** Stops taking new calls, lets those in flight finish (up to `drainTimeout`), stops every worker. */
  readonly drain: Effect.Effect<void>
  /** Completes when the pool has stopped; fails when its supervisor escalated. */
  readonly await: Effect.Effect<void, SupervisorError>
}

// ---- constructors --------------------------------------------------------------------------------------------

/**
 * Workers that are OS processes running `options.entry` (which should call `WorkerProcess.serve` for the
 * pool's contract). Each gets `ZACTOR_WORKER_ID` in its environment.
 *
 * @since 0.1.0
 */
export const processes = (options: ProcessChild.ProcessOptions): Workers<never, never> => ({
  _tag: "Processes",
  options,
})

/**
 * In-process workers, each built by `make` in a scope of its own (closed when the worker stops or crashes).
 *
 * @since 0.1.0
 */
export const inProcess = <C extends Contract.Contract, R = never>(
  _contract: C,
  make: Effect.Effect<Node.Handlers<C, R>, unknown, Scope.Scope | R>,
): Workers<C, R> => ({ _tag: "InProcess", make })

/**
 * Starts a pool on `node`: `size` workers, each up (a process connected and welcomed) before the next; then
 * they are supervised until the scope closes (which drains the pool). Fails with `SupervisorError`
 * `StartFailed` if a worker cannot start, `WorkerPoolError` `InvalidSize` for bad sizes.
 *
 * @example
 * const pool = yield* WorkerPool.makeOn(node, Calculator, WorkerPool.processes({ entry: "worker.mjs" }), {
 *   size: 3,
 * })
 * const sum = yield* pool.client.add({ a: 1, b: 2 })
 *
 * @since 0.1.0
 */
export const makeOn = <C extends Contract.Contract, R = never>(
  node: Node.NodeShape,
  contract: C,
  workers: Workers<C, R>,
  options: WorkerPoolOptions = {},
): Effect.Effect<WorkerPoolShape<C>, SupervisorError | WorkerPoolError, Scope.Scope | R> =>
  Effect.gen(function* () {
    const id = options.id ?? `${contract.name}-pool`
    const minSize = options.minSize ?? defaults.minSize
    const initial = options.size ?? minSize
    const maxSize = options.maxSize ?? Math.max(initial, minSize)
    const invalid = (message: string) => new WorkerPoolError({ reason: "InvalidSize", pool: id, message })
    if (!Number.isInteger(minSize) || minSize < 0 || !Number.isInteger(maxSize) || maxSize < Math.max(1, minSize)) {
      return yield* invalid(`pool ${id}: need integers 0 <= minSize <= maxSize, maxSize >= 1`)
    }
    if (!Number.isInteger(initial) || initial < minSize || initial > maxSize) {
      return yield* invalid(`pool ${id}: size ${initial} outside [${minSize}, ${maxSize}]`)
    }
    const drainMs = drainTimeoutMs(options)
    const autoscale = options.autoscale === undefined ? undefined : resolveAutoscale(options.autoscale)
    if (typeof autoscale === "string") return yield* invalid(`pool ${id}: ${autoscale}`)
    if (autoscale !== undefined && minSize < 1) return yield* invalid(`pool ${id}: autoscale needs minSize >= 1`)
    const inProcess = workers._tag === "InProcess" ? new InProcess.Workers(id, contract) : undefined
    if (inProcess !== undefined) yield* node.serve(contract, inProcess.handlers() as Node.Handlers<C, R>)
    const spareCount = workers._tag === "Processes" ? (options.spares ?? 0) : 0
    const spares =
      workers._tag === "Processes" && spareCount > 0
        ? new Spares.Spares(
            spareCount,
            (n) =>
              ProcessChild.start({
                ...workers.options,
                env: { ...workers.options.env, ZACTOR_WORKER_ID: `${id}-spare-${n}` },
              }),
            yield* Scope.fork(yield* Effect.scope, "parallel"),
          )
        : undefined

    let next = 0
    const workerSpec = (): ChildSpec.ChildSpec<unknown, R> => {
      const workerId = `${id}-${++next}`
      const childOptions = { restart: "permanent" as const, shutdownTimeout: options.drainTimeout ?? drainMs }
      if (workers._tag === "Processes") {
        const spec = ProcessChild.spec(workerId, {
          ...workers.options,
          env: { ...workers.options.env, ZACTOR_WORKER_ID: workerId },
        })
        // The drain happens before the process is asked to stop: give the stop both bounds.
        return {
          ...spec,
          start: startProcess(node, contract, spec.start, spares),
          shutdownTimeoutMs: spec.shutdownTimeoutMs + drainMs,
        }
      }
      return ChildSpec.make(workerId, startInProcess(inProcess!, workerId, workers.make, drainMs), childOptions)
    }

    const supervisor = yield* Supervisor.make<R>({
      ...options,
      id,
      strategy: "one-for-one",
      maxRestarts: options.maxRestarts ?? defaults.restartsPerWorker * maxSize,
      children: Array.from({ length: initial }, workerSpec),
    })
    if (spares !== undefined) yield* spares.fill()
    let size = initial
    let drained = false
    // Resizes, by hand or by the autoscaler, apply one at a time.
    const sizing = yield* Semaphore.make(1)

    const drain = Effect.suspend(() => {
      if (drained) return supervisor.stop
      drained = true
      if (inProcess !== undefined) inProcess.closed = true
      // Every worker stops taking calls at once; then each finishes its calls in flight and stops.
      const endpoints = supervisor
        .children()
        .map((c) => (c.value as ProcessWorker | undefined)?.endpoint)
        .filter((e): e is string => e !== undefined)
      return Effect.andThen(
        Effect.forEach(endpoints, (endpoint) => node.disconnect(endpoint, { drain: drainMs }), {
          concurrency: "unbounded",
          discard: true,
        }),
        Effect.andThen(spares?.close() ?? Effect.void, supervisor.stop),
      )
    })
    // Closing the pool's scope drains it; the supervisor's own finalizer then finds nothing left to stop.
    yield* Effect.addFinalizer(() => drain)

    // Workers added by `resize` start with the services the pool started with.
    const context = yield* Effect.context<R>()
    /** Workers being retired: `workers()` shows them `stopping` while they drain. */
    const retiring = new Set<string>()
    /** Retires the newest worker: no new calls to it, those in flight finish (bounded), then it stops. */
    const retireNewest = Effect.suspend(() => {
      const newest = supervisor.children()[supervisor.children().length - 1]!
      const endpoint = (newest.value as ProcessWorker | undefined)?.endpoint
      // An in-process worker drains in its own finalizer; a process worker's connection drains here, before the
      // process is asked to stop (its finalizer then finds the connection gone).
      const viaConnection = inProcess === undefined && endpoint !== undefined
      retiring.add(newest.id)
      return Effect.andThen(
        viaConnection ? node.disconnect(endpoint, { drain: drainMs }) : Effect.void,
        supervisor.terminateChild(newest.id),
      ).pipe(Effect.ensuring(Effect.sync(() => retiring.delete(newest.id))))
    })
    const window = autoscale === undefined ? undefined : new Autoscaler.LoadWindow(autoscale, performance.now())
    const resize = (target: number): Effect.Effect<void, WorkerPoolError | SupervisorError> =>
      sizing.withPermit(
        Effect.gen(function* () {
          if (drained) return yield* new WorkerPoolError({ reason: "Stopped", pool: id, message: `pool ${id} drained` })
          if (!Number.isInteger(target) || target < minSize || target > maxSize) {
            return yield* invalid(`pool ${id}: size ${target} outside [${minSize}, ${maxSize}]`)
          }
          while (size < target) {
            yield* supervisor.startChild(workerSpec()).pipe(Effect.provideContext(context))
            size++
          }
          while (size > target) {
            // Wanted no more from now on, while it drains.
            size--
            yield* retireNewest
          }
        }).pipe(Effect.ensuring(Effect.sync(() => window?.reset(performance.now())))),
      )

    const workersNow = (): ReadonlyArray<WorkerInfo> => {
      const remotes = node.remotes()
      const managed = new Set<string>()
      const list: Array<WorkerInfo> = supervisor.children().map((running) => {
        // A worker being retired is draining, not taking calls: `stopping`, as the supervisor shows it after.
        const child =
          retiring.has(running.id) && running.status === "running"
            ? { ...running, status: "stopping" as const }
            : running
        if (inProcess !== undefined) {
          const worker = child.value as InProcess.Worker | undefined
          return info(child, "in-process", undefined, undefined, undefined, worker?.inflight ?? 0)
        }
        const worker = child.value as ProcessWorker | undefined
        if (worker !== undefined) managed.add(worker.endpoint)
        const outstanding = remotes.find((r) => r.endpoint === worker?.endpoint)?.outstanding ?? 0
        return info(child, "process", worker?.pid, worker?.nodeId, worker?.endpoint, outstanding)
      })
      for (const remote of remotes) {
        // Its own endpoint shows when in-process workers are called through it: that is not another worker.
        if (managed.has(remote.endpoint) || remote.info?.id === node.id) continue
        if (remote.info?.services.includes(contract.name) !== true) continue
        list.push({
          id: remote.info.id,
          kind: "remote",
          // A member node draining before it stops (`NodeShape.drain`) takes no new calls.
          status: remote.info.draining === true ? "stopping" : "running",
          restarts: 0,
          pid: undefined,
          nodeId: remote.info.id,
          endpoint: remote.endpoint,
          outstanding: remote.outstanding,
        })
      }
      return list
    }

    if (autoscale !== undefined && window !== undefined) {
      /** The live workers and the calls in flight to them (see `AutoscaleOptions`). */
      const load = () => {
        const byEndpoint = new Map(node.remotes().map((r) => [r.endpoint, r]))
        let workers = 0
        let inflight = 0
        for (const worker of workersNow()) {
          const remote = worker.endpoint === undefined ? undefined : byEndpoint.get(worker.endpoint)
          if (worker.status !== "running" || remote?.liveness.state === "dead") continue
          workers++
          inflight += Math.max(worker.outstanding, remote?.liveness.load?.inflight ?? 0)
        }
        return { workers, inflight }
      }
      const step = Effect.suspend(() => {
        if (drained) return Effect.void
        const now = performance.now()
        const { workers, inflight } = load()
        window.record(now, inflight)
        const decision = window.decide(now, size, workers, minSize, maxSize)
        if (decision === undefined) return Effect.void
        return resize(decision === "grow" ? size + 1 : size - 1).pipe(
          Effect.catch((error) => Effect.logWarning(`pool ${id}: autoscaling to ${decision} failed`, error)),
        )
      })
      // Forked after the drain finalizer was added: interrupted before the pool drains.
      yield* Effect.forkScoped(Effect.forever(Effect.andThen(Effect.sleep(autoscale.sampleIntervalMs), step)))
    }

    const shape: WorkerPoolShape<C> = {
      id,
      // In-process workers are served by this node itself: its client reaches them through its own endpoint.
      client:
        inProcess !== undefined && node.endpoints().length > 0
          ? node.client(contract, { endpoint: node.endpoints()[0]! })
          : node.client(contract),
      workers: workersNow,
      size: () => size,
      resize,
      events: supervisor.events,
      supervisor,
      drain,
      await: supervisor.await,
    }
    return shape
  })

/**
 * `makeOn` the `Node` service in context.
 *
 * @since 0.1.0
 */
export const make = <C extends Contract.Contract, R = never>(
  contract: C,
  workers: Workers<C, R>,
  options?: WorkerPoolOptions,
): Effect.Effect<WorkerPoolShape<C>, SupervisorError | WorkerPoolError, Scope.Scope | Node.Node | R> =>
  Node.Node.use((node) => makeOn(node, contract, workers, options))

/**
 * A pool as the child of a supervisor (a supervision tree): started like `makeOn` in the child's scope, stopped
 * by draining it. When the pool's own restart intensity is exceeded its end is `Failed` with that
 * `SupervisorError`, so the parent applies its strategy (a fresh pool) and counts it against its own intensity,
 * escalating in turn when that is exceeded. The pool's id defaults to the child's `id`; `value` is the running
 * pool. The default shutdown timeout covers the drain plus every worker's stop, one after the other.
 *
 * @example
 * const app = yield* Supervisor.make({
 *   children: [WorkerPool.childSpec("calculators", node, Calculator, WorkerPool.processes({ entry }), { size: 3 })],
 * })
 *
 * @since 0.1.0
 */
export const childSpec = <C extends Contract.Contract, R = never>(
  id: string,
  node: Node.NodeShape,
  contract: C,
  workers: Workers<C, R>,
  options: WorkerPoolOptions = {},
  childOptions?: ChildSpec.ChildOptions,
): ChildSpec.ChildSpec<WorkerPoolShape<C>, R> => {
  const drainMs = drainTimeoutMs(options)
  const workerStopMs =
    workers._tag === "Processes" ? ProcessChild.spec(id, workers.options).shutdownTimeoutMs + drainMs : drainMs
  const maxSize = options.maxSize ?? Math.max(options.size ?? 0, options.minSize ?? defaults.minSize)
  const start = Effect.map(makeOn(node, contract, workers, { ...options, id: options.id ?? id }), (pool) => ({
    value: pool,
    exit: Effect.map(Effect.exit(pool.await), ChildSpec.reasonOf),
  }))
  const spec = ChildSpec.make(id, start, childOptions)
  return childOptions?.shutdownTimeout === undefined
    ? { ...spec, shutdownTimeoutMs: drainMs + maxSize * workerStopMs }
    : spec
}

// ---- options -------------------------------------------------------------------------------------------------

const drainTimeoutMs = (options: WorkerPoolOptions): number =>
  options.drainTimeout === undefined
    ? defaults.drainTimeoutMs
    : Duration.toMillis(Duration.fromInputUnsafe(options.drainTimeout))

/** The autoscaling rules with defaults applied, or what is wrong with them. */
const resolveAutoscale = (
  options: AutoscaleOptions | true,
): (Autoscaler.AutoscaleConfig & { readonly sampleIntervalMs: number }) | string => {
  const given = options === true ? {} : options
  const ms = (input: Duration.Input | undefined, fallback: number) =>
    input === undefined ? fallback : Duration.toMillis(Duration.fromInputUnsafe(input))
  const scaleUpAbove = given.scaleUpAbove ?? defaults.autoscale.scaleUpAbove
  const config = {
    scaleUpAbove,
    scaleUpAfterMs: ms(given.scaleUpAfter, defaults.autoscale.scaleUpAfterMs),
    scaleDownBelow: given.scaleDownBelow ?? scaleUpAbove / 2,
    scaleDownAfterMs: ms(given.scaleDownAfter, defaults.autoscale.scaleDownAfterMs),
    sampleIntervalMs: ms(given.sampleInterval, defaults.autoscale.sampleIntervalMs),
  }
  if (!(config.scaleUpAbove > 0)) return "autoscale.scaleUpAbove must be > 0"
  if (!(config.scaleDownBelow >= 0 && config.scaleDownBelow < config.scaleUpAbove)) {
    return "autoscale.scaleDownBelow must be >= 0 and below scaleUpAbove"
  }
  if (!(config.sampleIntervalMs > 0 && Number.isFinite(config.sampleIntervalMs))) {
    return "autoscale.sampleInterval must be a finite duration > 0"
  }
  if (!(config.scaleUpAfterMs >= 0 && config.scaleDownAfterMs >= 0)) return "autoscale windows must be >= 0"
  return config
}

// ---- workers -------------------------------------------------------------------------------------------------

const info = (
  child: Supervisor.ChildInfo,
  kind: WorkerInfo["kind"],
  pid: number | undefined,
  nodeId: string | undefined,
  endpoint: string | undefined,
  outstanding: number,
): WorkerInfo => ({
  id: child.id,
  kind,
  status: child.status,
  restarts: child.restarts,
  pid,
  nodeId,
  endpoint,
  outstanding,
})

/**
 * A process worker's start: the process up, then the pool's node connected and welcomed (so it is routable),
 * then the stop order set: drain on the node first, then stop the process (finalizers run in reverse).
 */
const startProcess = (
  node: Node.NodeShape,
  contract: Contract.Contract,
  start: Effect.Effect<ChildSpec.Running<ProcessChild.ProcessHandle>, unknown, Scope.Scope>,
  spares: Spares.Spares | undefined,
): Effect.Effect<ChildSpec.Running<ProcessWorker>, unknown, Scope.Scope> =>
  Effect.gen(function* () {
    const spawnedAt = performance.now()
    const spare = spares?.take()
    // A spare's process belongs to this worker from here: closing the worker's scope stops it.
    if (spare !== undefined) yield* Effect.addFinalizer(() => Scope.close(spare.scope, Exit.void))
    const running = spare?.running ?? (yield* start)
    if (spares !== undefined) yield* spares.fill()
    const { ready, pid } = running.value
    const endpoint = ready.endpoints[0]
    if (endpoint === undefined) return yield* Effect.fail(new Error(`worker ${pid} reported no endpoint`))
    const remote = yield* node.connect(endpoint)
    if (remote.info?.services.includes(contract.name) !== true) {
      return yield* Effect.fail(new Error(`worker ${pid} at ${endpoint} does not serve ${contract.name}`))
    }
    yield* Effect.addFinalizer(() => node.disconnect(endpoint, { drain: Duration.zero }))
    return {
      value: { pid, nodeId: ready.nodeId, endpoint, startMs: performance.now() - spawnedAt },
      // On its death, the node drops the connection before anything else happens: no call is routed there
      // from now on, and its pending calls fail `unavailable` at once (to be retried elsewhere).
      exit: Effect.tap(running.exit, () => node.disconnect(endpoint)),
    }
  })

/** An in-process worker's start: its handlers built in its scope, in the rotation until the scope closes. */
const startInProcess = <C extends Contract.Contract, R>(
  workers: InProcess.Workers,
  id: string,
  make: Effect.Effect<Node.Handlers<C, R>, unknown, Scope.Scope | R>,
  drainMs: number,
): Effect.Effect<ChildSpec.Running<InProcess.Worker>, unknown, Scope.Scope | R> =>
  Effect.gen(function* () {
    const handlers = yield* make
    const worker: InProcess.Worker = {
      id,
      handlers: handlers as unknown as InProcess.Worker["handlers"],
      inflight: 0,
      draining: false,
      crashed: yield* Deferred.make<ChildSpec.ExitReason>(),
    }
    // Added last, run first: stop routing to it and let its calls finish before its resources go.
    yield* Effect.addFinalizer(() => workers.retire(worker, drainMs))
    workers.add(worker)
    return { value: worker, exit: Deferred.await(worker.crashed) }
  })
