/**
 * The errors that cross processes: a closed set of codes (what went wrong, and whether a retry may help),
 * carried on the wire by name. Application errors declared by a contract travel as themselves, not as codes.
 *
 * @since 0.1.0
 */
import { Data } from "effect"

/**
 * The closed set of framework error codes. The string values are the wire form.
 *
 * @since 0.1.0
 */
export const Code = {
  /** The target could not be reached (not connected, connection lost, process died). Retryable. */
  Unavailable: "unavailable",
  /** The call's deadline passed before a reply arrived; the callee drops expired work. */
  DeadlineExceeded: "deadline_exceeded",
  /** The caller cancelled the call. */
  Cancelled: "cancelled",
  /** No such service, method or actor at the target. */
  NotFound: "not_found",
  /** The payload failed the contract's schema. */
  InvalidArgument: "invalid_argument",
  /** The callee (or a queue on the way) is at capacity. Retryable after a backoff. */
  Overloaded: "overloaded",
  /** The callee failed unexpectedly (a defect in a handler, or an error not declared by the contract). */
  Internal: "internal",
  /** The caller's identity could not be established (CURVE required). */
  Unauthenticated: "unauthenticated",
  /** The caller is known but not allowed to make this call. */
  PermissionDenied: "permission_denied",
  /** The peers speak incompatible protocol versions. */
  IncompatibleVersion: "incompatible_version",
  /** The same idempotency key was used with a different payload. */
  IdempotencyConflict: "idempotency_conflict",
} as const

/**
 * A framework error code.
 *
 * @since 0.1.0
 */
export type Code = (typeof Code)[keyof typeof Code]

const codes: ReadonlySet<string> = new Set(Object.values(Code))

/**
 * Whether a string is a known framework error code.
 *
 * @since 0.1.0
 */
export const isCode = (u: unknown): u is Code => typeof u === "string" && codes.has(u)

/**
 * Whether a failure with this code may succeed if the call is sent again (to this or another instance).
 * Only calls that are safe to repeat are ever retried; this says whether repeating can help.
 *
 * @since 0.1.0
 */
export const isRetryable = (code: Code): boolean => code === Code.Unavailable || code === Code.Overloaded

/**
 * Why this node refused a call itself, without sending it (never on the wire):
 * - `circuit-open`: the target's circuit breaker is open (code `unavailable`).
 * - `concurrency-limit`: this node already has its limit of calls in flight to the target (code `overloaded`).
 * - `peer-dead`: the target was declared dead by liveness (code `unavailable`).
 *
 * @since 0.1.0
 */
export type RefusalReason = "circuit-open" | "concurrency-limit" | "peer-dead"

/**
 * A framework failure of a call: a closed `code`, a human-readable message, and where known the method and
 * the payload field at fault.
 *
 * @since 0.1.0
 */
export class RpcError extends Data.TaggedError("RpcError")<{
  readonly code: Code
  readonly message: string
  /** Set when this node refused the call itself (see `RefusalReason`). */
  readonly reason?: RefusalReason | undefined
  /** `Service/method` (or `@actor/method`) of the call, when known. */
  readonly method?: string | undefined
  /** Path of the offending field for `invalid_argument`, e.g. `["items", 2, "price"]`. */
  readonly path?: ReadonlyArray<string | number> | undefined
  /** Set on `unavailable` when an at-least-once attempt got no ACK in time (the request was probably lost). */
  readonly lostAck?: boolean | undefined
  /** How many attempts were made, when the call was retried. */
  readonly attempts?: number | undefined
  readonly cause?: unknown
}> {
  /** Guard that works across duplicated installs, where `instanceof` would not. */
  static is(u: unknown): u is RpcError {
    return typeof u === "object" && u !== null && (u as { _tag?: unknown })._tag === "RpcError"
  }
}

/**
 * An error raised by the remote side that this side's contract does not declare (for example a newer server
 * with more error types). The remote `_tag` and message are kept.
 *
 * @since 0.1.0
 */
export class RemoteDefect extends Data.TaggedError("RemoteDefect")<{
  readonly method: string
  readonly remoteTag: string | undefined
  readonly message: string
}> {
  /** Guard that works across duplicated installs. */
  static is(u: unknown): u is RemoteDefect {
    return typeof u === "object" && u !== null && (u as { _tag?: unknown })._tag === "RemoteDefect"
  }
}

/**
 * Shorthand constructor.
 *
 * @since 0.1.0
 */
export const make = (code: Code, message: string, method?: string): RpcError => new RpcError({ code, message, method })
