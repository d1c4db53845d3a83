/**
 * The failure detector of one peer: a plain state machine over a caller-supplied monotonic clock (ms), so its rules
 * are unit-tested without timers. It holds what was observed of the peer (last sign of life, the silences it
 * survived, round trips, load) and decides `joining` / `alive` / `suspect` / `dead` (docs/LIVENESS.md gives every
 * rule with its timing). The node-wide monitor that feeds and checks it is `internal/liveness.ts`.
 */
import type * as Liveness from "../Liveness.ts"
import type { RpcError } from "../RpcError.ts"

const NEVER = Number.NEGATIVE_INFINITY

/**
 * The adaptive bound grows by this many times the largest recent silence a peer survived beyond two heartbeat
 * intervals (one lost PONG is normal). A lossy TCP link stalls in steps that double (retransmission backoff), so a
 * link that showed one stall must tolerate the next steps of it.
 */
export const GAP_FACTOR = 6
/** Half-life of that largest silence: a lossy spell raises the bound for about a minute. */
export const GAP_HALF_LIFE_MS = 60_000
/** The adaptive bound also covers this many round trips (a lost segment stalls TCP for about one RTT and more). */
export const RTT_FACTOR = 2
/** Deaths counted for flap damping are those of the last minute. */
export const FLAP_WINDOW_MS = 60_000
/** A flapping peer's probation grows at most to this multiple of `reviveAfter`. */
export const MAX_REVIVE_FACTOR = 8
/**
 * A reconnection attempt that fails within this long after it was due was refused (nothing listens: the process
 * is gone), as opposed to timing out on a lossy or cut network.
 */
export const REFUSED_WITHIN_MS = 250
/** What one check of a detector needs besides the clock. */
export interface DetectorConfig {
  /** The heartbeat interval of this node's pings, ms. */
  readonly intervalMs: number
  /** The link's timeout (the larger of both ends'), ms. */
  readonly timeoutMs: number
  /** Cap of the adaptive bound, ms. */
  readonly maxTimeoutMs: number
  /** Steady contact required before a dead peer is alive again, ms. */
  readonly reviveAfterMs: number
  /** How long a peer may stay unheard after the connection is made before it is declared dead, ms. */
  readonly joinTimeoutMs: number
}

/** A change of state decided by a check. */
export interface Transition {
  readonly from: Liveness.PeerState
  readonly to: Liveness.PeerState
  readonly reason: string
  readonly silentMs: number
}

/** A PING waiting for its PONG. */
export interface PendingPing {
  readonly at: number
  /** Set for health pings (`node.ping`): told the round trip and load, or why no PONG will come. */
  readonly answer: ((outcome: { readonly rttMs: number; readonly load: Liveness.Load } | RpcError) => void) | undefined
}

/** The liveness of one peer. Times are `performance.now()` values. */
export class Detector {
  state: Liveness.PeerState = "joining"
  /** When the state last changed (monotonic, and epoch ms for reports). */
  changedAt: number
  changedAtEpoch: number
  readonly createdAt: number
  /** The last message from the peer; written by the node for every batch received from it. */
  lastHeard = NEVER
  /** Reconnection attempts refused since the connection dropped (see `REFUSED_WITHIN_MS`). */
  refusedConnects = 0
  /** When libzmq last scheduled a reconnection, and after how long (from its `ConnectRetried` events). */
  lastRetryAt: number | undefined = undefined
  lastRetryIntervalMs = 0
  /** The peer's incarnation, from its HELLO/WELCOME. */
  incarnation: string | undefined = undefined
  /** Largest silence survived recently (decaying), ms. */
  peakGapMs = 0
  /** Smoothed PING round trip, ms. */
  srttMs: number | undefined = undefined
  rttMs: number | undefined = undefined
  load: Liveness.Load | undefined = undefined
  everAlive = false
  /** When recent deaths happened, oldest first. */
  readonly deaths: Array<number> = []
  nextSeq = 1
  lastPingAt = NEVER
  readonly pings = new Map<number, PendingPing>()
  /** When the last UDP probe went to the peer. */
  lastProbeAt = NEVER
  /** The host to send UDP probes to (from the endpoint), `null` when it has none (ipc, inproc). */
  probeHost: string | null | undefined = undefined
  /** `lastHeard` as the previous check saw it: a different value means the peer spoke since. */
  private anchor = NEVER
  /** Whether the silence ending now got the peer declared dead (such silences do not raise the bound). */
  private episodeDied = false
  /** Time this node itself was stalled during the current silence (not the peer's fault). */
  private creditMs = 0
  private lastCheck: number
  private contactSince: number | undefined = undefined

  constructor(now: number) {
    this.createdAt = now
    this.changedAt = now
    this.changedAtEpoch = Date.now()
    this.lastCheck = now
  }

  /** The current silence, ms: since the last message, or since the connection was made. */
  silence(now: number): number {
    const from = this.lastHeard === NEVER ? this.createdAt : this.lastHeard
    return Math.max(0, now - from - this.creditMs)
  }

