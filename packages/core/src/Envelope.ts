/**
 * The envelope: what one transport payload means. Every envelope is a msgpack array whose first two elements
 * are the protocol version and the kind; the rest is positional per kind (see docs/PROTOCOL.md). Arrays keep
 * the wire small and decoding allocation-free beyond msgpack itself, which matters on the per-call hot path.
 *
 * Decoding never throws: malformed input comes back as a `Malformed` value that says why, with the correlation
 * id when one could be read, so the receiver can answer with a typed error instead of leaving the caller to
 * time out.
 *
 * @since 0.1.0
 */
import * as Crypto from "node:crypto"
import * as MsgpackRead from "./internal/msgpackRead.ts"
import { unpackWire, wirePackr } from "./internal/wirePackr.ts"

/** The protocol version this implementation speaks. @since 0.1.0 */
export const PROTOCOL_VERSION = 1

/**
 * Envelope kinds and their wire numbers.
 *
 * @since 0.1.0
 */
export const Kind = {
  Hello: 0,
  Welcome: 1,
  Request: 2,
  Reply: 3,
  Failure: 4,
  Cancel: 5,
  Tell: 6,
  Item: 7,
  End: 8,
  Credit: 9,
  Ack: 10,
  Ping: 11,
  Pong: 12,
} as const

/** An envelope kind number. @since 0.1.0 */
export type Kind = (typeof Kind)[keyof typeof Kind]

/**
 * Optional per-call fields: `ik` idempotency key, `at` attempt number (1-based), `tp` W3C traceparent,
 * `ts` W3C tracestate; other string keys are application metadata.
 *
 * @since 0.1.0
 */
export type Headers = { readonly [key: string]: string | number }

/**
 * What a node says about itself in HELLO and WELCOME.
 *
 * @since 0.1.0
 */
export interface NodeInfo {
  /** Stable id of the node. */
  readonly id: string
  /** Service names it serves. */
  readonly services: ReadonlyArray<string>
  /** Names of the actors it hosts. */
  readonly actors: ReadonlyArray<string>
  /** Endpoints it is bound to. */
  readonly endpoints: ReadonlyArray<string>
  /** Application metadata. */
  readonly meta: { readonly [key: string]: string }
  /**
   * Optional: its heartbeat settings (docs/LIVENESS.md). The larger timeout of the two ends applies on a link;
   * settings that would make the node flap are refused. Absent (or nil) from implementations without liveness.
   */
  readonly heartbeat?:
    | { readonly intervalMs: number; readonly timeoutMs: number; readonly udpPort?: number | undefined }
    | null
    | undefined
  /** Optional: a random id of this process, new at every start: tells a restart from a reconnection. */
  readonly incarnation?: string | null | undefined
  /**
   * Optional: true while the node drains before it stops: it finishes the calls it has and refuses new ones, so
   * peers send it none. Absent otherwise, and from implementations that do not drain.
   */
  readonly draining?: boolean | null | undefined
}

/** HELLO: a connecting node introduces itself. @since 0.1.0 */
export type Hello = readonly [version: number, kind: 0, info: NodeInfo]
/** WELCOME: the answer to HELLO. @since 0.1.0 */
export type Welcome = readonly [version: number, kind: 1, info: NodeInfo]
/** REQUEST: a call expecting a reply (or a stream). `target` is `address/method`. @since 0.1.0 */
export type Request = readonly [
  version: number,
  kind: 2,
  id: number,
  target: string,
  body: unknown,
  timeoutMs: number,
  headers: Headers | null,
]
/** REPLY: the success of a call. @since 0.1.0 */
export type Reply = readonly [version: number, kind: 3, id: number, body: unknown]
/**
 * FAILURE: the failure of a call. `code` is a framework code, or `"application"` with `error` holding the
 * contract's encoded error value.
 *
 * @since 0.1.0
 */
