/**
 * Trace context on the hot path: the `CallContext` of a served call (its traceparent read lazily, so calls
 * that nobody traces never generate ids), and the `tp` header of outgoing calls (a child of the call the
 * current fiber serves, read without allocating when there is none).
 */
import { Fiber } from "effect"
import { type CallContext, type Caller, CurrentCall } from "../CallContext.ts"
import type { Headers } from "../Envelope.ts"
import * as TraceContext from "../TraceContext.ts"

/** The context of a call being served; `traceparent` is the caller's, or generated on first read. */
export class ServedCall implements CallContext {
  readonly method: string
  readonly caller: Caller
  readonly deadline: number
  readonly headers: Headers
  readonly callId: number
  #trace: string | undefined = undefined

  constructor(method: string, caller: Caller, deadline: number, headers: Headers, callId: number) {
    this.method = method
    this.caller = caller
    this.deadline = deadline
    this.headers = headers
    this.callId = callId
  }

  get traceparent(): string {
    if (this.#trace === undefined) {
      const sent = this.headers.tp
      this.#trace = TraceContext.parse(sent) !== undefined ? (sent as string) : TraceContext.make()
    }
    return this.#trace
  }
}

/** The call the running fiber serves, if any (no allocation). */
export const currentCall = (): CallContext | undefined => Fiber.getCurrent()?.getRef(CurrentCall)

/**
 * The headers of an outgoing call with its trace: unchanged when they already carry `tp` or when the current
 * fiber serves no call; otherwise a copy with `tp` = a child of the served call's trace.
 */
export const withTrace = (headers: Headers | null): Headers | null => {
  if (headers !== null && headers.tp !== undefined) return headers
  const served = currentCall()
  if (served === undefined) return headers
  const parent = served.traceparent
  // The served call's traceparent is valid (checked when read, or generated): a version-00 one is sliced.
  const tp =
    parent.length === 55 && parent.startsWith("00-")
      ? `${parent.slice(0, 36)}${TraceContext.newSpanId()}${parent.slice(52)}`
      : TraceContext.child(parent)
  return headers === null ? { tp } : { ...headers, tp }
}
