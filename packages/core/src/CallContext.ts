/**
 * What a handler knows about the call it serves, and what a caller may set per call. Per-call settings live
 * here, apart from construction options (`NodeOptions`).
 *
 * @since 0.1.0
 */
import { Context, type Duration } from "effect"
import type { Delivery } from "./DeliveryPolicy.ts"
import type { Headers } from "./Envelope.ts"

/**
 * The caller as the callee sees it.
 *
 * @since 0.1.0
 */
export interface Caller {
  /** The transport peer id of the connection the call came on (replies go back there). */
  readonly peerId: string
  /** The caller's node id from its HELLO, if it sent one. */
  readonly nodeId: string | undefined
  /**
   * The caller's CURVE public key (Z85), proven on this connection by the transport; `undefined` without
   * CURVE. Trust this, never an id claimed in headers or payloads.
   */
  readonly publicKey: string | undefined
}

/**
 * The context of one call being served.
 *
 * @since 0.1.0
 */
export interface CallContext {
  /** `Service/method` or `@actor/method`. */
  readonly method: string
  readonly caller: Caller
  /** Absolute deadline on this node's clock (epoch ms), derived from the timeout carried on the wire. */
  readonly deadline: number
  /** Per-call headers (idempotency key `ik`, attempt `at`, trace context `tp`/`ts`, application metadata). */
  readonly headers: Headers
  /** The correlation id of the call on its connection: with `caller.peerId` it names the call. */
  readonly callId: number
  /**
   * The W3C traceparent of the call: the caller's (header `tp`), or a new trace when it sent none (generated
   * on first read). Calls the handler makes continue this trace (see `TraceContext`).
   */
  readonly traceparent: string
}

/**
 * The call the current fiber serves, set by the node for every handler it runs (and inherited by the fibers
 * the handler forks): outgoing calls read it to continue the trace, the node's logger to bind the call id.
 *
 * @since 0.1.0
 */
export const CurrentCall = Context.Reference<CallContext | undefined>("@zactor/core/CallContext/CurrentCall", {
  defaultValue: () => undefined,
})

/**
 * Per-call settings.
 *
 * @since 0.1.0
 */
export interface CallOptions {
  /** Deadline of this call. Default: the method's declared timeout, else the node's `defaultTimeout`. */
  readonly timeout?: Duration.Input | undefined
  /** Delivery of this call. Default: the method's declared delivery, else `at-most-once`. */
  readonly delivery?: Delivery | undefined
  /** Idempotency key: makes the call safe to retry, and lets the callee deduplicate it. */
  readonly idempotencyKey?: string | undefined
  /** Application metadata sent with the call. */
  readonly headers?: { readonly [key: string]: string } | undefined
  /**
   * The W3C traceparent this call continues (it is sent with a new span id). Default: the trace of the call
   * the current fiber serves, if any (Effect handlers continue their trace on their own; Promise handlers pass
   * `context.traceparent`).
   */
  readonly traceparent?: string | undefined
  /**
   * Server streams: how many elements the callee may send ahead of consumption (flow control). More is
   * faster for fast consumers, less bounds memory for slow ones. Default 64.
   */
  readonly streamCredit?: number | undefined
}

/**
 * Where a client sends its calls.
 * - `{ endpoint }`: a node at a known endpoint (connected on first use; with CURVE, `serverPublicKey` is the
 *   node's Z85 public key, verified during the handshake).
 * - `{ node }`: a connected node by its id.
 * - `undefined`: any connected node that serves the contract, least outstanding calls first.
 *
 * @since 0.1.0
 */
export type Target =
  | { readonly endpoint: string; readonly serverPublicKey?: string | undefined }
  | { readonly node: string }
  | undefined
