/**
 * The at-least-once loop around single call attempts: sends an attempt, and when it fails in a way another
 * attempt may fix (lost ACK, `unavailable`, `overloaded`) waits a jittered, exponentially growing delay and
 * sends it again, routed afresh (so it may reach another instance), until it succeeds, fails for good, runs
 * out of attempts, or would not finish before the call's deadline. Every attempt carries the same idempotency
 * key and its attempt number.
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
  Effect.suspend(() => {
    const deadline = Date.now() + timeoutMs
    const loop = (attempt: number): Effect.Effect<unknown, unknown> =>
      Effect.catch(send(attempt, Math.max(0, deadline - Date.now())), (error) => {
        if (!DeliveryPolicy.isRetryableFailure(error)) return Effect.fail(error)
        const delay = DeliveryPolicy.backoffMs(options, attempt)
        const remaining = deadline - Date.now() - delay
        if (attempt >= options.maxAttempts || remaining <= 0) {
          onExhausted(attempt, error)
          return Effect.fail(
            new RpcError({
              code: (error as RpcError).code,
              message: `${path}: gave up after ${attempt} attempt${attempt === 1 ? "" : "s"}: ${(error as RpcError).message}`,
              method: path,
              attempts: attempt,
              cause: error,
            }),
          )
        }
        metrics.retried++
        return Effect.flatMap(Effect.sleep(delay), () => loop(attempt + 1))
      })
    return loop(1)
  })