export type Failure = readonly [version: number, kind: 4, id: number, code: string, message: string, error: unknown]
/** CANCEL: the caller gave up on a call; the callee interrupts its handler. @since 0.1.0 */
export type Cancel = readonly [version: number, kind: 5, id: number]
/** TELL: a one-way message, no reply. @since 0.1.0 */
export type Tell = readonly [version: number, kind: 6, target: string, body: unknown, headers: Headers | null]
/** ITEM: one element of a server stream. @since 0.1.0 */
export type Item = readonly [version: number, kind: 7, id: number, body: unknown]
/** END: a server stream completed. @since 0.1.0 */
export type End = readonly [version: number, kind: 8, id: number]
/** CREDIT: the caller can take `n` more stream elements. @since 0.1.0 */
export type Credit = readonly [version: number, kind: 9, id: number, n: number]
/** ACK: the callee has received the request (at-least-once delivery). @since 0.1.0 */
export type Ack = readonly [version: number, kind: 10, id: number]
/**
 * PING: app-level liveness probe carrying the sender's load and, optionally, actor addresses whose presence the
 * sender wants to know (death watches). @since 0.1.0
 */
export type Ping = readonly [
  version: number,
  kind: 11,
  seq: number,
  load: { readonly [key: string]: number },
  watch?: ReadonlyArray<string> | null,
]
/** PONG: the answer to PING, with the asked addresses the node does not serve. @since 0.1.0 */
export type Pong = readonly [
  version: number,
  kind: 12,
  seq: number,
  load: { readonly [key: string]: number },
  missing?: ReadonlyArray<string> | null,
]

/**
 * Any envelope.
 *
 * @since 0.1.0
 */
export type Envelope =
  | Hello
  | Welcome
  | Request
  | Reply
  | Failure
  | Cancel
  | Tell
  | Item
  | End
  | Credit
  | Ack
  | Ping
  | Pong

/**
 * A payload that is not a valid envelope. `id` is the correlation id if one could be read (to answer it).
 *
 * @since 0.1.0
 */
export interface Malformed {
  readonly _tag: "Malformed"
  readonly reason: "NotMsgpack" | "NotAnEnvelope" | "UnsupportedVersion" | "UnknownKind" | "BadFields"
  readonly detail: string
  readonly kind: number | undefined
  readonly id: number | undefined
}

/**
 * Encodes an envelope.
 *
 * @since 0.1.0
 */
export const encode = (envelope: Envelope): Uint8Array => wirePackr.pack(envelope)

// The two envelopes of every call reuse one array each: packing is synchronous and copies what it reads.
const requestScratch: Array<unknown> = [PROTOCOL_VERSION, Kind.Request, 0, "", null, 0, null]
const replyScratch: Array<unknown> = [PROTOCOL_VERSION, Kind.Reply, 0, null]

/**
 * Encodes a REQUEST: the same bytes as `encode`, without building the envelope (the per-call path).
 *
 * @since 0.1.0
 */
export const encodeRequest = (
  id: number,
  target: string,
  body: unknown,
  timeoutMs: number,
  headers: Headers | null,
): Uint8Array => {
  requestScratch[2] = id
  requestScratch[3] = target
  requestScratch[4] = body
  requestScratch[5] = timeoutMs
  requestScratch[6] = headers
  const bytes = wirePackr.pack(requestScratch)
  requestScratch[4] = null
  requestScratch[6] = null
  return bytes
}

/**
 * Encodes a REPLY: the same bytes as `encode`, without building the envelope (the per-call path).
 *
 * @since 0.1.0
 */
export const encodeReply = (id: number, body: unknown): Uint8Array => {
  replyScratch[2] = id
  replyScratch[3] = body
  const bytes = wirePackr.pack(replyScratch)
  replyScratch[3] = null
  return bytes
}

const isUint = (u: unknown): u is number => typeof u === "number" && Number.isInteger(u) && u >= 0
const isString = (u: unknown): u is string => typeof u === "string"
const isMap = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)
const isHeaders = (u: unknown): u is Headers | null => {
  if (u === null || u === undefined) return true
  if (!isMap(u)) return false
  for (const key in u) {
    const value = u[key]
    if (typeof value !== "string" && typeof value !== "number") return false
  }
  return true
}
const isStringArray = (u: unknown): boolean => Array.isArray(u) && u.every(isString)
const isNodeInfo = (u: unknown): u is NodeInfo =>
  isMap(u) &&
  isString(u.id) &&
  isStringArray(u.services) &&
  isStringArray(u.actors) &&
  isStringArray(u.endpoints) &&
  isMap(u.meta) &&
  (u.heartbeat === undefined ||
    u.heartbeat === null ||
    (isMap(u.heartbeat) && typeof u.heartbeat.intervalMs === "number" && typeof u.heartbeat.timeoutMs === "number")) &&
  (u.incarnation === undefined || u.incarnation === null || isString(u.incarnation)) &&
  (u.draining === undefined || u.draining === null || typeof u.draining === "boolean")
