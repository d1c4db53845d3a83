/**
 * What stands between a caller and one target (one connected node): its circuit breaker and the concurrency
 * limit, the most calls this node keeps in flight to it. Both refuse at once with a typed `RpcError` (reasons
 * `circuit-open` and `concurrency-limit`) rather than queueing, so that routing and the retry logic can send the
 * call elsewhere. Kept off the hot path's allocations: one object per target, plain counters, the clock read only
 * when the breaker is not closed.
 */
import * as CircuitBreaker from "../CircuitBreaker.ts"
import { RpcError } from "../RpcError.ts"
import type { NodeMetrics } from "./nodeMetrics.ts"

/** Settings shared by the guards of one node. */
export interface GuardOptions {
  /** Breaker settings, or `undefined` for no breaker. */
  readonly breaker: CircuitBreaker.ResolvedCircuitBreakerOptions | undefined
  /** Most calls in flight to one target. */
  readonly maxCallsPerTarget: number
}

/** The guard of one target. */
export class TargetGuard {
  readonly breaker: CircuitBreaker.CircuitBreaker | undefined
  readonly maxCalls: number
  private readonly metrics: NodeMetrics | undefined

  constructor(options: GuardOptions, metrics?: NodeMetrics) {
    this.breaker = options.breaker === undefined ? undefined : new CircuitBreaker.CircuitBreaker(options.breaker)
    this.maxCalls = options.maxCallsPerTarget
    this.metrics = metrics
  }

  /** Why a call to this target must not be sent now (counted), or undefined; takes a half-open trial slot. */
  refusal(outstanding: number, target: string, path: string): RpcError | undefined {
    if (outstanding >= this.maxCalls) {
      if (this.metrics !== undefined) this.metrics.concurrencyRejected++
      return new RpcError({
        code: "overloaded",
        reason: "concurrency-limit",
        message: `${path}: ${outstanding} calls already in flight to ${target}, the limit per target`,
        method: path,
      })
    }
    const breaker = this.breaker
    if (breaker === undefined) return undefined
    const now = performance.now()
    if (breaker.admit(now)) return undefined
    if (this.metrics !== undefined) this.metrics.circuitRejected++
    return CircuitBreaker.openError(target, path, breaker.retryInMs(now))
  }

  /** Whether a call would be let through now (for routing; takes nothing). */
  admissible(outstanding: number): boolean {
    if (outstanding >= this.maxCalls) return false
    return this.breaker === undefined || this.breaker.wouldAdmit(performance.now())
  }

  /** Records a call's outcome. */
  record(outcome: CircuitBreaker.Outcome): void {
    const breaker = this.breaker
    if (breaker === undefined || outcome === CircuitBreaker.Outcome.Ignored) return
    if (breaker.record(outcome, clock) && this.metrics !== undefined) this.metrics.circuitOpened++
  }

  /** The breaker's state now. */
  circuit(): CircuitBreaker.State {
    return this.breaker === undefined ? "closed" : this.breaker.state(performance.now())
  }
}

const clock = (): number => performance.now()

/** A guard that never refuses (targets made before options are known, tests). */
export const unguarded = (): TargetGuard =>
  new TargetGuard({ breaker: undefined, maxCallsPerTarget: Number.POSITIVE_INFINITY })
