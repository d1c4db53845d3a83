/**
 * Liveness: whether the nodes this node calls are answering, and how loaded they are. A node pings every node it
 * is connected to (PING/PONG, answered by the peer's receive loop, so an answer proves the event loop runs, not
 * only that the kernel holds the socket open) and counts any traffic from the peer as proof of life. From the
 * silence since the last sign of life each peer is `alive`, `suspect` or `dead`; routing, in-flight calls, death
 * watches and `node.remotes()` follow that state. docs/LIVENESS.md gives every transition with its timing.
 *
 * This module holds the public vocabulary (states, options and their defaults, what a watch reports) and the pure
 * rules applied at the handshake. The detector and the monitor that runs it live in `internal/liveness.ts`.
 *
 * @since 0.1.0
 */
import { Duration } from "effect"

// ---- models --------------------------------------------------------------------------------------------------

/**
 * What this node believes about a peer it connected to.
 * - `joining`: connected (or connecting) but not heard from yet; calls wait for the connection.
 * - `alive`: heard from within half the detection bound.
 * - `suspect`: silent for half the bound, or its connection dropped; still called when nothing better exists.
 * - `dead`: silent for the whole bound, its reconnection was refused, or it never answered: calls in flight fail
 *   `unavailable`, new ones are not sent, and watchers are notified. It comes back after answering steadily.
 *
 * @since 0.1.0
 */
export type PeerState = "joining" | "alive" | "suspect" | "dead"

/**
 * Load signals a node reports in PING and PONG: `inflight` requests it is serving, `eventLoopDelayMs` (the worst
 * lateness of its timers over the last second), `mailbox` (messages waiting in the actor mailboxes of its process),
 * and any signal added with `node.addLoadSignal`.
 *
 * @since 0.1.0
 */
export type Load = { readonly [signal: string]: number }

/**
 * A snapshot of one peer's liveness, as `node.remotes()` shows it.
 *
 * @since 0.1.0
 */
export interface PeerStatus {
  readonly state: PeerState
  /** When the peer entered this state (epoch ms). */
  readonly since: number
  /** How long since the last message from it, in ms (0 when it was just heard). */
  readonly silentMs: number
  /** The silence after which it is declared dead now: the link's timeout, raised by what was observed (ms). */
  readonly boundMs: number
  /** The last round trip of a PING, in ms; `undefined` before the first PONG. */
  readonly rttMs: number | undefined
  /** The load it reported in its last PONG; `undefined` before the first. */
  readonly load: Load | undefined
  /** How many times it was declared dead in the last minute (a flapping peer comes back more slowly). */
  readonly recentDeaths: number
  /** The state of the circuit breaker in front of it. */
  readonly circuit: "closed" | "open" | "half-open"
}

/**
 * A change of a peer's state, as `node.peerChanges` streams it.
 *
 * @since 0.1.0
 */
export interface PeerChange {
  /** The peer's node id, once it said HELLO/WELCOME. */
  readonly nodeId: string | undefined
  /** The endpoint this node connected to. */
  readonly endpoint: string
  readonly from: PeerState
  readonly to: PeerState
  /** When (epoch ms). */
  readonly at: number
  /** The silence at the time of the change, in ms. */
  readonly silentMs: number
  /** Why, in words: `silent for 1042 ms`, `connection refused`, `answered steadily for 503 ms`, `restarted`. */
  readonly reason: string
}

/**
 * Something to watch: a node by id (one this node is connected to, or that connected to it and told its
 * endpoints), a node by endpoint (connected if needed), or an actor by its ref.
 *
 * @since 0.1.0
 */
export type WatchTarget =
  | { readonly node: string }
  | { readonly endpoint: string; readonly serverPublicKey?: string | undefined }
  | ActorRefLike

/**
 * The fields of an `ActorRef` a watch needs (structural, so that any ref type fits).
 *
 * @since 0.1.0
 */
export interface ActorRefLike {
  readonly _tag: "ActorRef"
  readonly name: string
  readonly node: string
  readonly endpoints: ReadonlyArray<string>
}

