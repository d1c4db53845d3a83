/**
 * The arithmetic of restarts, apart from the supervisor's state so it can be tested alone: the OTP-style
 * intensity window (at most `maxRestarts` restarts within any `periodMs`) and the exponential backoff between
 * the restarts of one child.
 */

/** Restart times within the sliding period; decides whether one more restart is allowed. */
export class RestartWindow {
  private readonly times: Array<number> = []
  readonly maxRestarts: number
  readonly periodMs: number

  constructor(maxRestarts: number, periodMs: number) {
    this.maxRestarts = maxRestarts
    this.periodMs = periodMs
  }

  /**
   * Records a restart wanted at `now` (ms) and tells whether it is allowed: false when it would be restart
   * number `maxRestarts + 1` within the period, i.e. the intensity is exceeded and the supervisor escalates.
   */
  record(now: number): boolean {
    this.prune(now)
    this.times.push(now)
    return this.times.length <= this.maxRestarts
  }

  /** Restarts within the period ending at `now`. */
  count(now: number): number {
    this.prune(now)
    return this.times.length
  }

  private prune(now: number): void {
    // A restart exactly `periodMs` ago is outside the window: `period` is exclusive, as in OTP.
    while (this.times.length > 0 && this.times[0]! <= now - this.periodMs) this.times.shift()
  }
}

/** The backoff settings, in milliseconds. */
export interface Backoff {
  readonly initialBackoffMs: number
  readonly maxBackoffMs: number
  readonly backoffResetAfterMs: number
}

/**
 * The delay before the `streak`-th consecutive restart of a child (1-based): the first restart of a streak
 * is immediate (a crash after a healthy run is fixed fastest by starting again at once), then
 * `initialBackoffMs`, doubling, capped at `maxBackoffMs`.
 */
export const delayMs = (backoff: Backoff, streak: number): number => {
  if (streak <= 1) return 0
  return Math.min(backoff.maxBackoffMs, backoff.initialBackoffMs * 2 ** (streak - 2))
}

/**
 * The streak a restart belongs to: a child that ran at least `backoffResetAfterMs` before it ended starts a new
 * streak (1); one that ended sooner continues the previous one.
 */
export const nextStreak = (backoff: Backoff, previous: number, ranMs: number): number =>
  ranMs >= backoff.backoffResetAfterMs ? 1 : previous + 1
