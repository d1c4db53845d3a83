/**
 * Counters a transport keeps on its hot path as plain numbers (no allocation per message), read as a snapshot.
 * Upper layers export them (Prometheus, `zactor top`).
 *
 * @since 0.1.0
 */

/**
 * A snapshot of a transport's counters since it started.
 *
 * @since 0.1.0
 */
export interface TransportMetrics {
  /** Application payloads accepted by `send`/`publish`. */
  readonly messagesSent: number
  /** Application payloads delivered to `received`/`published`. */
  readonly messagesReceived: number
  /** ZeroMQ messages written (each carries a batch of payloads). */
  readonly batchesSent: number
  /** ZeroMQ messages read. */
  readonly batchesReceived: number
  /** Bytes written, batch framing included. */
  readonly bytesSent: number
  /** Bytes read, batch framing included. */
  readonly bytesReceived: number
  /** `send` calls refused with `Overloaded` because a peer queue was full. */
  readonly overloaded: number
  /** Queued payloads dropped after `sendTimeout`, or because the peer or transport went away. */
  readonly sendFailed: number
  /** Inbound messages rejected (oversized, malformed, unknown version, unauthenticated, consumer too far behind). */
  readonly rejected: number
  /** CURVE handshakes refused (unknown key, bad key, plaintext peer). */
  readonly authFailures: number
  /** Outbound connections re-established after a drop. */
  readonly reconnects: number
  /** Connections lost (either direction). */
  readonly disconnects: number
  /** Payloads currently waiting in outbound queues. */
  readonly queuedMessages: number
}

/**
 * The mutable counters behind a snapshot; for transport implementations.
 *
 * @since 0.1.0
 */
export type MutableTransportMetrics = { -readonly [K in keyof TransportMetrics]: TransportMetrics[K] }

/**
 * A zeroed set of counters.
 *
 * @since 0.1.0
 */
export const make = (): MutableTransportMetrics => ({
  messagesSent: 0,
  messagesReceived: 0,
  batchesSent: 0,
  batchesReceived: 0,
  bytesSent: 0,
  bytesReceived: 0,
  overloaded: 0,
  sendFailed: 0,
  rejected: 0,
  authFailures: 0,
  reconnects: 0,
  disconnects: 0,
  queuedMessages: 0,
})