const isOptionalStringArray = (u: unknown): boolean => u === undefined || u === null || isStringArray(u)
const isLoad = (u: unknown): boolean => isMap(u) && Object.values(u).every((v) => typeof v === "number")

/** Minimum length and a field check per kind, indexed by kind number. */
const shapes: ReadonlyArray<readonly [length: number, check: (e: ReadonlyArray<unknown>) => boolean]> = [
  [3, (e) => isNodeInfo(e[2])],
  [3, (e) => isNodeInfo(e[2])],
  [6, (e) => isUint(e[2]) && isString(e[3]) && isUint(e[5]) && isHeaders(e[6])],
  [4, (e) => isUint(e[2])],
  [5, (e) => isUint(e[2]) && isString(e[3]) && isString(e[4])],
  [3, (e) => isUint(e[2])],
  [4, (e) => isString(e[2]) && isHeaders(e[4])],
  [4, (e) => isUint(e[2])],
  [3, (e) => isUint(e[2])],
  [4, (e) => isUint(e[2]) && isUint(e[3])],
  [3, (e) => isUint(e[2])],
  [4, (e) => isUint(e[2]) && isLoad(e[3]) && isOptionalStringArray(e[4])],
  [4, (e) => isUint(e[2]) && isLoad(e[3]) && isOptionalStringArray(e[4])],
]

const malformed = (
  reason: Malformed["reason"],
  detail: string,
  kind: number | undefined = undefined,
  id: number | undefined = undefined,
): Malformed => ({ _tag: "Malformed", reason, detail, kind, id })

/**
 * Decodes and validates one envelope.
 *
 * @since 0.1.0
 */
export const decode = (bytes: Uint8Array): Envelope | Malformed => {
  let value: unknown
  try {
    value = unpackWire(bytes)
  } catch (error) {
    const detail = `not msgpack: ${error instanceof Error ? error.message : String(error)}`
    // A request whose id still reads (the damage, or the too-deep body, comes later) is answered, not left to
    // time out.
    const id = MsgpackRead.requestHeadId(bytes)
    return isUint(id) ? malformed("NotMsgpack", detail, Kind.Request, id) : malformed("NotMsgpack", detail)
  }
  if (!Array.isArray(value) || value.length < 2)
    return malformed("NotAnEnvelope", "an envelope is an array [version, kind, ...]")
  const [version, kind] = value
  const id = isUint(value[2]) ? value[2] : undefined
  if (version !== PROTOCOL_VERSION) {
    return malformed(
      "UnsupportedVersion",
      `protocol version ${String(version)}; this node speaks ${PROTOCOL_VERSION}`,
      isUint(kind) ? kind : undefined,
      id,
    )
  }
  const shape = isUint(kind) ? shapes[kind] : undefined
  if (shape === undefined) return malformed("UnknownKind", `unknown envelope kind ${String(kind)}`, undefined, id)
  if (value.length < shape[0] || !shape[1](value)) {
    return malformed("BadFields", `envelope of kind ${kind} has missing or mistyped fields`, kind as number, id)
  }
  return value as unknown as Envelope
}

/**
 * Whether a decode result is malformed.
 *
 * @since 0.1.0
 */
export const isMalformed = (u: Envelope | Malformed): u is Malformed => !Array.isArray(u)

/**
 * A short digest of a body value, to tell whether two calls with one idempotency key carry the same payload.
 *
 * @since 0.1.0
 */
export const fingerprint = (body: unknown): string => {
  const bytes = wirePackr.pack(body)
  // A small body is its own fingerprint (exact, and cheaper than hashing it); "=" never starts a base64url digest,
  // so the two forms cannot be taken for each other.
  return bytes.length <= 30
    ? `=${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString("base64url")}`
    : sha256(bytes)
}

// One-shot hashing (Node >= 20.12) costs a quarter of a Hash object for bodies this small; it runs per keyed call.
// (A namespace import: a named import of `hash` would fail to link on older Node 20 releases.)
const oneShot = (Crypto as { readonly hash?: typeof Crypto.hash }).hash
const sha256: (bytes: Uint8Array) => string =
  oneShot !== undefined
    ? (bytes) => oneShot("sha256", bytes, "base64url")
    : (bytes) => Crypto.createHash("sha256").update(bytes).digest("base64url")