  /**
   * The silence after which the peer is declared dead now, ms: the link's timeout, plus two smoothed round trips,
   * plus `GAP_FACTOR` times the largest recent silence survived beyond two intervals; at most `maxTimeoutMs`.
   */
  bound(config: DetectorConfig): number {
    const excess = Math.max(0, this.peakGapMs - 2 * config.intervalMs)
    const adaptive = config.timeoutMs + RTT_FACTOR * (this.srttMs ?? 0) + GAP_FACTOR * excess
    return Math.max(config.timeoutMs, Math.min(adaptive, Math.max(config.maxTimeoutMs, config.timeoutMs)))
  }

  /** Deaths in the last minute. */
  recentDeaths(now: number): number {
    while (this.deaths.length > 0 && now - this.deaths[0]! > FLAP_WINDOW_MS) this.deaths.shift()
    return this.deaths.length
  }

  /** Records a PONG's round trip (not while dead: answers to pings sent before a stall are no measure). */
  observeRtt(rttMs: number): void {
    this.rttMs = rttMs
    if (this.state === "dead") return
    this.srttMs = this.srttMs === undefined ? rttMs : this.srttMs + (rttMs - this.srttMs) / 8
  }

  /** A new process answers at the peer's endpoint: what was learnt about the old one no longer applies. */
  restarted(now: number): Transition | undefined {
    this.peakGapMs = 0
    this.srttMs = undefined
    this.deaths.length = 0
    this.contactSince = undefined
    return this.state === "alive" ? undefined : this.move(now, "alive", "restarted (new incarnation)", 0)
  }

  /** Moves to `dead` whatever the state (a refused connection); undefined if already dead. */
  kill(now: number, reason: string): Transition | undefined {
    return this.state === "dead" ? undefined : this.move(now, "dead", reason, this.silence(now))
  }

  /**
   * Applies the rules once; `down` says the connection is down now. `stallMs`: this node itself was stalled that
   * long just before this check (its own event loop, or the whole process frozen), time in which the peer could not
   * be heard: it is not counted as the peer's silence.
   */
  check(now: number, down: boolean, config: DetectorConfig, stallMs = 0): Transition | undefined {
    this.observeGaps(now, stallMs)
    const silence = this.silence(now)
    const bound = this.bound(config)
    switch (this.state) {
      case "joining": {
        if (this.lastHeard !== NEVER) return this.move(now, "alive", "answered", silence)
        if (now - this.createdAt >= config.joinTimeoutMs) {
          return this.move(
            now,
            "dead",
            `no answer within ${Math.round(config.joinTimeoutMs)} ms of connecting`,
            silence,
          )
        }
        return undefined
      }
      case "alive":
      case "suspect": {
        if (down && this.refusedConnects > 0) return this.move(now, "dead", "reconnection refused", silence)
        if (silence >= bound) {
          return this.move(now, "dead", `silent for ${Math.round(silence)} ms (bound ${Math.round(bound)} ms)`, silence)
        }
        if (down || silence >= bound / 2) {
          if (this.state === "suspect") return undefined
          const reason = down ? "connection lost" : `silent for ${Math.round(silence)} ms`
          return this.move(now, "suspect", reason, silence)
        }
        return this.state === "alive" ? undefined : this.move(now, "alive", "answered", silence)
      }
      case "dead": {
        if (down || this.lastHeard === NEVER || silence >= bound / 2) {
          this.contactSince = undefined
          return undefined
        }
        if (!this.everAlive) return this.move(now, "alive", "answered for the first time", silence)
        this.contactSince ??= now
        const factor = Math.min(MAX_REVIVE_FACTOR, 2 ** Math.max(0, this.recentDeaths(now) - 1))
        const needed = config.reviveAfterMs * factor
        const steady = now - this.contactSince
        if (steady < needed) return undefined
        return this.move(now, "alive", `answered steadily for ${Math.round(steady)} ms`, silence)
      }
    }
  }

  /**
   * Folds the silence that just ended (if the peer spoke since the last check) into the decaying peak, and credits
   * this node's own stall to the silence it belongs to. Nothing runs during a stall, so a message was read either
   * before it (the stall is part of the silence going on) or after it (the stall is part of the silence that ended).
   */
  private observeGaps(now: number, stallMs: number): void {
    this.peakGapMs *= 0.5 ** ((now - this.lastCheck) / GAP_HALF_LIFE_MS)
    this.lastCheck = now
    const heardAfterStall = stallMs > 0 && this.lastHeard > now - stallMs / 2
    if (this.lastHeard !== this.anchor) {
      if (this.anchor !== NEVER && !this.episodeDied && this.state !== "dead") {
        const gap = this.lastHeard - this.anchor - this.creditMs - (heardAfterStall ? stallMs : 0)
        if (gap > this.peakGapMs) this.peakGapMs = gap
      }
      this.anchor = this.lastHeard
      this.creditMs = 0
      this.episodeDied = false
    }
    if (stallMs > 0 && !heardAfterStall) this.creditMs += stallMs
  }

  private move(now: number, to: Liveness.PeerState, reason: string, silentMs: number): Transition {
    const from = this.state
    this.state = to
    this.changedAt = now
    this.changedAtEpoch = Date.now()
    this.contactSince = undefined
    if (to === "alive") this.everAlive = true
    if (to === "dead") {
      this.episodeDied = true
      this.deaths.push(now)
      this.recentDeaths(now)
    }
    return { from, to, reason, silentMs }
  }
}
