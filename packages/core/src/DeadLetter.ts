/**
 * Dead letters: messages a node gave up on, with the reason, the target and the attempt count, published on
 * `node.deadLetters` and counted in the node's metrics. Nothing that a node drops is dropped silently.
 *
 * @since 0.1.0
 */

/**
 * Why a message became a dead letter.
 * - `expired`: its deadline passed before it could be served (on arrival, or while waiting).
 * - `unroutable`: no service, method or actor at the target (`not_found`), or no node to send it to.
 * - `rejected`: refused before a handler ran (invalid payload, incompatible peer, permission).
 * - `over-limit`: the node was at its concurrent-call limit (`overloaded`).
 * - `mailbox-full`: an actor's mailbox was full.
 * - `retries-exhausted`: a retried call (at-least-once, or safe to repeat) failed on every attempt.
 * - `undeliverable`: the transport could not hand it to the peer (queue timeout, peer gone).
 *
 * @since 0.1.0
 */
export type DeadLetterReason =
  | "expired"
  | "unroutable"
  | "rejected"
  | "over-limit"
  | "mailbox-full"
  | "retries-exhausted"
  | "undeliverable"

/**
 * One message given up on.
 *
 * @since 0.1.0
 */
export interface DeadLetter {
  readonly reason: DeadLetterReason
  /** `Service/method`, `@actor/method`, or the peer for transport drops. */
  readonly target: string
  /** `inbound` for messages this node received, `outbound` for ones it sent. */
  readonly direction: "inbound" | "outbound"
  /** Attempts made (outbound), or the attempt number the message carried (inbound, 1 if none). */
  readonly attempt: number
  /** Number of messages this entry stands for (transport drops report a batch). */
  readonly count: number
  /** Human-readable detail. */
  readonly detail: string
  /** When it was given up on (epoch ms). */
  readonly at: number
}
