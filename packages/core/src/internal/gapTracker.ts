/**
 * Gap accounting for one publisher as seen by one subscription: the current epoch and the last sequence number
 * accounted for. Every EVENTS run and heartbeat goes through it, and it says how many events went missing, whether
 * the publisher restarted, and which leading events were seen already (duplicates, or covered by a snapshot).
 *
 * The first message from a publisher sets the baseline: events published before the subscription took effect are
 * not counted as missed (a snapshot covers them when the topic has a cache). After that, every sequence number is
 * either received or counted missed: a jump in an EVENTS run, a heartbeat's `lastSeq` beyond the last received
 * (lost tail), or a new epoch whose first message is not sequence 1.
 *
 * A message of an epoch other than the current one is a restart unless that epoch was retired (superseded) before,
 * in which case it is a straggler and ignored. Results are left in fields (`missed`, `previousEpoch`) so the hot
 * path allocates nothing per batch.
 */

/** How many superseded epochs are remembered to recognise stragglers. */
const RETIRED = 8

/** Sequence accounting of one publisher. */
export class GapTracker {
  /** The current epoch; -1 before the first message. */
  epoch = -1
  /** The last sequence number accounted for (received, or reported missed). */
  lastSeq = 0
  /** Set by each call: how many events it found missing. */
  missed = 0
  /** Set by each call: the epoch before a restart it found, else -1. */
  previousEpoch = -1
  private readonly retired: Array<number> = []

  /** Whether a message was seen (or a snapshot taken) yet. */
  get started(): boolean {
    return this.epoch >= 0
  }

  /**
   * Accounts for events `firstSeq .. firstSeq + count - 1` of `epoch`. Returns how many leading events were
   * accounted for already (all of them for a straggler epoch): the caller delivers the rest.
   */
  range(epoch: number, firstSeq: number, count: number): number {
    this.missed = 0
    this.previousEpoch = -1
    if (!this.enter(epoch, firstSeq - 1)) return count
    const last = firstSeq + count - 1
    if (last <= this.lastSeq) return count
    const skip = firstSeq <= this.lastSeq ? this.lastSeq - firstSeq + 1 : 0
    if (firstSeq > this.lastSeq + 1) this.missed = firstSeq - this.lastSeq - 1
    this.lastSeq = last
    return skip
  }

  /** Accounts for a heartbeat: events up to `lastSeq` were published. Returns false for a straggler epoch. */
  beat(epoch: number, lastSeq: number): boolean {
    this.missed = 0
    this.previousEpoch = -1
    if (!this.enter(epoch, lastSeq)) return false
    if (lastSeq > this.lastSeq) {
      this.missed = lastSeq - this.lastSeq
      this.lastSeq = lastSeq
    }
    return true
  }

  /** Whether a message of `epoch` would be a restart (not the current epoch, nor a superseded one). */
  isNewEpoch(epoch: number): boolean {
    return this.epoch >= 0 && epoch !== this.epoch && !this.retired.includes(epoch)
  }

  /** Sets the baseline from a snapshot: events up to `seq` of `epoch` are covered. */
  baseline(epoch: number, seq: number): void {
    if (epoch === this.epoch) {
      // A resync of the same epoch never moves back: what was accounted for stays accounted for.
      this.lastSeq = Math.max(this.lastSeq, seq)
      return
    }
    if (this.epoch >= 0) this.retire(this.epoch)
    this.epoch = epoch
    this.lastSeq = seq
  }

  /** Marks an epoch superseded: its messages are stragglers from now on. */
  retire(epoch: number): void {
    if (this.retired.includes(epoch)) return
    this.retired.push(epoch)
    if (this.retired.length > RETIRED) this.retired.shift()
  }

  /** Moves to `epoch` if needed; false for a straggler. `firstBaseline` is the baseline of a first contact. */
  private enter(epoch: number, firstBaseline: number): boolean {
    if (epoch === this.epoch) return true
    if (this.epoch < 0) {
      this.epoch = epoch
      this.lastSeq = firstBaseline
      return true
    }
    if (this.retired.includes(epoch)) return false
    // A new epoch: the publisher restarted and counts from 1 again.
    this.previousEpoch = this.epoch
    this.retire(this.epoch)
    this.epoch = epoch
    this.lastSeq = 0
    return true
  }
}