/**
 * Why a watch fired.
 * - `Dead`: the node was declared dead (silent past its bound, connection refused, or it never answered).
 * - `Restarted`: a new process answers at the node's endpoint (its incarnation changed): the watched one is gone.
 * - `ActorStopped`: the node answers but no longer serves the watched actor (or never did).
 * - `Left`: this node dropped the connection (discovery says the node left the cluster).
 * - `Refused`: the node refused this one (incompatible protocol version or heartbeat settings).
 * - `Unknown`: no node with that id is known to this node.
 *
 * @since 0.1.0
 */
export type DeathReason = "Dead" | "Restarted" | "ActorStopped" | "Left" | "Refused" | "Unknown"

/**
 * What a death watch reports, once.
 *
 * @since 0.1.0
 */
export interface DeathNotice {
  readonly reason: DeathReason
  /** The watched node's id, when known. */
  readonly nodeId: string | undefined
  /** The watched node's endpoint, when known. */
  readonly endpoint: string | undefined
  /** The watched actor's address (`@name`), for actor watches. */
  readonly actor: string | undefined
  /** When it was noticed (epoch ms). */
  readonly at: number
  /** Details in words. */
  readonly detail: string
}

/**
 * Where `node.ping` sends: a node by endpoint (connected if needed) or by id.
 *
 * @since 0.1.0
 */
export type PingTarget =
  | { readonly node: string }
  | { readonly endpoint: string; readonly serverPublicKey?: string | undefined }

/**
 * The answer to `node.ping`.
 *
 * @since 0.1.0
 */
export interface PingResult {
  /** Round trip from sending PING to receiving its PONG, in ms (fractional). */
  readonly rttMs: number
  /** The node that answered, when known (after its WELCOME). */
  readonly nodeId: string | undefined
  /** The load it reported. */
  readonly load: Load
}

/**
 * Heartbeat settings a node announces in HELLO/WELCOME (`NodeInfo.heartbeat`).
 *
 * @since 0.1.0
 */
export interface HeartbeatSettings {
  /** How often it pings the nodes it connected to, in ms. */
  readonly intervalMs: number
  /** The least silence after which it declares a peer dead, in ms. */
  readonly timeoutMs: number
  /** The UDP port on which it answers liveness probes, when it has one (docs/LIVENESS.md). */
  readonly udpPort?: number | undefined
}

// ---- options -------------------------------------------------------------------------------------------------

/**
 * Liveness options of a node (`NodeOptions.liveness`).
 *
 * @since 0.1.0
 */
export interface LivenessOptions {
  /**
   * How often a PING goes to each connected node. Default 250 ms. Lower detects no faster (the timeout decides)
   * but refreshes load signals more often.
   */
  readonly heartbeatInterval?: Duration.Input | undefined
  /**
   * Least silence after which a peer is declared dead (suspect at half of it). Default 1 s: on a healthy link a
   * frozen or cut-off peer is declared dead 1-1.05 s after its last message (plus two round trips), which is
   * 0.75-1.05 s after it froze when only pings flow (docs/LIVENESS.md section 3). At least twice the interval. The
   * larger of the two ends' timeouts applies on a link. Raise it when handlers block the event loop for longer.
   */
  readonly heartbeatTimeout?: Duration.Input | undefined
  /**
   * Cap of the adaptive bound: on a lossy or slow link the bound grows with the silences observed and the round
   * trip, up to this. Default 5 s.
   */
  readonly maxHeartbeatTimeout?: Duration.Input | undefined
  /**
   * How long a dead peer must answer steadily before it is alive again (doubled for each other death in the last
   * minute, up to 8x: a flapping peer comes back more slowly). Default 500 ms. A restarted process (new
   * incarnation) and a peer that was never alive are accepted at once.
   */
  readonly reviveAfter?: Duration.Input | undefined
  /**
   * Whether to probe a peer over UDP while it is silent on its connection, and to answer such probes. Default
   * true. A lossy link stalls TCP for seconds while the peer answers datagrams at once: without probes, such a
   * peer may be declared dead. Probes go only to peers that announced a UDP port, on plain (not CURVE)
   * connections to tcp endpoints, and only during silences.
   */
  readonly datagramProbes?: boolean | undefined
}

/**
 * Liveness options with defaults applied, in milliseconds.
 *
 * @since 0.1.0
 */
export interface ResolvedLivenessOptions {
  readonly heartbeatIntervalMs: number
  readonly heartbeatTimeoutMs: number
  readonly maxHeartbeatTimeoutMs: number
  readonly reviveAfterMs: number
  readonly datagramProbes: boolean
}

