/**
 * The batch frame: how several application payloads travel in one ZeroMQ frame. Coalescing the payloads
 * queued during one event-loop turn into one ZeroMQ message divides the binding's per-message cost (the
 * dominant cost, see BENCHMARKS.md) by the batch size. The format is specified in docs/PROTOCOL.md:
 *
 * ```
 * u8  version   = 1
 * u8  flags       bit 0: a key-binding proof follows (CURVE); other bits must be 0
 * [32 bytes client public key, 32 bytes proof]   only when flags bit 0 is set
 * repeated, at least once, to the end of the frame:
 *   u32 big-endian length, then that many payload bytes
 * ```
 *
 * Decoding never throws: bad input comes back as a rejection with a reason, and payloads are zero-copy views.
 *
 * @since 0.1.0
 */
import type { RejectReason } from "./TransportEvent.ts"

/** The framing version this implementation writes and reads. @since 0.1.0 */
export const VERSION = 1

/** Bytes of the fixed header (version + flags). @since 0.1.0 */
export const HEADER_BYTES = 2

/** Bytes of the optional key-binding proof section (public key + HMAC). @since 0.1.0 */
export const PROOF_BYTES = 64

/** Bytes of framing added per payload. @since 0.1.0 */
export const ENTRY_OVERHEAD = 4

const FLAG_PROOF = 0x01

/**
 * A decoded batch: the payloads and, when present, the key-binding proof section.
 *
 * @since 0.1.0
 */
export interface Batch {
  readonly payloads: Array<Uint8Array>
  readonly proof: Uint8Array | undefined
}

/**
 * A batch that could not be decoded.
 *
 * @since 0.1.0
 */
export interface Rejection {
  readonly reject: RejectReason
  readonly detail: string
}

/**
 * Encodes `count` payloads from `payloads` (starting at `start`) whose byte lengths sum to `payloadBytes`.
 * `proof` is the 64-byte key-binding section, or `undefined`.
 *
 * @since 0.1.0
 */
export const encode = (
  payloads: ReadonlyArray<Uint8Array>,
  start: number,
  count: number,
  payloadBytes: number,
  proof: Uint8Array | undefined,
): Buffer => {
  const proofBytes = proof === undefined ? 0 : PROOF_BYTES
  const frame = Buffer.allocUnsafe(HEADER_BYTES + proofBytes + count * ENTRY_OVERHEAD + payloadBytes)
  frame[0] = VERSION
  frame[1] = proof === undefined ? 0 : FLAG_PROOF
  let offset = HEADER_BYTES
  if (proof !== undefined) {
    frame.set(proof, offset)
    offset += PROOF_BYTES
  }
  for (let i = start; i < start + count; i++) {
    const payload = payloads[i]!
    frame.writeUInt32BE(payload.length, offset)
    frame.set(payload, offset + ENTRY_OVERHEAD)
    offset += ENTRY_OVERHEAD + payload.length
  }
  return frame
}

/**
 * Encoded size of a batch holding payloads of `payloadBytes` in total.
 *
 * @since 0.1.0
 */
export const encodedBytes = (count: number, payloadBytes: number, withProof: boolean): number =>
  HEADER_BYTES + (withProof ? PROOF_BYTES : 0) + count * ENTRY_OVERHEAD + payloadBytes

/**
 * Decodes a batch frame; payloads larger than `maxMessageBytes` reject the whole frame.
 *
 * @since 0.1.0
 */
export const decode = (frame: Uint8Array, maxMessageBytes: number): Batch | Rejection => {
  if (frame.length < HEADER_BYTES + ENTRY_OVERHEAD) {
    return { reject: "Malformed", detail: `batch frame of ${frame.length} bytes is shorter than the minimum` }
  }
  if (frame[0] !== VERSION) {
    return { reject: "UnsupportedVersion", detail: `batch framing version ${frame[0]} (this node speaks ${VERSION})` }
  }
  const flags = frame[1]!
  if ((flags & ~FLAG_PROOF) !== 0) return { reject: "Malformed", detail: `unknown batch flags 0x${flags.toString(16)}` }
  let offset = HEADER_BYTES
  let proof: Uint8Array | undefined
  if ((flags & FLAG_PROOF) !== 0) {
    if (frame.length < HEADER_BYTES + PROOF_BYTES + ENTRY_OVERHEAD) {
      return { reject: "Malformed", detail: "batch frame truncated inside the proof section" }
    }
    proof = frame.subarray(offset, offset + PROOF_BYTES)
    offset += PROOF_BYTES
  }
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength)
  const payloads: Array<Uint8Array> = []
  while (offset < frame.length) {
    if (frame.length - offset < ENTRY_OVERHEAD) {
      return { reject: "Malformed", detail: `truncated length prefix at offset ${offset}` }
    }
    const length = view.getUint32(offset)
    offset += ENTRY_OVERHEAD
    if (length > maxMessageBytes) {
      return { reject: "TooLarge", detail: `payload of ${length} bytes exceeds maxMessageBytes ${maxMessageBytes}` }
    }
    if (length > frame.length - offset) {
      return { reject: "Malformed", detail: `payload of ${length} bytes overruns the frame at offset ${offset}` }
    }
    payloads.push(frame.subarray(offset, offset + length))
    offset += length
  }
  return { payloads, proof }
}

/**
 * Whether a decode result is a rejection.
 *
 * @since 0.1.0
 */
export const isRejection = (result: Batch | Rejection): result is Rejection => "reject" in result
