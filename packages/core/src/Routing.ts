/**
 * Choosing one instance among several that serve a call. A node routes a call by service name with it; worker
 * pools may use it for their own workers.
 *
 * Rules, in order:
 * 1. Never a `dead` instance.
 * 2. An instance that can take the call now (its circuit breaker lets it through and it is under its concurrency
 *    limit) before one that cannot; one that cannot is chosen only when nothing else exists, so that the call fails
 *    at once with the typed reason (`circuit-open`, `concurrency-limit`).
 * 3. `alive` (or `joining`: just connected, not yet checked) before `suspect`.
 * 4. Among the best: the strategy.
 *    - `least-outstanding` (default): the fewest calls this node has in flight to it; ties go to the lower load it
 *      reported (requests it serves, then event-loop delay), then to the first.
 *    - `power-of-two-choices`: two at random, the one with the lower score: calls in flight from this node, plus
 *      requests it reported serving, plus one per 10 ms of event-loop delay it reported. Spreads load from many
 *      callers without herding onto one instance whose load report is stale.
 *
 * @since 0.1.0
 */
import type { Load, PeerState } from "./Liveness.ts"

/**
 * How to choose among equally good instances.
 *
 * @since 0.1.0
 */
export type Strategy = "least-outstanding" | "power-of-two-choices"

/**
 * What routing needs to know about an instance.
 *
 * @since 0.1.0
 */
export interface Candidate {
  readonly state: PeerState
  /** Calls this node has in flight to it. */
  readonly outstanding: number
  /** The load it last reported, if any. */
  readonly load: Load | undefined
  /** Whether it can take a call now (circuit not open, under its concurrency limit). */
  readonly admissible: boolean
}

/** Lower is better; dead is never chosen. */
const tier = (candidate: Candidate): number => {
  if (candidate.state === "dead") return Number.POSITIVE_INFINITY
  const healthy = candidate.state === "suspect" ? 1 : 0
  return candidate.admissible ? healthy : 2 + healthy
}

/** Negative when `a` is less loaded than `b`. */
const compareLoad = (a: Candidate, b: Candidate): number =>
  a.outstanding - b.outstanding ||
  (a.load?.inflight ?? 0) - (b.load?.inflight ?? 0) ||
  (a.load?.eventLoopDelayMs ?? 0) - (b.load?.eventLoopDelayMs ?? 0)

/**
 * The score `power-of-two-choices` compares (lower is better).
 *
 * @since 0.1.0
 */
export const score = (candidate: Candidate): number =>
  candidate.outstanding + (candidate.load?.inflight ?? 0) + Math.floor((candidate.load?.eventLoopDelayMs ?? 0) / 10)

/**
 * Chooses one of `candidates` (see the module rules), or `undefined` when all are dead or there are none.
 * `random` is injectable for tests.
 *
 * @since 0.1.0
 */
export const choose = <A extends Candidate>(
  candidates: ReadonlyArray<A>,
  strategy: Strategy = "least-outstanding",
  random: () => number = Math.random,
): A | undefined => {
  let bestTier = Number.POSITIVE_INFINITY
  let count = 0
  for (const candidate of candidates) {
    const t = tier(candidate)
    if (t < bestTier) {
      bestTier = t
      count = 1
    } else if (t === bestTier) {
      count++
    }
  }
  if (bestTier === Number.POSITIVE_INFINITY) return undefined
  if (strategy === "power-of-two-choices" && count > 1) {
    // Two distinct positions among the `count` candidates of the best tier.
    const first = Math.floor(random() * count)
    const second = (first + 1 + Math.floor(random() * (count - 1))) % count
    let a: A | undefined
    let b: A | undefined
    let index = 0
    for (const candidate of candidates) {
      if (tier(candidate) !== bestTier) continue
      if (index === first) a = candidate
      if (index === second) b = candidate
      index++
    }
    return score(b!) < score(a!) ? b : a
  }
  let best: A | undefined
  for (const candidate of candidates) {
    if (tier(candidate) !== bestTier) continue
    if (best === undefined || compareLoad(candidate, best) < 0) best = candidate
  }
  return best
}
