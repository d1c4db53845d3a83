/**
 * A latency histogram cheap enough for the per-call path: fixed bucket bounds in milliseconds, one counter
 * array, no allocation per observation. Snapshots copy it for export (Prometheus, `zactor top`).
 */

/** Upper bounds of the buckets, in milliseconds (the last, implicit bucket is +Inf). */
export const BOUNDS_MS: ReadonlyArray<number> = Object.freeze([
  0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000,
])

/** A live histogram. `counts[i]` counts observations in bucket i (not cumulative); the last is +Inf. */
export interface Histogram {
  readonly counts: Array<number>
  sum: number
  count: number
}

/** An empty histogram over `BOUNDS_MS`. */
export const make = (): Histogram => ({ counts: new Array<number>(BOUNDS_MS.length + 1).fill(0), sum: 0, count: 0 })

/** Records one observation, in milliseconds. */
export const observe = (histogram: Histogram, ms: number): void => {
  let i = 0
  // Linear from the low end: most calls land in the first few buckets.
  while (i < BOUNDS_MS.length && ms > BOUNDS_MS[i]!) i++
  histogram.counts[i]!++
  histogram.sum += ms
  histogram.count++
}

/** A copy, for snapshots. */
export const copy = (histogram: Histogram): Histogram => ({
  counts: histogram.counts.slice(),
  sum: histogram.sum,
  count: histogram.count,
})
