/**
 * A circuit breaker in front of one target (one connected node): after repeated failures of calls to it, calls
 * stop being sent there for a while and fail at once with `RpcError` code `unavailable`, reason `circuit-open`
 * (routing sends them to another instance when there is one); after the pause a few trial calls decide whether
 * the target works again.
 *
 * ```
 *  closed --(failureThreshold consecutive failures, or failureRate over the window)--> open
 *  open --(openFor elapsed; openFor doubles after each failed trial, up to maxOpenFor)--> half-open
 *  half-open --(a call succeeds)--> closed      half-open --(a call fails)--> open
 * ```
 *
 * A failure is what says the target itself is not working: a deadline exceeded, a lost ACK, `internal` (a
 * handler defect or undeclared error) or `unavailable` answered by the target. Application errors declared by
 * the contract, `not_found`, `invalid_argument` and the like are answers, hence successes; `overloaded` is flow
 * control (the retry logic backs off), not a fault. Calls failed by this node itself (connection lost, peer
 * declared dead: liveness handles those) and cancelled calls count as nothing.
 *
 * The breaker is a plain state machine driven by the caller's clock (`now` in ms), so it is tested without
 * timers; the node keeps one per connected node (see `internal/targetGuard.ts`).
 *
 * @since 0.1.0
 */
import { Duration } from "effect"
import { RpcError } from "./RpcError.ts"

// ---- models --------------------------------------------------------------------------------------------------

/**
 * The state of a breaker.
 *
 * @since 0.1.0
 */
export type State = "closed" | "open" | "half-open"

/**
 * Options of the breakers of a node (`NodeOptions.circuitBreaker`; `false` turns them off).
 *
 * @since 0.1.0
 */
export interface CircuitBreakerOptions {
  /** Consecutive failures that open the circuit. Default 5. */
  readonly failureThreshold?: number | undefined
  /**
   * Share of failures among the last `window` calls that opens the circuit, once at least `minimumCalls` of them
   * completed. Default 0.5. Set above 1 to rely on consecutive failures alone.
   */
  readonly failureRate?: number | undefined
  /** How many recent calls the failure rate looks at. Default 20. */
  readonly window?: number | undefined
  /** Calls needed in the window before the rate applies. Default 10. */
  readonly minimumCalls?: number | undefined
  /** How long the circuit stays open the first time. Default 1 s. */
  readonly openFor?: Duration.Input | undefined
  /** Cap of the open time, which doubles after each failed trial. Default 30 s. */
  readonly maxOpenFor?: Duration.Input | undefined
  /** Trial calls let through while half-open. Default 1. */
  readonly halfOpenCalls?: number | undefined
}

/**
 * Breaker options with defaults applied, in milliseconds.
 *
 * @since 0.1.0
 */
export interface ResolvedCircuitBreakerOptions {
  readonly failureThreshold: number
  readonly failureRate: number
  readonly window: number
  readonly minimumCalls: number
  readonly openForMs: number
  readonly maxOpenForMs: number
  readonly halfOpenCalls: number
}

/**
 * The defaults.
 *
 * @since 0.1.0
 */
export const defaults: ResolvedCircuitBreakerOptions = Object.freeze({
  failureThreshold: 5,
  failureRate: 0.5,
  window: 20,
  minimumCalls: 10,
  openForMs: 1000,
  maxOpenForMs: 30_000,
  halfOpenCalls: 1,
})

/**
 * Applies defaults and checks ranges; returns a message naming the bad field, or the resolved options.
 *
 * @since 0.1.0
 */
export const resolve = (options: CircuitBreakerOptions = {}): ResolvedCircuitBreakerOptions | string => {
  const problems: Array<string> = []
  const int = (name: string, input: number | undefined, fallback: number, min: number): number => {
    if (input === undefined) return fallback
    if (!Number.isInteger(input) || input < min) problems.push(`circuitBreaker.${name} must be an integer >= ${min}`)
    return input
  }
  const ms = (name: string, input: Duration.Input | undefined, fallback: number): number => {
    if (input === undefined) return fallback
    const value = Duration.fromInput(input)
    const millis = value._tag === "Some" ? Duration.toMillis(value.value) : Number.NaN
    if (!Number.isFinite(millis) || millis <= 0) problems.push(`circuitBreaker.${name} must be a positive duration`)
    return millis
  }
  const resolved: ResolvedCircuitBreakerOptions = {
    failureThreshold: int("failureThreshold", options.failureThreshold, defaults.failureThreshold, 1),
    failureRate: options.failureRate ?? defaults.failureRate,
    window: int("window", options.window, defaults.window, 1),
    minimumCalls: int("minimumCalls", options.minimumCalls, defaults.minimumCalls, 1),
    openForMs: ms("openFor", options.openFor, defaults.openForMs),
    maxOpenForMs: ms("maxOpenFor", options.maxOpenFor, defaults.maxOpenForMs),
    halfOpenCalls: int("halfOpenCalls", options.halfOpenCalls, defaults.halfOpenCalls, 1),
  }
  if (!(resolved.failureRate > 0)) problems.push("circuitBreaker.failureRate must be > 0")
  if (resolved.minimumCalls > resolved.window) problems.push("circuitBreaker.minimumCalls must be <= window")
  if (resolved.maxOpenForMs < resolved.openForMs) problems.push("circuitBreaker.maxOpenFor must be >= openFor")
  return problems.length > 0 ? problems.join("; ") : resolved
}

