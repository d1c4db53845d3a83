/**
 * A node's metrics as one snapshot: its counters, its transport's counters, gauges (calls in flight, queue
 * depths, peers), latency histograms, failures by code and dead letters by reason. `node.metricsSnapshot()`
 * takes one; the admin service sends it to `zactor top`; `Prometheus.render` turns snapshots into the
 * Prometheus text format. The shapes are Schemas so the snapshot travels on the wire as it is.
 *
 * The counters are kept as plain numbers on the hot path (no Effect `Metric` per call); a snapshot copies them.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/**
 * Upper bounds of the latency buckets, in milliseconds; a last, implicit bucket holds the rest.
 *
 * @since 0.1.0
 */
export { BOUNDS_MS } from "./internal/histogram.ts"

/**
 * A latency histogram: `counts[i]` observations fell at or under `boundsMs[i]` and above the previous bound
 * (not cumulative); the last count is above every bound. `sumMs` and `count` cover all observations.
 *
 * @since 0.1.0
 */
export const Histogram = Schema.Struct({
  boundsMs: Schema.Array(Schema.Number),
  counts: Schema.Array(Schema.Number),
  sumMs: Schema.Number,
  count: Schema.Number,
})

/** @since 0.1.0 */
export type Histogram = typeof Histogram.Type

/**
 * One connection this node made, as the snapshot shows it.
 *
 * @since 0.1.0
 */
export const Peer = Schema.Struct({
  endpoint: Schema.String,
  /** Its node id once it answered HELLO. */
  node: Schema.NullOr(Schema.String),
  /** Calls sent to it waiting for an outcome. */
  outstanding: Schema.Number,
  /** Whether its connection is up now. */
  connected: Schema.Boolean,
  /** Its liveness state as this node sees it (`alive`, `suspect`, `dead`; see `Liveness`). */
  state: Schema.String,
  /** Last round trip of an app-level heartbeat PING, in ms; `null` before the first PONG. */
  rttMs: Schema.NullOr(Schema.Number),
})

/** @since 0.1.0 */
export type Peer = typeof Peer.Type

const Counts = Schema.Record(Schema.String, Schema.Number)

/**
 * One actor's mailbox, as the snapshot lists the deepest ones.
 *
 * @since 0.1.0
 */
export const MailboxDepth = Schema.Struct({
  /** The actor's address on its node, `@name`. */
  actor: Schema.String,
  /** Messages waiting in its mailbox (not counting the one it is processing). */
  depth: Schema.Number,
})

/** @since 0.1.0 */
export type MailboxDepth = typeof MailboxDepth.Type

/**
 * A node's metrics at one instant.
 *
 * @since 0.1.0
 */
export const Snapshot = Schema.Struct({
  /** The node id. */
  node: Schema.String,
  /** When it was taken (epoch ms). */
  at: Schema.Number,
  /** How long the node has run, in ms. */
  uptimeMs: Schema.Number,
  /** The node's counters since it started (see `Node.metrics()`). */
  counters: Counts,
  /** The transport's counters since it started: messages, bytes, reconnects, auth failures... */
  transport: Counts,
  /** Values now: `inflight` (requests being served), `outstanding` (calls waiting for an outcome), `queued`
   * (payloads in the transport's outbound queues), `peers` (connections this node made), and the actors'
   * mailboxes: `mailboxQueued` (messages waiting in all of them), `mailboxMax` (the deepest one),
   * `mailboxBacklogged` (actors with a message waiting). */
  gauges: Counts,
  /** The deepest actor mailboxes, deepest first: at most five, empty actors left out. */
  mailboxes: Schema.Array(MailboxDepth),
  /** Round trips of calls this node sent (`call`) and time to answer requests it served (`serve`). */
  latency: Schema.Struct({ call: Histogram, serve: Histogram }),
  /** FAILUREs by code: received for calls sent (`call`, local deadline expiries included), sent (`serve`). */
  errors: Schema.Struct({ call: Counts, serve: Counts }),
  /** Dead letters by reason. */
  deadLetters: Counts,
  /** The connections this node made. */
  peers: Schema.Array(Peer),
})

/** @since 0.1.0 */
export type Snapshot = typeof Snapshot.Type

/**
 * The value under which a fraction `q` (0-1) of a histogram's observations fall, in ms, interpolated
 * linearly inside the bucket; `undefined` for an empty histogram. Observations above the last bound report
 * the last bound.
 *
 * @since 0.1.0
 */
export const quantile = (histogram: Histogram, q: number): number | undefined => {
  if (histogram.count <= 0) return undefined
  const rank = Math.min(1, Math.max(0, q)) * histogram.count
  let seen = 0
  for (let i = 0; i < histogram.counts.length; i++) {
    const inBucket = histogram.counts[i] ?? 0
    if (inBucket > 0 && seen + inBucket >= rank) {
      const lower = i === 0 ? 0 : histogram.boundsMs[i - 1]!
      const upper = histogram.boundsMs[i]
      if (upper === undefined) return lower
      return lower + ((upper - lower) * (rank - seen)) / inBucket
    }
    seen += inBucket
  }
  return histogram.boundsMs[histogram.boundsMs.length - 1]
}

/**
 * What a histogram recorded between two snapshots of it (`later` minus `earlier`).
 *
 * @since 0.1.0
 */
export const difference = (later: Histogram, earlier: Histogram): Histogram => ({
  boundsMs: later.boundsMs,
  counts: later.counts.map((count, i) => Math.max(0, count - (earlier.counts[i] ?? 0))),
  sumMs: Math.max(0, later.sumMs - earlier.sumMs),
  count: Math.max(0, later.count - earlier.count),
})

/**
 * The mean of a histogram's observations in ms, `undefined` when empty.
 *
 * @since 0.1.0
 */
export const mean = (histogram: Histogram): number | undefined =>
  histogram.count > 0 ? histogram.sumMs / histogram.count : undefined
