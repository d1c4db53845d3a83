/**
 * @zactor/transport: moves opaque payloads between zactor processes over ZeroMQ (or in memory for tests),
 * with batching, bounded queues, heartbeats, CURVE admission and typed events. Knows nothing of actors.
 *
 * @since 0.1.0
 */

/** Batch framing of payloads inside one ZeroMQ frame. @since 0.1.0 */
export * as BatchFrame from "./BatchFrame.ts"
/** CURVE keys, key files and the connection key-binding proof. @since 0.1.0 */
export * as Curve from "./Curve.ts"
/** Endpoint parsing and validation. @since 0.1.0 */
export * as Endpoint from "./Endpoint.ts"
/** In-process networks for the memory transport. @since 0.1.0 */
export * as MemoryNetwork from "./MemoryNetwork.ts"
/** The in-memory transport for tests of upper layers. @since 0.1.0 */
export * as MemoryTransport from "./MemoryTransport.ts"
/** Peers and peer ids. @since 0.1.0 */
export * as Peer from "./Peer.ts"
/** The Transport contract. @since 0.1.0 */
export * from "./Transport.ts"
/** The transport error type. @since 0.1.0 */
export * from "./TransportError.ts"
/** Transport events. @since 0.1.0 */
export * as TransportEvent from "./TransportEvent.ts"
/** Transport counters. @since 0.1.0 */
export * as TransportMetrics from "./TransportMetrics.ts"
/** Transport options and defaults. @since 0.1.0 */
export * as TransportOptions from "./TransportOptions.ts"
/** The process-wide ZAP handler behind CURVE admission. @since 0.1.0 */
export * as ZapHandler from "./ZapHandler.ts"
/** The ZeroMQ transport. @since 0.1.0 */
export * as ZmqTransport from "./ZmqTransport.ts"
