/**
 * What a transport reports about its connections, as a typed stream: connection lifecycle from the ZeroMQ
 * socket monitor, inbound peers seen for the first time, queued messages that could not be delivered, and
 * rejected input. Upper layers (liveness, metrics, logs) consume these; the transport never calls up.
 *
 * @since 0.1.0
 */
import type { PeerId } from "./Peer.ts"

/**
 * Why input from a peer was rejected. Every rejection is also counted in `TransportMetrics.rejected`.
 * - `TooLarge`: a payload or message exceeded `maxMessageBytes` / `maxFrameBytes`.
 * - `Malformed`: the batch frame could not be parsed (truncated, bad lengths, wrong frame count).
 * - `UnsupportedVersion`: the batch frame carries a framing version this transport does not speak.
 * - `Unauthenticated`: with CURVE on, the batch lacks a valid key-binding proof.
 * - `Overloaded`: the consumer fell more than its queue plus `receiveHighWaterMark` batches, or `maxReceivedBytes`,
 *   behind (DEALER/ROUTER input); batches are dropped until it catches up. Reported once per streak of drops; every
 *   dropped batch is counted.
 *
 * @since 0.1.0
 */
export type RejectReason = "TooLarge" | "Malformed" | "UnsupportedVersion" | "Unauthenticated" | "Overloaded"

/**
 * Why queued messages were dropped before reaching a peer.
 * - `Timeout`: the peer stayed unreachable or back-pressured for `sendTimeout`.
 * - `Unreachable`: the peer's connection is gone (inbound peer disconnected).
 * - `Closed`: the transport or the peer connection was closed with messages still queued.
 *
 * @since 0.1.0
 */
export type SendFailureReason = "Timeout" | "Unreachable" | "Closed"

/**
 * A transport event. `Closed` is the last event of a transport; the stream ends after it. `endpoint` is the remote endpoint for outbound peers and the local bound endpoint for
 * inbound connections (ZeroMQ's monitor does not tell which inbound peer an event concerns).
 *
 * @since 0.1.0
 */
export type TransportEvent =
  | { readonly _tag: "Listening"; readonly endpoint: string }
  | { readonly _tag: "Accepted"; readonly endpoint: string }
  | { readonly _tag: "Connected"; readonly peer: PeerId; readonly endpoint: string }
  | { readonly _tag: "Disconnected"; readonly peer: PeerId | undefined; readonly endpoint: string }
  | {
      readonly _tag: "ConnectRetried"
      readonly peer: PeerId
      readonly endpoint: string
      readonly intervalMs: number
    }
  | {
      readonly _tag: "HandshakeFailed"
      readonly peer: PeerId | undefined
      readonly endpoint: string
      readonly reason: "Auth" | "Protocol" | "Other"
      readonly detail: string
    }
  | { readonly _tag: "PeerSeen"; readonly peer: PeerId; readonly publicKey: string | undefined }
  | {
      readonly _tag: "SendFailed"
      readonly peer: PeerId
      readonly messages: number
      readonly reason: SendFailureReason
    }
  | {
      readonly _tag: "InputRejected"
      readonly peer: PeerId | undefined
      readonly reason: RejectReason
      readonly detail: string
    }
  | { readonly _tag: "SubscriptionChanged"; readonly topic: string; readonly subscribed: boolean }
  | { readonly _tag: "Closed" }

/**
 * The `_tag` of each event kind.
 *
 * @since 0.1.0
 */
export type TransportEventTag = TransportEvent["_tag"]

/**
 * Narrows an event to one kind.
 *
 * @since 0.1.0
 */
export const is =
  <T extends TransportEventTag>(tag: T) =>
  (event: TransportEvent): event is Extract<TransportEvent, { _tag: T }> =>
    event._tag === tag

/**
 * Whether an event concerns the given peer.
 *
 * @since 0.1.0
 */
export const concerns =
  (peer: PeerId) =>
  (event: TransportEvent): boolean =>
    "peer" in event && event.peer === peer
