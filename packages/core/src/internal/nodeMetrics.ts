/**
 * A node's counters: plain numbers bumped on the hot path, read as a snapshot by `Node.metrics()`; plus the
 * distributions behind `Node.metricsSnapshot()` (latency histograms, failures by code, dead letters by
 * reason), kept in the same object so the hot path reaches them without another reference.
 */
import * as Histogram from "./histogram.ts"

/** The counters of one node. */
export interface NodeMetrics {
  /** Calls this node sent. */
  callsStarted: number
  callsSucceeded: number
  /** Calls that failed with an application error or a framework code. */
  callsFailed: number
  callsTimedOut: number
  callsCancelled: number
  /** Requests this node served (handler started). */
  requestsServed: number
  /** Requests refused before a handler ran: unknown target, bad payload, overload, expired. */
  requestsRejected: number
  /** Requests whose deadline had passed on arrival or while waiting; dropped without running. */
  requestsExpired: number
  /** Handlers interrupted by the caller's CANCEL. */
  requestsCancelled: number
  /** Handlers stopped because their caller fell silent past its heartbeat timeout (dead, frozen, cut off). */
  requestsAbandoned: number
  tellsReceived: number
  /** Tells dropped (unknown target, bad payload, full mailbox). */
  tellsDropped: number
  /** Payloads that were not valid envelopes. */
  malformed: number
  /** Replies or stream items for a correlation id with no pending call (late, duplicate or forged). */
  unknownCorrelation: number
  /** Peers refused for an incompatible protocol version. */
  incompatiblePeers: number
  /** Unexpected exceptions while dispatching received payloads (bugs); the node keeps serving. */
  defects: number
  /**
   * Calls and tells this node handed to the transport for the wire, every attempt counted: a retried call
   * counts once per attempt, a tell once (an at-least-once tell once per attempt).
   */
  sent: number
  /** ACKs received for at-least-once calls this node sent. */
  acked: number
  /** Attempts after the first, for calls retried: at-least-once ones, and at-most-once ones safe to repeat. */
  retried: number
  /** Requests answered from the dedupe window without running the handler. */
  deduplicated: number
  /** Messages given up on (see node.deadLetters). */
  deadLettered: number
  /** Calls refused at once because the target's circuit breaker was open. */
  circuitRejected: number
  /** Times a target's circuit breaker opened. */
  circuitOpened: number
  /** Calls refused at once because this node had its limit of calls in flight to the target. */
  concurrencyRejected: number
  /** Times a peer was declared dead (see docs/LIVENESS.md). */
  peersDead: number
  /** Times a dead peer was accepted back. */
  peersRevived: number
  /** Heartbeat and health PINGs sent. */
  pingsSent: number
  /** PONGs received. */
  pongsReceived: number
}

/** The counters plus the distributions the runtime updates. */
export interface RuntimeMetrics extends NodeMetrics {
  /** Round trip of unary calls this node sent that got a REPLY or FAILURE, in ms. */
  readonly callLatency: Histogram.Histogram
  /** Time from a request's arrival to its answer (or a stream's end), for requests this node served, in ms. */
  readonly serveLatency: Histogram.Histogram
  /** FAILUREs received for calls this node sent, by code (`application` for contract errors). */
  readonly callErrors: Record<string, number>
  /** FAILUREs this node sent, by code. */
  readonly serveErrors: Record<string, number>
  /** Dead letters by reason. */
  readonly deadLetters: Record<string, number>
}

/** Zeroed counters and empty distributions. */
export const make = (): RuntimeMetrics => ({
  callsStarted: 0,
  callsSucceeded: 0,
  callsFailed: 0,
  callsTimedOut: 0,
  callsCancelled: 0,
  requestsServed: 0,
  requestsRejected: 0,
  requestsExpired: 0,
  requestsCancelled: 0,
  requestsAbandoned: 0,
  tellsReceived: 0,
  tellsDropped: 0,
  malformed: 0,
  unknownCorrelation: 0,
  incompatiblePeers: 0,
  defects: 0,
  sent: 0,
  acked: 0,
  retried: 0,
  deduplicated: 0,
  deadLettered: 0,
  circuitRejected: 0,
  circuitOpened: 0,
  concurrencyRejected: 0,
  peersDead: 0,
  peersRevived: 0,
  pingsSent: 0,
  pongsReceived: 0,
  callLatency: Histogram.make(),
  serveLatency: Histogram.make(),
  callErrors: {},
  serveErrors: {},
  deadLetters: {},
})

/** Adds one to a counter by key (codes and reasons are a small closed set, so the record stays small). */
export const countBy = (counts: Record<string, number>, key: string): void => {
  counts[key] = (counts[key] ?? 0) + 1
}

/** The plain counters, for `Node.metrics()`. */
export const counters = (metrics: RuntimeMetrics): NodeMetrics => {
  const { callLatency: _l, serveLatency: _s, callErrors: _c, serveErrors: _e, deadLetters: _d, ...plain } = metrics
  return plain
}
