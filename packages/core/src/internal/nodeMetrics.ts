/**
 * A node's counters: plain numbers bumped on the hot path, read as a snapshot by `Node.metrics()`.
 */

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
  /** ACKs received for at-least-once calls this node sent. */
  acked: number
  /** Attempts after the first, for at-least-once calls. */
  retried: number
  /** Requests answered from the dedupe window without running the handler. */
  deduplicated: number
  /** Messages given up on (see node.deadLetters). */
  deadLettered: number
}

/** Zeroed counters. */
export const make = (): NodeMetrics => ({
  callsStarted: 0,
  callsSucceeded: 0,
  callsFailed: 0,
  callsTimedOut: 0,
  callsCancelled: 0,
  requestsServed: 0,
  requestsRejected: 0,
  requestsExpired: 0,
  requestsCancelled: 0,
  tellsReceived: 0,
  tellsDropped: 0,
  malformed: 0,
  unknownCorrelation: 0,
  incompatiblePeers: 0,
  defects: 0,
  acked: 0,
  retried: 0,
  deduplicated: 0,
  deadLettered: 0,
})
