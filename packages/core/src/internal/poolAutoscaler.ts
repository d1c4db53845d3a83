/**
 * The decision side of a worker pool's autoscaling: samples of the calls in flight over time, and whether the
 * pool should grow or shrink by one worker now. A plain class over a caller-supplied clock (ms), so the rules
 * are unit-tested without timers; `WorkerPool` samples, asks, and carries the decision out.
 *
 * Rules (docs/SUPERVISION.md gives them with the defaults):
 * - grow when, over the last `scaleUpAfterMs`, the calls in flight averaged more than `scaleUpAbove` per worker;
 * - shrink when, over the last `scaleDownAfterMs`, they averaged at most `scaleDownBelow` per worker counted on
 *   one worker fewer (so a shrink never leaves the others above the line, and `scaleDownBelow` below
 *   `scaleUpAbove` keeps the pool from flapping).
 * A window counts only once it is full of samples taken at the current size: after every change (or any
 * other reset) the pool must show the load again for a whole window.
 */

/** The autoscaling rules with durations in ms. */
export interface AutoscaleConfig {
  readonly scaleUpAbove: number
  readonly scaleUpAfterMs: number
  readonly scaleDownBelow: number
  readonly scaleDownAfterMs: number
}

/** What the pool should do now. */
export type Decision = "grow" | "shrink" | undefined

interface Sample {
  readonly at: number
  readonly inflight: number
}

/** The samples of one pool since its size last changed. */
export class LoadWindow {
  private readonly samples: Array<Sample> = []
  private since: number
  private readonly config: AutoscaleConfig
  private readonly keepMs: number

  constructor(config: AutoscaleConfig, now: number) {
    this.config = config
    this.since = now
    this.keepMs = Math.max(config.scaleUpAfterMs, config.scaleDownAfterMs)
  }

  /** Records the calls in flight to the whole pool at `now`. */
  record(now: number, inflight: number): void {
    this.samples.push({ at: now, inflight })
    while (this.samples.length > 0 && now - this.samples[0]!.at > this.keepMs) this.samples.shift()
  }

  /** Forgets the samples: the size changed (or was changed by hand) at `now`. */
  reset(now: number): void {
    this.samples.length = 0
    this.since = now
  }

  /** Whether a pool of `workers` live workers, allowed `[minSize, maxSize]` managed ones now at `size`, should change. */
  decide(now: number, size: number, workers: number, minSize: number, maxSize: number): Decision {
    const live = Math.max(1, workers)
    const up = this.mean(now, this.config.scaleUpAfterMs)
    if (size < maxSize && up !== undefined && up / live > this.config.scaleUpAbove) return "grow"
    const down = this.mean(now, this.config.scaleDownAfterMs)
    if (size > minSize && down !== undefined && down <= this.config.scaleDownBelow * (live - 1)) return "shrink"
    return undefined
  }

  /** The mean in flight over the last `ms`, or undefined while fewer than `ms` of samples were taken. */
  private mean(now: number, ms: number): number | undefined {
    if (now - this.since < ms) return undefined
    let sum = 0
    let count = 0
    for (let i = this.samples.length - 1; i >= 0 && now - this.samples[i]!.at <= ms; i--) {
      sum += this.samples[i]!.inflight
      count++
    }
    return count === 0 ? undefined : sum / count
  }
}