/**
 * How an outcome counts: `Success`, `Failure`, or `Ignored` (says nothing about the target).
 *
 * @since 0.1.0
 */
export const Outcome = { Success: 0, Failure: 1, Ignored: 2 } as const

/**
 * An outcome kind.
 *
 * @since 0.1.0
 */
export type Outcome = (typeof Outcome)[keyof typeof Outcome]

/**
 * Classifies a framework failure code answered by the target (a FAILURE envelope): whether it says the target is
 * broken. `application` (a declared error) is an answer, hence a success.
 *
 * @since 0.1.0
 */
export const classifyAnswer = (code: string): Outcome =>
  code === "internal" || code === "unavailable" || code === "deadline_exceeded" ? Outcome.Failure : Outcome.Success

// ---- the state machine ---------------------------------------------------------------------------------------

/**
 * One breaker. `admit` before a call, `record` after it; `now` is any monotonic clock in ms.
 *
 * @since 0.1.0
 */
export class CircuitBreaker {
  readonly options: ResolvedCircuitBreakerOptions
  private current: State = "closed"
  private consecutive = 0
  /** Outcomes of the last `window` calls (true = failure), as a ring. */
  private readonly ring: Array<boolean>
  private ringNext = 0
  private ringFilled = 0
  private ringFailures = 0
  private openUntil = 0
  private openForMs: number
  private trials = 0
  private halfOpenSince = 0
  /** Times the circuit opened (for metrics). */
  opened = 0
  /** Calls refused because the circuit was open. */
  rejected = 0

  constructor(options: ResolvedCircuitBreakerOptions) {
    this.options = options
    this.ring = new Array<boolean>(options.window).fill(false)
    this.openForMs = options.openForMs
  }

  /** The state now (an open circuit whose time is up reads `half-open`). */
  state(now: number): State {
    if (this.current === "open" && now >= this.openUntil) return "half-open"
    return this.current
  }

  /** Whether a call would be let through now, without taking a trial slot (for routing). */
  wouldAdmit(now: number): boolean {
    const state = this.state(now)
    if (state === "closed") return true
    if (state === "open") return false
    return this.current === "open" || this.trials < this.options.halfOpenCalls || this.trialExpired(now)
  }

  /** Lets a call through (true) or refuses it (false, counted). Half-open, it takes a trial slot. */
  admit(now: number): boolean {
    if (this.current === "closed") return true
    if (this.current === "open") {
      if (now < this.openUntil) {
        this.rejected++
        return false
      }
      this.current = "half-open"
      this.halfOpenSince = now
      this.trials = 0
    }
    // Trials whose outcome never came (cancelled, lost with the connection) free their slots after openFor.
    if (this.trialExpired(now)) {
      this.trials = 0
      this.halfOpenSince = now
    }
    if (this.trials < this.options.halfOpenCalls) {
      this.trials++
      return true
    }
    this.rejected++
    return false
  }

  /**
   * Records the outcome of a call. Returns true when this outcome opened the circuit. `now` may be a clock, read
   * only when the circuit opens (the hot path of a closed circuit reads no clock).
   */
  record(outcome: Outcome, now: number | (() => number)): boolean {
    if (outcome === Outcome.Ignored) return false
    const failed = outcome === Outcome.Failure
    if (this.current === "half-open") {
      if (failed) {
        this.openForMs = Math.min(this.options.maxOpenForMs, this.openForMs * 2)
        this.open(typeof now === "number" ? now : now())
        return true
      }
      this.close()
      return false
    }
    if (this.current === "open") return false
    this.consecutive = failed ? this.consecutive + 1 : 0
    if (this.ringFilled === this.ring.length) {
      if (this.ring[this.ringNext]) this.ringFailures--
    } else {
      this.ringFilled++
    }
    this.ring[this.ringNext] = failed
    if (failed) this.ringFailures++
    this.ringNext = (this.ringNext + 1) % this.ring.length
    const rateExceeded =
      this.ringFilled >= this.options.minimumCalls && this.ringFailures / this.ringFilled >= this.options.failureRate
    if (failed && (this.consecutive >= this.options.failureThreshold || rateExceeded)) {
      this.open(typeof now === "number" ? now : now())
      return true
    }
    return false
  }

  /** How long until an open circuit lets a trial through, in ms (0 unless open). */
  retryInMs(now: number): number {
    return this.current === "open" ? Math.max(0, this.openUntil - now) : 0
  }

  private trialExpired(now: number): boolean {
    return this.current === "half-open" && now - this.halfOpenSince >= this.openForMs
  }

  private open(now: number): void {
    this.current = "open"
    this.openUntil = now + this.openForMs
    this.opened++
    this.consecutive = 0
    this.ring.fill(false)
    this.ringFilled = 0
    this.ringNext = 0
    this.ringFailures = 0
  }

  private close(): void {
    this.current = "closed"
    this.openForMs = this.options.openForMs
    this.consecutive = 0
    this.trials = 0
  }
}

/**
 * The error of a call refused by an open circuit: `unavailable` (retryable, and routed elsewhere when possible),
 * reason `circuit-open`.
 *
 * @since 0.1.0
 */
export const openError = (target: string, path: string, retryInMs: number): RpcError =>
  new RpcError({
    code: "unavailable",
    reason: "circuit-open",
    message: `${path}: circuit open to ${target} after repeated failures; next trial in ${Math.ceil(retryInMs)} ms`,
    method: path,
  })
