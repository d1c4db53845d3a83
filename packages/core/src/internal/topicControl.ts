/**
 * The control contract a publishing node serves for each topic, at address `topic:<name>` (so discovery lists the
 * node as serving `topic:<name>` and subscribers find it by that name): `describe` says where the node publishes
 * and may ask it for a heartbeat at once; `snapshot` streams its last-value cache. Bodies are plain msgpack maps
 * and arrays (docs/PROTOCOL.md section 7.4); cache entries carry event bodies exactly as the topic's codec encoded
 * them, so the codecs here only check shapes.
 */
import { Result } from "effect"
import type * as Contract from "../Contract.ts"
import type { CacheEntry } from "./lastValueCache.ts"

/** `describe` request: `beat` asks the publisher to send a heartbeat now (a new subscriber waits less). */
export interface DescribeRequest {
  readonly beat: boolean
}

/** `describe` answer. */
export interface Description {
  /** The publisher id (node id). */
  readonly publisher: string
  readonly epoch: number
  /** Where its XPUB socket listens. */
  readonly endpoint: string
  readonly heartbeatIntervalMs: number
  readonly lastValueCache: boolean
  readonly lastSeq: number
}

/** `snapshot` request: the subscription's key filter (nil = none). */
export interface SnapshotRequest {
  readonly keys: ReadonlyArray<string> | null
  readonly keyPrefix: string | null
}

/** One element of the `snapshot` stream: entries as of `seq`; every element carries the same epoch and seq. */
export interface SnapshotChunk {
  readonly epoch: number
  readonly seq: number
  readonly entries: ReadonlyArray<CacheEntry>
}

const isMap = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)
const isUint = (u: unknown): u is number => typeof u === "number" && Number.isInteger(u) && u >= 0
const isStringArray = (u: unknown): u is ReadonlyArray<string> =>
  Array.isArray(u) && u.every((s) => typeof s === "string")

/** A codec that passes values through and checks the shape of what it receives. */
const shaped = <A>(what: string, check: (u: unknown) => boolean): Contract.BodyCodec<A> => ({
  encode: (value) => Result.succeed(value),
  decode: (wire) => (check(wire) ? Result.succeed(wire as A) : Result.fail({ message: `not a ${what}`, path: [] })),
})

const never: Contract.BodyCodec<never> = {
  encode: () => Result.fail({ message: "no application errors", path: [] }),
  decode: () => Result.fail({ message: "no application errors", path: [] }),
}

const describe: Contract.Unary<DescribeRequest, Description, never> = {
  _tag: "Unary",
  payload: shaped("describe request", (u) => isMap(u) && typeof u.beat === "boolean"),
  success: shaped(
    "description",
    (u) =>
      isMap(u) &&
      typeof u.publisher === "string" &&
      isUint(u.epoch) &&
      typeof u.endpoint === "string" &&
      isUint(u.heartbeatIntervalMs) &&
      typeof u.lastValueCache === "boolean" &&
      isUint(u.lastSeq),
  ),
  error: never,
  idempotent: true,
  timeoutMs: undefined,
}

const snapshot: Contract.ServerStream<SnapshotRequest, SnapshotChunk, never> = {
  _tag: "ServerStream",
  payload: shaped(
    "snapshot request",
    (u) =>
      isMap(u) &&
      (u.keys === null || u.keys === undefined || isStringArray(u.keys)) &&
      (u.keyPrefix === null || u.keyPrefix === undefined || typeof u.keyPrefix === "string"),
  ),
  element: shaped(
    "snapshot chunk",
    (u) =>
      isMap(u) &&
      isUint(u.epoch) &&
      isUint(u.seq) &&
      Array.isArray(u.entries) &&
      u.entries.every((e) => Array.isArray(e) && e.length >= 3 && typeof e[0] === "string" && isUint(e[1])),
  ),
  error: never,
  idempotent: true,
  timeoutMs: undefined,
}

/** The control contract. Served under `addressOf(topic)`, never under its own name. */
export const TopicControl: Contract.Contract<
  "zactor.TopicControl",
  { readonly describe: typeof describe; readonly snapshot: typeof snapshot }
> = { _tag: "Contract", name: "zactor.TopicControl", methods: { describe, snapshot } }

/** The control contract's type. */
export type TopicControl = typeof TopicControl

/** The address (and discovery service name) of a topic's control contract. */
export const addressOf = (topicName: string): string => `topic:${topicName}`

/** Entries per `snapshot` stream element. */
export const SNAPSHOT_CHUNK = 512
