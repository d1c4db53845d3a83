/**
 * Interceptors: code that runs around every call, on the calling side (add headers such as auth tokens or
 * trace context, log, measure) and on the serving side (authenticate the caller by its CURVE key, authorize,
 * log, measure). They compose as an onion: the first interceptor listed is the outermost.
 *
 * An interceptor sees the call and a `next` effect that runs the rest of the chain; it may change the call
 * (client side: headers), fail it (e.g. with `RpcError` `permission_denied`), or observe its outcome.
 *
 * @since 0.1.0
 */
import type { Effect } from "effect"
import type { CallContext, Target } from "./CallContext.ts"
import type { Headers } from "./Envelope.ts"

/**
 * A call about to be sent.
 *
 * @since 0.1.0
 */
export interface ClientCall {
  /** `Service/method` or `@actor/method`. */
  readonly method: string
  readonly target: Target
  readonly payload: unknown
  /** Headers to send; an interceptor passes a changed copy to `next` to add some. */
  readonly headers: Headers
}

/**
 * Runs around every call this node sends (unary and streaming).
 *
 * @since 0.1.0
 */
export type ClientInterceptor = (
  call: ClientCall,
  next: (call: ClientCall) => Effect.Effect<unknown, unknown>,
) => Effect.Effect<unknown, unknown>

/**
 * A call being served.
 *
 * @since 0.1.0
 */
export interface ServerCall {
  readonly method: string
  readonly payload: unknown
  /** Who calls (with the CURVE key proven on the connection), the deadline, the headers. */
  readonly context: CallContext
}

/**
 * Runs around every handler this node runs (unary, streaming, and tells).
 *
 * @since 0.1.0
 */
export type ServerInterceptor = (
  call: ServerCall,
  next: Effect.Effect<unknown, unknown>,
) => Effect.Effect<unknown, unknown>

/**
 * Wraps a handler effect in server interceptors, first listed outermost.
 *
 * @since 0.1.0
 */
export const applyServer = (
  interceptors: ReadonlyArray<ServerInterceptor>,
  call: ServerCall,
  handler: Effect.Effect<unknown, unknown>,
): Effect.Effect<unknown, unknown> => {
  let next = handler
  for (let i = interceptors.length - 1; i >= 0; i--) next = interceptors[i]!(call, next)
  return next
}

/**
 * Runs a call through client interceptors, first listed outermost, ending in `send`.
 *
 * @since 0.1.0
 */
export const applyClient = (
  interceptors: ReadonlyArray<ClientInterceptor>,
  call: ClientCall,
  send: (call: ClientCall) => Effect.Effect<unknown, unknown>,
): Effect.Effect<unknown, unknown> => {
  const step = (index: number, current: ClientCall): Effect.Effect<unknown, unknown> =>
    index === interceptors.length ? send(current) : interceptors[index]!(current, (changed) => step(index + 1, changed))
  return step(0, call)
}
