/**
 * The retry loop around single call attempts, for at-least-once calls and for at-most-once calls that are safe
 * to repeat: sends an attempt, and when it fails in a way another attempt may fix (lost ACK, `unavailable`,
 * `overloaded`) waits a jittered, exponentially growing delay and sends it again, routed afresh (so it may
 * reach another instance), until it succeeds, fails for good, runs out of attempts, or would not finish before
 * the call's deadline. Every attempt carries the same idempotency key (if any) and its attempt number.
 */
import { Effect } from "effect"
import * as DeliveryPolicy from "../DeliveryPolicy.ts"
import { RpcError } from "../RpcError.ts"
import type { NodeMetrics } from "./nodeMetrics.ts"

/** Sends one attempt: `attempt` is 1-based, `timeoutMs` what is left of the call's deadline. */
export type Attempt = (attempt: number, timeoutMs: number) => Effect.Effect<unknown, unknown>

/** Runs `send` until it succeeds or may not be retried; `onExhausted` reports a call given up on. */
export const retrying = (
  options: DeliveryPolicy.ResolvedRetryOptions,
  metrics: NodeMetrics,
  path: string,
  timeoutMs: number,
  send: Attempt,
  onExhausted: (attempts: number, error: unknown) => void,
): Effect.Effect<unknown, unknown> =>
  Effect.suspend(() => attemptFrom({ options, metrics, path, send, onExhausted, deadline: Date.now() + timeoutMs }, 1))

/** One call's retry loop. (Plain data and top-level functions: no closure is named per call on the hot path.) */
interface Loop {
  readonly options: DeliveryPolicy.ResolvedRetryOptions
  readonly metrics: NodeMetrics
  readonly path: string
  readonly send: Attempt
  readonly onExhausted: (attempts: number, error: unknown) => void
  readonly deadline: number
}

const attemptFrom = (loop: Loop, attempt: number): Effect.Effect<unknown, unknown> =>
  Effect.catch(loop.send(attempt, Math.max(0, loop.deadline - Date.now())), (error) => retryAfter(loop, attempt, error))

const retryAfter = (loop: Loop, attempt: number, error: unknown): Effect.Effect<unknown, unknown> => {
  if (!DeliveryPolicy.isRetryableFailure(error)) return Effect.fail(error)
  const delay = DeliveryPolicy.retryDelayMs(loop.options, attempt, loop.deadline - Date.now())
  if (delay === undefined) {
    loop.onExhausted(attempt, error)
    return Effect.fail(
      new RpcError({
        code: (error as RpcError).code,
        message: `${loop.path}: gave up after ${attempt} attempt${attempt === 1 ? "" : "s"}: ${(error as RpcError).message}`,
        method: loop.path,
        // A refusal made here (circuit open, concurrency limit, peer dead) stays recognisable after retries.
        reason: (error as RpcError).reason,
        attempts: attempt,
        cause: error,
      }),
    )
  }
  loop.metrics.retried++
  return Effect.flatMap(Effect.sleep(delay), () => attemptFrom(loop, attempt + 1))
}