/**
 * The defaults.
 *
 * @since 0.1.0
 */
export const defaults: ResolvedLivenessOptions = Object.freeze({
  heartbeatIntervalMs: 250,
  heartbeatTimeoutMs: 1000,
  maxHeartbeatTimeoutMs: 5000,
  reviveAfterMs: 500,
  datagramProbes: true,
})

/** Largest heartbeat timeout a node accepts, its own or a peer's (ms): past it, a peer is as good as unwatched. */
export const MAX_TIMEOUT_MS = 3_600_000

/**
 * Applies defaults and checks ranges; returns a message naming the bad field, or the resolved options.
 *
 * @since 0.1.0
 */
export const resolve = (options: LivenessOptions = {}): ResolvedLivenessOptions | string => {
  const problems: Array<string> = []
  const ms = (name: string, input: Duration.Input | undefined, fallback: number): number => {
    if (input === undefined) return fallback
    const value = Duration.fromInput(input)
    const millis = value._tag === "Some" ? Duration.toMillis(value.value) : Number.NaN
    if (!Number.isFinite(millis) || millis <= 0 || millis > MAX_TIMEOUT_MS) {
      problems.push(`liveness.${name} must be a positive duration of at most 1 hour`)
      return fallback
    }
    return millis
  }
  const resolved: ResolvedLivenessOptions = {
    heartbeatIntervalMs: ms("heartbeatInterval", options.heartbeatInterval, defaults.heartbeatIntervalMs),
    heartbeatTimeoutMs: ms("heartbeatTimeout", options.heartbeatTimeout, defaults.heartbeatTimeoutMs),
    maxHeartbeatTimeoutMs: 0,
    reviveAfterMs: ms("reviveAfter", options.reviveAfter, defaults.reviveAfterMs),
    datagramProbes: options.datagramProbes ?? defaults.datagramProbes,
  }
  const max = ms(
    "maxHeartbeatTimeout",
    options.maxHeartbeatTimeout,
    Math.max(defaults.maxHeartbeatTimeoutMs, resolved.heartbeatTimeoutMs),
  )
  if (resolved.heartbeatTimeoutMs < 2 * resolved.heartbeatIntervalMs) {
    problems.push("liveness.heartbeatTimeout must be at least twice liveness.heartbeatInterval")
  }
  if (max < resolved.heartbeatTimeoutMs) problems.push("liveness.maxHeartbeatTimeout must be >= heartbeatTimeout")
  if (problems.length > 0) return problems.join("; ")
  return { ...resolved, maxHeartbeatTimeoutMs: max }
}

/**
 * Checks the heartbeat settings a peer announced; returns why they are refused, or `undefined` when they are
 * usable. Refused: a timeout below twice the interval (the peer would declare its own healthy peers dead between
 * two pings), or values that are not positive or exceed an hour.
 *
 * @since 0.1.0
 */
export const checkSettings = (settings: HeartbeatSettings): string | undefined => {
  const { intervalMs, timeoutMs } = settings
  if (!(intervalMs > 0) || !(timeoutMs > 0) || intervalMs > MAX_TIMEOUT_MS || timeoutMs > MAX_TIMEOUT_MS) {
    return `heartbeat settings out of range (intervalMs ${intervalMs}, timeoutMs ${timeoutMs})`
  }
  if (timeoutMs < 2 * intervalMs) {
    return `heartbeat timeout ${timeoutMs} ms is below twice the interval ${intervalMs} ms: the peer would flap`
  }
  return undefined
}

/**
 * The timeout used on a link, given this node's settings and the peer's: the larger of the two, so both ends of
 * a pair of nodes declare each other dead after the same silence whatever each was configured with.
 *
 * @since 0.1.0
 */
export const linkTimeoutMs = (local: HeartbeatSettings, remote: HeartbeatSettings | undefined): number =>
  remote === undefined ? local.timeoutMs : Math.max(local.timeoutMs, remote.timeoutMs)

/**
 * Whether a value is an actor ref as far as a watch is concerned.
 *
 * @since 0.1.0
 */
export const isActorRefLike = (u: WatchTarget): u is ActorRefLike => "_tag" in u && u._tag === "ActorRef"
