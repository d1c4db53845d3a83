/**
 * Delivery policies: how hard a caller tries to get a call through. ZeroMQ discards whatever sits in a
 * connection it declares dead, so a call sent once may vanish; at-least-once asks the callee to acknowledge
 * receipt (ACK, distinct from the reply) and sends the call again when the ACK does not come, or when the
 * failure says another attempt may succeed.
 *
 * Retries are only ever made for calls that are safe to repeat: methods declared idempotent, or calls carrying
 * an idempotency key, which the callee uses to run the handler once and answer duplicates from its dedupe
 * window (see DedupeStore). A non-idempotent call without a key is never retried.
 *
 * @since 0.1.0
 */
import { Duration } from "effect"
import * as RpcErrorModule from "./RpcError.ts"

/**
 * `at-most-once`: no ACK; a lost call fails with `unavailable` or at its deadline. Sent once, unless it is safe
 * to repeat (its method is declared idempotent, or it carries an idempotency key): then a retryable failure
 * (`unavailable`, `overloaded`) sends it again, routed afresh, like an at-least-once call.
 * `at-least-once`: ACK requested; retried on lost ACK, `unavailable` or `overloaded`, bounded by the deadline
 * and `maxAttempts`. Calls to methods not declared idempotent get a generated idempotency key, so the callee
 * deduplicates the retries.
 *
 * @since 0.1.0
 */
export type Delivery = "at-most-once" | "at-least-once"

/**
 * Retry settings of a node (construction options).
 *
 * @since 0.1.0
 */
export interface RetryOptions {
  /** Most attempts of one call, the first included. Default 5. */
  readonly maxAttempts?: number | undefined
  /** Delay before the first retry. Default 50 ms. */
  readonly initialBackoff?: Duration.Input | undefined
  /** Cap of the exponentially growing delay. Default 2 s. */
  readonly maxBackoff?: Duration.Input | undefined
  /** How long an at-least-once attempt waits for its ACK before it counts as lost. Default 1 s. */
  readonly ackTimeout?: Duration.Input | undefined
}

/**
 * Retry settings with defaults applied, in milliseconds.
 *
 * @since 0.1.0
 */
export interface ResolvedRetryOptions {
  readonly maxAttempts: number
  readonly initialBackoffMs: number
  readonly maxBackoffMs: number
  readonly ackTimeoutMs: number
}

/**
 * The defaults.
 *
 * @since 0.1.0
 */
export const defaults: ResolvedRetryOptions = Object.freeze({
  maxAttempts: 5,
  initialBackoffMs: 50,
  maxBackoffMs: 2000,
  ackTimeoutMs: 1000,
})

/**
 * Applies defaults; returns a message naming the bad field, or the resolved options.
 *
 * @since 0.1.0
 */
export const resolve = (options: RetryOptions = {}): ResolvedRetryOptions | string => {
  const ms = (input: Duration.Input | undefined, fallback: number) =>
    input === undefined ? fallback : Duration.toMillis(Duration.fromInputUnsafe(input))
  const resolved = {
    maxAttempts: options.maxAttempts ?? defaults.maxAttempts,
    initialBackoffMs: ms(options.initialBackoff, defaults.initialBackoffMs),
    maxBackoffMs: ms(options.maxBackoff, defaults.maxBackoffMs),
    ackTimeoutMs: ms(options.ackTimeout, defaults.ackTimeoutMs),
  }
  if (!Number.isInteger(resolved.maxAttempts) || resolved.maxAttempts < 1) return "retry.maxAttempts must be >= 1"
  if (!(resolved.initialBackoffMs >= 0) || !(resolved.maxBackoffMs >= resolved.initialBackoffMs)) {
    return "retry backoffs must satisfy 0 <= initialBackoff <= maxBackoff"
  }
  if (!(resolved.ackTimeoutMs > 0) || !Number.isFinite(resolved.ackTimeoutMs)) return "retry.ackTimeout must be > 0"
  return resolved
}

/**
 * The delay before retry number `retry` (1 for the first retry): exponential from `initialBackoffMs`, capped
 * at `maxBackoffMs`, with full jitter (uniform in [0, delay]) so that callers failed by one event do not come
 * back in lockstep. `random` is injectable for tests.
 *
 * @since 0.1.0
 */
export const backoffMs = (options: ResolvedRetryOptions, retry: number, random: () => number = Math.random): number => {
  const exponential = Math.min(options.maxBackoffMs, options.initialBackoffMs * 2 ** Math.max(0, retry - 1))
  return Math.floor(random() * exponential)
}

/**
 * The delay before the next attempt of a call that has made `attempts` attempts and has `remainingMs` left of
 * its deadline, or `undefined` when no further attempt may be made: `maxAttempts` reached, or the delay
 * (`backoffMs`) would end at or past the deadline, leaving the attempt no time to run.
 *
 * @since 0.1.0
 */
export const retryDelayMs = (
  options: ResolvedRetryOptions,
  attempts: number,
  remainingMs: number,
  random: () => number = Math.random,
): number | undefined => {
  if (attempts >= options.maxAttempts) return undefined
  const delay = backoffMs(options, attempts, random)
  return remainingMs - delay > 0 ? delay : undefined
}

/**
 * Whether another attempt may succeed after this failure. A lost ACK, `unavailable` and `overloaded` qualify;
 * application errors, invalid arguments, deadlines and cancellations never do.
 *
 * @since 0.1.0
 */
export const isRetryableFailure = (error: unknown): boolean =>
  RpcErrorModule.RpcError.is(error) && (RpcErrorModule.isRetryable(error.code) || error.lostAck === true)
