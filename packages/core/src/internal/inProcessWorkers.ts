/**
 * The in-process side of a worker pool: N handler sets of one contract (each from its own `make`, so each may
 * hold its own state and resources) served at the contract's address through one registration on the node,
 * which hands every call to the live worker with the fewest calls in flight.
 *
 * A defect in a worker's handler crashes that worker (its supervisor builds a new one); the call fails with
 * the defect as usual (`internal`). A worker being stopped takes no new calls and finishes those it has
 * (bounded), and a call finding no live worker fails `unavailable`, which retry-safe callers retry.
 */
import { Cause, Deferred, Effect, Stream } from "effect"
import type { CallContext } from "../CallContext.ts"
import type * as ChildSpec from "../ChildSpec.ts"
import type * as Contract from "../Contract.ts"
import type * as Node from "../Node.ts"
import { RpcError } from "../RpcError.ts"
import { pollUntil } from "./pollUntil.ts"

type AnyHandler = (payload: unknown, context: CallContext) => unknown

/** One in-process worker. */
export interface Worker {
  readonly id: string
  readonly handlers: { readonly [method: string]: AnyHandler | undefined }
  inflight: number
  draining: boolean
  /** Completed when a defect crashes the worker: its supervisor sees that as the worker's end. */
  readonly crashed: Deferred.Deferred<ChildSpec.ExitReason>
}

/** The live workers of a pool, and the handlers that route calls among them. */
export class Workers {
  readonly live: Array<Worker> = []
  /** Set when the whole pool drains: new calls are refused. */
  closed = false
  readonly contract: Contract.Contract
  readonly poolId: string

  constructor(poolId: string, contract: Contract.Contract) {
    this.poolId = poolId
    this.contract = contract
  }

  /** The live worker with the fewest calls in flight. */
  private pick(path: string): Worker | RpcError {
    let best: Worker | undefined
    if (!this.closed) {
      for (const worker of this.live) {
        if (!worker.draining && (best === undefined || worker.inflight < best.inflight)) best = worker
      }
    }
    return best ?? new RpcError({ code: "unavailable", message: `pool ${this.poolId}: no live worker`, method: path })
  }

  /** The handlers the pool serves on the node: one per method, each routing to a worker. */
  handlers(): Node.Handlers<Contract.Contract> {
    const handlers: Record<string, AnyHandler> = {}
    for (const [name, method] of Object.entries(this.contract.methods)) {
      handlers[name] =
        method._tag === "Unary"
          ? (payload, context) =>
              Effect.suspend(() => {
                const worker = this.pick(context.method)
                if (worker instanceof RpcError) return Effect.fail(worker)
                worker.inflight++
                return toEffect(worker.handlers[name]!(payload, context)).pipe(
                  Effect.onExit((exit) =>
                    Effect.sync(() => {
                      worker.inflight--
                      if (exit._tag === "Failure" && Cause.hasDies(exit.cause)) crash(worker, exit.cause)
                    }),
                  ),
                )
              })
          : (payload, context) =>
              Stream.unwrap(
                Effect.sync(() => {
                  const worker = this.pick(context.method)
                  if (worker instanceof RpcError) return Stream.fail(worker)
                  worker.inflight++
                  const stream = worker.handlers[name]!(payload, context) as Stream.Stream<unknown, unknown>
                  return stream.pipe(
                    Stream.onExit((exit) =>
                      Effect.sync(() => {
                        worker.inflight--
                        if (exit._tag === "Failure" && Cause.hasDies(exit.cause)) crash(worker, exit.cause)
                      }),
                    ),
                  )
                }),
              )
    }
    return handlers as unknown as Node.Handlers<Contract.Contract>
  }

  add(worker: Worker): void {
    this.live.push(worker)
  }

  /** Stops routing to a worker and waits (up to `drainMs`) for its calls to finish, then forgets it. */
  retire(worker: Worker, drainMs: number): Effect.Effect<void> {
    return Effect.suspend(() => {
      worker.draining = true
      return Effect.andThen(
        pollUntil(() => worker.inflight === 0, drainMs),
        Effect.sync(() => {
          const index = this.live.indexOf(worker)
          if (index >= 0) this.live.splice(index, 1)
        }),
      )
    })
  }
}

const crash = (worker: Worker, cause: Cause.Cause<unknown>): void => {
  // The worker leaves the rotation at once; its supervisor replaces it.
  worker.draining = true
  Deferred.doneUnsafe(worker.crashed, Effect.succeed({ _tag: "Died", defect: Cause.squash(cause) }))
}

const toEffect = (result: unknown): Effect.Effect<unknown, unknown> =>
  Effect.isEffect(result)
    ? (result as Effect.Effect<unknown, unknown>)
    : typeof (result as PromiseLike<unknown> | undefined)?.then === "function"
      ? Effect.tryPromise({ try: () => result as PromiseLike<unknown>, catch: (error) => error })
      : Effect.succeed(result)
