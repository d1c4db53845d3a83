/**
 * W3C Trace Context (`traceparent`) for calls between nodes. A call carries its trace in the `tp` header; the
 * node serving it exposes the trace in `CallContext.traceparent` and in its logs, and the calls its handler
 * makes continue it: same trace id, a new span id per outgoing call. A call that arrives without one gets a
 * fresh trace, generated only when something reads it (so untraced calls cost nothing on the hot path).
 *
 * This module only parses, formats and generates ids: it records no spans and exports nothing. Tracing
 * systems can pick the ids up from `CallContext` or from the logs.
 *
 * @since 0.1.0
 */
import { randomFillSync } from "node:crypto"

/**
 * A parsed `traceparent`.
 *
 * @since 0.1.0
 */
export interface TraceParent {
  /** 32 lowercase hex characters, not all zeros. */
  readonly traceId: string
  /** The span id of the caller's side of the call: 16 lowercase hex characters, not all zeros. */
  readonly spanId: string
  /** Trace flags, e.g. `1` when sampled. */
  readonly flags: number
}

/** The header carrying the traceparent in an envelope. @since 0.1.0 */
export const HEADER = "tp"

/** The trace flags zactor sets on traces it starts: sampled. @since 0.1.0 */
export const SAMPLED = 1

const ZERO_TRACE = "00000000000000000000000000000000"
const ZERO_SPAN = "0000000000000000"
const hexPattern = /^[0-9a-f]+$/

/**
 * Parses a `traceparent` header value; `undefined` when it is not a valid one (then a new trace starts).
 * Version `00` must be exactly 55 characters; later versions may append fields, which are ignored.
 *
 * @since 0.1.0
 */
export const parse = (value: unknown): TraceParent | undefined => {
  if (typeof value !== "string" || value.length < 55) return undefined
  const version = value.slice(0, 2)
  if (!hexPattern.test(version) || version === "ff") return undefined
  if (version === "00" ? value.length !== 55 : value.length > 55 && value[55] !== "-") return undefined
  if (value[2] !== "-" || value[35] !== "-" || value[52] !== "-") return undefined
  const traceId = value.slice(3, 35)
  const spanId = value.slice(36, 52)
  const flags = value.slice(53, 55)
  if (!hexPattern.test(traceId) || !hexPattern.test(spanId) || !hexPattern.test(flags)) return undefined
  if (traceId === ZERO_TRACE || spanId === ZERO_SPAN) return undefined
  return { traceId, spanId, flags: Number.parseInt(flags, 16) }
}

/**
 * Formats a traceparent (version `00`).
 *
 * @since 0.1.0
 */
export const format = (trace: TraceParent): string =>
  `00-${trace.traceId}-${trace.spanId}-${(trace.flags & 0xff).toString(16).padStart(2, "0")}`

// Ids come from a pooled random buffer: one randomFillSync per 170 traces instead of one per id.
const pool = Buffer.alloc(4080)
let poolOffset = pool.length

const randomHex = (bytes: number, zero: string): string => {
  for (;;) {
    if (poolOffset + bytes > pool.length) {
      randomFillSync(pool)
      poolOffset = 0
    }
    const hex = pool.toString("hex", poolOffset, poolOffset + bytes)
    poolOffset += bytes
    if (hex !== zero) return hex
  }
}

/**
 * A new random trace id (32 hex characters).
 *
 * @since 0.1.0
 */
export const newTraceId = (): string => randomHex(16, ZERO_TRACE)

/**
 * A new random span id (16 hex characters).
 *
 * @since 0.1.0
 */
export const newSpanId = (): string => randomHex(8, ZERO_SPAN)

/**
 * A `traceparent` that starts a new trace (sampled).
 *
 * @since 0.1.0
 */
export const make = (): string => `00-${newTraceId()}-${newSpanId()}-01`

/**
 * The `traceparent` of a call made inside the trace `parent` (a traceparent): the same trace id and flags, a
 * new span id. An invalid `parent` starts a new trace.
 *
 * @since 0.1.0
 */
export const child = (parent: string): string => {
  const parsed = parse(parent)
  return parsed === undefined ? make() : format({ traceId: parsed.traceId, spanId: newSpanId(), flags: parsed.flags })
}

/**
 * The trace id of a traceparent, or `undefined` when it is not valid.
 *
 * @since 0.1.0
 */
export const traceIdOf = (traceparent: string): string | undefined => parse(traceparent)?.traceId
