/**
 * The envelopes that travel over PUB/SUB (docs/PROTOCOL.md section 7): EVENTS, a run of consecutive events of one
 * publisher and epoch, and BEAT, a publisher's heartbeat carrying its last sequence number. Both are msgpack arrays
 * in the same `[version, kind, ...]` shape as the envelopes of section 3, with kinds from a range (20-29) that the
 * ROUTER/DEALER envelopes never use. The transport topic frame of a zactor topic is `zt/<name>/`.
 *
 * Decoding never throws: anything unusable comes back `undefined` and the caller counts it.
 */

import { PROTOCOL_VERSION } from "../Envelope.ts"
import { unpackWire, wirePackr } from "./wirePackr.ts"

/** Kind of an EVENTS envelope. */
export const KIND_EVENTS = 20
/** Kind of a BEAT envelope. */
export const KIND_BEAT = 21

/** One event on the wire: its key (nil when the topic has none) and its body as the topic's codec encoded it. */
export type WireEvent = readonly [key: string | null, body: unknown]

/** `[1, 20, publisher, epoch, firstSeq, events]`: events `firstSeq`, `firstSeq + 1`, ... in order. */
export type EventsEnvelope = readonly [
  version: number,
  kind: 20,
  publisher: string,
  epoch: number,
  firstSeq: number,
  events: ReadonlyArray<WireEvent>,
]

/** `[1, 21, publisher, epoch, lastSeq, intervalMs, closing]`. */
export type BeatEnvelope = readonly [
  version: number,
  kind: 21,
  publisher: string,
  epoch: number,
  lastSeq: number,
  intervalMs: number,
  closing: boolean,
]

/** Either PUB/SUB envelope. */
export type TopicEnvelope = EventsEnvelope | BeatEnvelope

/** The transport topic frame (ZeroMQ subscription prefix) of a topic. */
export const frameOf = (name: string): string => `zt/${name}/`

/** Encodes an EVENTS envelope. */
export const encodeEvents = (
  publisher: string,
  epoch: number,
  firstSeq: number,
  events: ReadonlyArray<WireEvent>,
): Uint8Array => wirePackr.pack([PROTOCOL_VERSION, KIND_EVENTS, publisher, epoch, firstSeq, events])

/** Encodes a BEAT envelope. */
export const encodeBeat = (
  publisher: string,
  epoch: number,
  lastSeq: number,
  intervalMs: number,
  closing: boolean,
): Uint8Array => wirePackr.pack([PROTOCOL_VERSION, KIND_BEAT, publisher, epoch, lastSeq, intervalMs, closing])

const isUint = (u: unknown): u is number => typeof u === "number" && Number.isInteger(u) && u >= 0

/**
 * Decodes one PUB/SUB envelope, checking its outer shape; the entries of an EVENTS array are checked by the
 * consumer as it walks them (`isWireEvent`), so a batch costs one pass.
 */
export const decode = (bytes: Uint8Array): TopicEnvelope | undefined => {
  let value: unknown
  try {
    value = unpackWire(bytes)
  } catch {
    return undefined
  }
  if (!Array.isArray(value) || value[0] !== PROTOCOL_VERSION || typeof value[2] !== "string" || !isUint(value[3])) {
    return undefined
  }
  if (value[1] === KIND_EVENTS) {
    return value.length >= 6 && isUint(value[4]) && value[4] >= 1 && Array.isArray(value[5])
      ? (value as unknown as EventsEnvelope)
      : undefined
  }
  if (value[1] === KIND_BEAT) {
    if (value.length < 6 || !isUint(value[4]) || !isUint(value[5])) return undefined
    // `closing` is optional on the wire (absent = false).
    return (value.length >= 7 ? value : [...value, false]) as unknown as BeatEnvelope
  }
  return undefined
}

/** Whether an element of an EVENTS array is a well-formed event. */
export const isWireEvent = (u: unknown): u is WireEvent =>
  Array.isArray(u) && u.length >= 2 && (u[0] === null || typeof u[0] === "string")
