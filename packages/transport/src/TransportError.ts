/**
 * The one error type of @zactor/transport. Callers match on `reason`, never on message strings; the
 * underlying zeromq error (with its `code` and `errno`) stays in `cause`.
 *
 * @since 0.1.0
 */
import { Data } from "effect"

/**
 * Why a transport operation failed.
 * - `InvalidEndpoint`: the endpoint string is malformed or uses an unsupported scheme.
 * - `InvalidOptions`: an option is out of range or a key is not a valid CURVE key.
 * - `BindFailed`: the address could not be bound (in use, not local, permission).
 * - `ConnectFailed`: the connection could not be set up (the endpoint could not be parsed by ZeroMQ).
 * - `Untrusted`: CURVE: the server's key is not among `curve.allowedServerKeys`; nothing was connected.
 * - `Overloaded`: the peer's outbound queue is full (messages or bytes); nothing was queued.
 * - `PeerUnknown`: no connection with that peer id exists (never connected, or already disconnected).
 * - `MessageTooLarge`: the payload exceeds `maxMessageBytes`.
 * - `Closed`: the transport was closed.
 *
 * @since 0.1.0
 */
export type TransportErrorReason =
  | "InvalidEndpoint"
  | "InvalidOptions"
  | "BindFailed"
  | "ConnectFailed"
  | "Untrusted"
  | "Overloaded"
  | "PeerUnknown"
  | "MessageTooLarge"
  | "Closed"

/**
 * A failed transport operation, with a closed `reason`.
 *
 * @since 0.1.0
 */
export class TransportError extends Data.TaggedError("TransportError")<{
  readonly reason: TransportErrorReason
  readonly message: string
  readonly endpoint?: string | undefined
  readonly peer?: string | undefined
  readonly cause?: unknown
}> {
  /** Guard that works across duplicated installs, where `instanceof` would not. */
  static is(u: unknown): u is TransportError {
    return typeof u === "object" && u !== null && (u as { _tag?: unknown })._tag === "TransportError"
  }
}
