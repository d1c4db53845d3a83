/**
 * The beacon wire format, version 1. One UDP datagram:
 *
 *   bytes 0-2  "ZAB" (magic), byte 3 the format version (1), byte 4 flags (bit 0: signed)
 *   then a msgpack array: [cluster, kind, nodeId, incarnation, seq, endpoints, services, actors, meta,
 *                          protocolVersion, publicKey?]   (kind 0 = alive, 1 = goodbye; publicKey: the
 *                          node's CURVE public key in Z85, present when it uses CURVE; decoders of version 1
 *                          ignore fields past the tenth)
 *   then, when signed, 32 bytes of HMAC-SHA256(secret, everything before them)
 *
 * `incarnation` (the sender's start time, ms) and `seq` (per incarnation) order beacons, so a delayed or
 * replayed beacon never overrides a newer one. Decoding never throws: a packet is either a beacon or a reason
 * to ignore it, which the receiver counts.
 */
import { createHmac, timingSafeEqual } from "node:crypto"
import type { Discovery } from "@zactor/core"
import { Packr } from "msgpackr"
import { decodeRecord } from "./records.ts"

const MAGIC = [0x5a, 0x41, 0x42] as const // "ZAB"
const VERSION = 1
const HEADER_BYTES = 5
const MAC_BYTES = 32
const FLAG_SIGNED = 1

/** What a beacon says. */
export interface Beacon {
  readonly cluster: string
  readonly kind: "alive" | "goodbye"
  readonly incarnation: number
  readonly seq: number
  readonly record: Discovery.MemberRecord
}

/** Why a packet was ignored; each is a counter of the beacon backend. */
export type Rejection = "oversized" | "foreign" | "malformed" | "wrongCluster" | "unauthenticated"

const packr = new Packr({ useRecords: false, moreTypes: false, int64AsType: "number" })

const mac = (secret: string, bytes: Uint8Array): Buffer => createHmac("sha256", secret).update(bytes).digest()

/** Encodes a beacon, signed when a secret is given. */
export const encode = (beacon: Beacon, secret: string | undefined): Uint8Array => {
  const { record } = beacon
  const body = packr.pack([
    beacon.cluster,
    beacon.kind === "alive" ? 0 : 1,
    record.nodeId,
    beacon.incarnation,
    beacon.seq,
    record.endpoints,
    record.services,
    record.actors,
    record.meta,
    record.protocolVersion,
    ...(record.publicKey === undefined ? [] : [record.publicKey]),
  ])
  const signed = secret !== undefined
  const out = Buffer.allocUnsafe(HEADER_BYTES + body.length + (signed ? MAC_BYTES : 0))
  out.set(MAGIC, 0)
  out[3] = VERSION
  out[4] = signed ? FLAG_SIGNED : 0
  out.set(body, HEADER_BYTES)
  if (signed) out.set(mac(secret, out.subarray(0, HEADER_BYTES + body.length)), HEADER_BYTES + body.length)
  return out
}

/**
 * Decodes a packet for `cluster`, checking size, magic, version, shape, cluster and (with a secret) the
 * signature, in that order of cost.
 */
export const decode = (
  packet: Uint8Array,
  cluster: string,
  secret: string | undefined,
  maxBytes: number,
): Beacon | Rejection => {
  if (packet.length > maxBytes) return "oversized"
  if (packet.length < HEADER_BYTES || packet[0] !== MAGIC[0] || packet[1] !== MAGIC[1] || packet[2] !== MAGIC[2])
    return "foreign"
  if (packet[3] !== VERSION) return "foreign"
  const signed = ((packet[4] ?? 0) & FLAG_SIGNED) !== 0
  const bodyEnd = signed ? packet.length - MAC_BYTES : packet.length
  if (bodyEnd <= HEADER_BYTES) return "malformed"
  let fields: unknown
  try {
    fields = packr.unpack(packet.subarray(HEADER_BYTES, bodyEnd))
  } catch {
    return "malformed"
  }
  if (!Array.isArray(fields) || fields.length < 10) return "malformed"
  const [beaconCluster, kind, nodeId, incarnation, seq, endpoints, services, actors, meta, protocolVersion, publicKey] =
    fields
  if (typeof beaconCluster !== "string") return "malformed"
  if (beaconCluster !== cluster) return "wrongCluster"
  if (secret !== undefined) {
    if (!signed) return "unauthenticated"
    const expected = mac(secret, packet.subarray(0, bodyEnd))
    if (!timingSafeEqual(expected, packet.subarray(bodyEnd))) return "unauthenticated"
  }
  if (kind !== 0 && kind !== 1) return "malformed"
  if (!isCount(incarnation) || !isCount(seq)) return "malformed"
  const record = decodeRecord({ nodeId, endpoints, services, actors, meta, protocolVersion, publicKey })
  if (record === undefined) return "malformed"
  return { cluster: beaconCluster, kind: kind === 0 ? "alive" : "goodbye", incarnation, seq, record }
}

const isCount = (u: unknown): u is number => typeof u === "number" && Number.isSafeInteger(u) && u >= 0

/** Whether a decode result is a rejection. */
export const isRejection = (u: Beacon | Rejection): u is Rejection => typeof u === "string"
