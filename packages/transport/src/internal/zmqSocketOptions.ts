/**
 * Translates resolved transport options into zeromq.js socket options, one function per socket role, so every
 * socket of a transport gets the same heartbeat, reconnect and limit settings (heartbeats must match on both
 * ends, see ZEROMQ-FACTS.md), and classifies zeromq errors into the transport's closed reasons.
 */
import type * as zmq from "zeromq"
import type { ResolvedTransportOptions } from "../TransportOptions.ts"
import type { WriteFailure } from "./outbox.ts"

type Common = zmq.SocketOptions<zmq.Dealer> & zmq.SocketOptions<zmq.Router>

/** Settings shared by the DEALERs and the ROUTER of a transport. */
const common = (options: ResolvedTransportOptions): Common => ({
  heartbeatInterval: options.heartbeatIntervalMs,
  heartbeatTimeout: options.heartbeatTimeoutMs,
  heartbeatTimeToLive: options.heartbeatTtlMs,
  handshakeInterval: options.handshakeIntervalMs,
  sendHighWaterMark: options.sendHighWaterMark,
  // No libzmq limit on input. With one, libzmq stops reading a connection whose pipe is full, and libzmq 4.3.5
  // aborts the whole process ("Assertion failed: !_io_error") when such a connection then fails a ZMTP heartbeat
  // or its peer closes (reproduced with bare zeromq.js, both socket types). The transport bounds what waits for
  // its consumer itself (`receiveHighWaterMark`, see ZmqTransport's `deliver`).
  receiveHighWaterMark: 0,
  linger: options.lingerMs,
  maxMessageSize: options.maxFrameBytes,
  // Writes never wait inside the binding: a refused write comes back at once and the outbox retries it.
  sendTimeout: 0,
})

/** The ROUTER that serves inbound peers. */
export const router = (
  options: ResolvedTransportOptions,
  zapDomain: string | undefined,
): zmq.SocketOptions<zmq.Router> => ({
  ...common(options),
  // Unroutable replies fail (EHOSTUNREACH) instead of vanishing, and a full peer pipe fails (EAGAIN) per peer.
  mandatory: true,
  // A client that reconnects with its routing id before the old connection timed out takes it over.
  handover: true,
  ...(options.curve === undefined || zapDomain === undefined
    ? {}
    : { curveServer: true, curveSecretKey: options.curve.secretKey, zapDomain, zapEnforceDomain: true }),
})

/** A DEALER for one outbound peer. */
export const dealer = (
  options: ResolvedTransportOptions,
  routingId: string,
  serverPublicKey: string | undefined,
): zmq.SocketOptions<zmq.Dealer> => ({
  ...common(options),
  routingId,
  // No ZMQ_IMMEDIATE: with it libzmq discards a dropped connection's unread input. The transport refuses writes
  // while the connection is down itself, so the outbox holds them, bounded, and reports what it drops.
  reconnectInterval: options.reconnectIntervalMs,
  reconnectMaxInterval: options.reconnectIntervalMaxMs,
  connectTimeout: options.connectTimeoutMs,
  ...(options.curve === undefined || serverPublicKey === undefined
    ? {}
    : {
        curveServerKey: serverPublicKey,
        curvePublicKey: options.curve.publicKey,
        curveSecretKey: options.curve.secretKey,
      }),
})

/**
 * Why PUB/SUB sockets run without ZMTP heartbeats: when a subscriber's consumer is slow its SUB pipe fills and libzmq
 * stops reading that connection; a heartbeat timeout (on either end) then tears it down while input is stopped, and
 * libzmq 4.3.5 aborts the whole process on the next step: "Assertion failed: _input_stopped" (a stale pipe
 * activation, libzmq issues #3937, #4767) or "Assertion failed: !_io_error" (a PONG owed to a buffered PING, #4364).
 * test/SubscriberStall.integration.test.ts reproduces both. Without heartbeats a publisher never waits for a slow
 * subscriber either: its pipe stays bounded by the high-water mark and what overflows is dropped. Dead connections
 * are still found: a crashed peer by TCP reset, a dead path by TCP keepalive (about 4 s when idle), and upper layers
 * (zactor topics) by heartbeats of their own.
 */
const pubSubLiveness = {
  heartbeatInterval: 0,
  tcpKeepalive: 1,
  tcpKeepaliveIdle: 1,
  tcpKeepaliveInterval: 1,
  tcpKeepaliveCount: 3,
} as const

/** The XPUB that publishes topics; drops for slow subscribers instead of blocking the publisher. */
export const publisher = (
  options: ResolvedTransportOptions,
  zapDomain: string | undefined,
): zmq.SocketOptions<zmq.XPublisher> => ({
  ...pubSubLiveness,
  handshakeInterval: options.handshakeIntervalMs,
  sendHighWaterMark: options.sendHighWaterMark,
  linger: options.lingerMs,
  maxMessageSize: options.maxFrameBytes,
  sendTimeout: 0,
  noDrop: false,
  ...(options.curve === undefined || zapDomain === undefined
    ? {}
    : { curveServer: true, curveSecretKey: options.curve.secretKey, zapDomain, zapEnforceDomain: true }),
})

/** The SUB that receives topics from every connected publisher. */
export const subscriber = (options: ResolvedTransportOptions): zmq.SocketOptions<zmq.Subscriber> => ({
  ...pubSubLiveness,
  handshakeInterval: options.handshakeIntervalMs,
  receiveHighWaterMark: options.receiveHighWaterMark,
  reconnectInterval: options.reconnectIntervalMs,
  reconnectMaxInterval: options.reconnectIntervalMaxMs,
  connectTimeout: options.connectTimeoutMs,
  linger: 0,
  maxMessageSize: options.maxFrameBytes,
})

/** The zeromq error code of a failure, if any. */
export const errorCode = (error: unknown): string | undefined =>
  typeof error === "object" && error !== null && typeof (error as { code?: unknown }).code === "string"
    ? (error as { code: string }).code
    : undefined

/** Classifies a rejected send: EAGAIN is back-pressure (retry), EHOSTUNREACH a vanished peer. */
export const classifyWrite = (error: unknown): WriteFailure => {
  switch (errorCode(error)) {
    case "EAGAIN":
      return "Busy"
    case "EHOSTUNREACH":
      return "Unreachable"
    default:
      return "Closed"
  }
}
