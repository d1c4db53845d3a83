/**
 * The worker's side of a process child (`ProcessChild`): the main of a Node.js process that runs a zactor node,
 * serves what it is given, tells its parent it is ready (node id and endpoints, over the IPC channel), and on
 * SIGTERM, SIGINT or a `zactor/stop` message drains and exits (`NodeShape.drain`): peers are told to send it
 * nothing new, calls in flight finish (up to `drainTimeout`), and calls that still arrive are refused with
 * `unavailable`, which retry-safe callers retry on another instance. If the
 * parent goes away (the IPC channel closes) it exits at once.
 *
 * The node binds only after everything is served, so a caller can never reach a restarted worker before it
 * serves (a `not_found` answer would not be retried).
 *
 * @example
 * // worker.ts, bundled to worker.mjs and run by ProcessChild.spec / WorkerPool.processes
 * WorkerProcess.runMain(WorkerProcess.serve(Calculator, { add: ({ a, b }) => Effect.succeed(a + b) }))
 *
 * @since 0.1.0
 */
import type { TransportError, TransportOptions } from "@zactor/transport"
import { Deferred, type Duration, Effect, type Scope } from "effect"
import type * as Contract from "./Contract.ts"
import * as Node from "./Node.ts"
import type * as NodeOptions from "./NodeOptions.ts"
import type { ReadyMessage } from "./ProcessChild.ts"
import { RpcError } from "./RpcError.ts"

/**
 * Options of a worker process: its node's and its transport's, plus the drain bound.
 *
 * @since 0.1.0
 */
export interface WorkerProcessOptions extends NodeOptions.NodeOptions {
  readonly transport?: TransportOptions.TransportOptions | undefined
  /** How long a stopping worker waits for the calls it serves to finish. Default 5 s. */
  readonly drainTimeout?: Duration.Input | undefined
}

/**
 * The defaults of `WorkerProcessOptions` (the node's are `NodeOptions.defaults`).
 *
 * @since 0.1.0
 */
export const defaults = Object.freeze({ drainTimeoutMs: 5_000 })

/** Why the worker stops. */
type StopReason = "signal" | "message" | "orphaned"

/** Resolves on the first stop request; the listeners go when the scope closes. */
const stopRequested: Effect.Effect<Deferred.Deferred<StopReason>, never, Scope.Scope> = Effect.acquireRelease(
  Effect.sync(() => {
    const stop = Deferred.makeUnsafe<StopReason>()
    const onSignal = () => Deferred.doneUnsafe(stop, Effect.succeed("signal"))
    const onMessage = (message: unknown) => {
      if (typeof message === "object" && message !== null && (message as { type?: unknown }).type === "zactor/stop") {
        Deferred.doneUnsafe(stop, Effect.succeed("message"))
      }
    }
    const onDisconnect = () => Deferred.doneUnsafe(stop, Effect.succeed("orphaned"))
    process.on("SIGTERM", onSignal)
    process.on("SIGINT", onSignal)
    process.on("message", onMessage)
    process.on("disconnect", onDisconnect)
    const remove = () => {
      process.off("SIGTERM", onSignal)
      process.off("SIGINT", onSignal)
      process.off("message", onMessage)
      process.off("disconnect", onDisconnect)
    }
    return { stop, remove }
  }),
  ({ remove }) => Effect.sync(remove),
).pipe(Effect.map(({ stop }) => stop))

/**
 * Runs a worker: builds a node on ZeroMQ, runs `setup` with it (serve contracts, spawn actors), binds, reports
 * ready to the parent, and waits for a stop request; then drains and returns (the node closes with it).
 * Fails with the node's or transport's error if it cannot start.
 *
 * @since 0.1.0
 */
export const run = <E, R>(
  setup: (node: Node.NodeShape) => Effect.Effect<void, E, R>,
  options: WorkerProcessOptions = {},
): Effect.Effect<void, E | RpcError | TransportError, Exclude<R, Scope.Scope>> =>
  Effect.scoped(
    Effect.gen(function* () {
      const stop = yield* stopRequested
      const node = yield* Node.makeZmq({ ...options, bind: [] })
      yield* setup(node)
      for (const endpoint of options.bind ?? ["tcp://127.0.0.1:*"]) {
        yield* node.transport
          .bind(endpoint)
          .pipe(
            Effect.mapError(
              (error) => new RpcError({ code: "unavailable", message: `cannot bind ${endpoint}: ${error.message}` }),
            ),
          )
      }
      const ready: ReadyMessage = {
        type: "zactor/ready",
        pid: process.pid,
        nodeId: node.id,
        endpoints: node.endpoints(),
      }
      process.send?.(ready)
      const reason = yield* Deferred.await(stop)
      if (reason === "orphaned") return
      yield* node.drain({ timeout: options.drainTimeout ?? defaults.drainTimeoutMs })
    }),
  )

/**
 * `run` with one contract served by `handlers`: the usual worker.
 *
 * @since 0.1.0
 */
export const serve = <C extends Contract.Contract, R = never>(
  contract: C,
  handlers: Node.Handlers<C, R>,
  options?: WorkerProcessOptions,
): Effect.Effect<void, RpcError | TransportError, R> => run((node) => node.serve(contract, handlers), options)

/**
 * Runs `effect` as the process's main: exits with code 0 when it completes, 1 (after printing the failure)
 * when it fails or dies, once ZeroMQ has delivered what was sent (within 2 s).
 *
 * @since 0.1.0
 */
export const runMain = <E>(effect: Effect.Effect<void, E>): void => {
  Effect.runPromise(effect).then(
    () => exitAfterDelivery(0),
    (error: unknown) => {
      console.error("zactor worker failed:", error)
      exitAfterDelivery(1)
    },
  )
}

/** How long an ending worker may wait for its event loop to empty before it exits regardless. */
const EXIT_BOUND_MS = 2_000

/**
 * Ends the process when its event loop is empty rather than with `process.exit` at once, which would drop what
 * ZeroMQ still had queued, such as the answers to the last calls a draining worker finished: at a natural exit
 * ZeroMQ delivers them first (within the sockets' linger). Bounded, should anything still hold the loop.
 */
const exitAfterDelivery = (code: number): void => {
  process.exitCode = code
  if (process.connected) process.disconnect()
  setTimeout(() => process.exit(code), EXIT_BOUND_MS).unref()
}
