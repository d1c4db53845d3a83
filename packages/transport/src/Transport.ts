/**
 * The Transport contract: moving opaque payloads between processes. Two implementations honour it:
 * `ZmqTransport` (ZeroMQ over tcp, ipc, inproc) and `MemoryTransport` (in-process, for tests of upper layers).
 * It knows nothing of actors, replies, acks or retries, and never calls into code above it: it reports through
 * return values and streams.
 *
 * Invariants every implementation keeps (checked by `transportConformance` in `@zactor/transport/testing`):
 * - Per-peer ordering: payloads sent to one peer are received in the order sent (or lost, never reordered).
 * - At most once: a payload is delivered zero or one time. Loss is reported (`SendFailed`) where it is known.
 * - Bounded memory: a peer's outbound queue is bounded by count and bytes; `send` fails with `Overloaded`
 *   instead of growing it, and never blocks the event loop.
 * - Bad input from a peer is rejected, counted and reported, and never harms other peers.
 * - `close` is idempotent; after it every operation fails with `Closed`.
 *
 * @since 0.1.0
 */
import { Context, type Effect, type Stream } from "effect"
import type { Peer, PeerId } from "./Peer.ts"
import type { TransportError } from "./TransportError.ts"
import type { TransportEvent } from "./TransportEvent.ts"
import type { TransportMetrics } from "./TransportMetrics.ts"

/**
 * Payloads that arrived from one peer in one ZeroMQ message (a batch), in send order.
 *
 * @since 0.1.0
 */
export interface Received {
  readonly peer: Peer
  readonly payloads: ReadonlyArray<Uint8Array>
}

/**
 * Payloads published on one topic that arrived together.
 *
 * @since 0.1.0
 */
export interface Published {
  readonly topic: string
  readonly payloads: ReadonlyArray<Uint8Array>
}

/**
 * Per-connection settings.
 *
 * @since 0.1.0
 */
export interface ConnectOptions {
  /** Z85 public key of the server; required when this transport has CURVE on, ignored otherwise. */
  readonly serverPublicKey?: string | undefined
}

/**
 * The operations of a transport.
 *
 * @since 0.1.0
 */
export interface TransportShape {
  /**
   * Binds an inbound endpoint (`tcp://127.0.0.1:*` picks a free port) and returns the resolved endpoint.
   * Fails with `InvalidEndpoint` or `BindFailed` (e.g. address in use).
   */
  readonly bind: (endpoint: string) => Effect.Effect<string, TransportError>
  /** The resolved endpoints bound so far. */
  readonly endpoints: () => ReadonlyArray<string>
  /**
   * This transport's CURVE public key (Z85) when CURVE is on, else `undefined`: what a peer needs to connect to
   * it, e.g. published in discovery records.
   */
  readonly publicKey: string | undefined
  /**
   * Opens an outbound connection and returns its peer at once; ZeroMQ connects (and reconnects) in the
   * background, reported on `events`. Payloads sent before the connection is up wait up to `sendTimeout`.
   * Connecting twice to one endpoint returns the same peer.
   */
  readonly connect: (endpoint: string, options?: ConnectOptions) => Effect.Effect<Peer, TransportError>
  /** Closes an outbound connection; queued payloads are dropped and reported. Idempotent. */
  readonly disconnect: (peer: PeerId) => Effect.Effect<void>
  /**
   * Queues a payload for a peer. It leaves with the other payloads queued in the same event-loop turn.
   * Fails with `Overloaded` (queue full), `MessageTooLarge`, `PeerUnknown` or `Closed`; success means queued,
   * not delivered.
   */
  readonly send: (peer: PeerId, payload: Uint8Array) => Effect.Effect<void, TransportError>
  /**
   * `send` without an Effect: returns the error instead of failing. For hot paths of upper layers. With
   * `more`, the caller expects more payloads for this peer shortly (a server with other calls of this peer still
   * running): the payload may wait for the end of this event-loop iteration, so that answers completed by
   * separate callbacks (timers, I/O, fibers resumed one by one) leave together instead of one message each.
   */
  readonly offer: (peer: PeerId, payload: Uint8Array, more?: boolean) => TransportError | undefined
  /** Everything received from all peers. A single consumer is expected (this or the poll/await pair). */
  readonly received: Stream.Stream<Received>
  /**
   * Hot-path alternative to `received`: the next received batch if one is waiting, without waiting. Upper
   * layers that process every message loop over `pollReceived` and `awaitReceived` to avoid a scheduler turn
   * per wake-up. Do not mix with consuming `received`.
   */
  readonly pollReceived: () => Received | undefined
  /** Resolves true when `pollReceived` has a batch, false once the transport closed and all was taken. */
  readonly awaitReceived: () => Promise<boolean>
  /**
   * Connection and input events. Each subscriber first receives the 256 most recent events (so events from
   * start-up are not lost to a subscription race), then live ones; it ends after the `Closed` event.
   */
  readonly events: Stream.Stream<TransportEvent>
  /** Binds the publish endpoint (an XPUB socket) and returns the resolved endpoint. */
  readonly bindPublisher: (endpoint: string) => Effect.Effect<string, TransportError>
  /** Publishes a payload on a topic to every subscriber whose prefix matches. Never blocks on slow subscribers. */
  readonly publish: (topic: string, payload: Uint8Array) => Effect.Effect<void, TransportError>
  /** Connects the subscriber socket to a publisher endpoint. */
  readonly connectSubscriber: (endpoint: string, options?: ConnectOptions) => Effect.Effect<void, TransportError>
  /** Subscribes to topics starting with `prefix` (`""` for all). */
  readonly subscribe: (prefix: string) => Effect.Effect<void, TransportError>
  /** Drops a subscription made with `subscribe`. */
  readonly unsubscribe: (prefix: string) => Effect.Effect<void, TransportError>
  /** Everything received on subscribed topics. A single consumer is expected. */
  readonly published: Stream.Stream<Published>
  /** A snapshot of the counters. */
  readonly metrics: () => TransportMetrics
  /** Closes every socket, letting sent data drain for `linger`. Idempotent. */
  readonly close: Effect.Effect<void>
}

/**
 * The transport service.
 *
 * @since 0.1.0
 */
export class Transport extends Context.Service<Transport, TransportShape>()("@zactor/transport/Transport") {}
