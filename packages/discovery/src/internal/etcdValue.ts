/**
 * The value stored under a member's etcd key: JSON `{ "v": 1, nodeId, endpoints, services, actors, meta,
 * protocolVersion, publicKey? }`, plus `"goodbye": true` written just before a graceful deregistration (a delete alone
 * cannot tell a goodbye from an expired lease). Anything else under the prefix is garbage: ignored, counted.
 */
import type { Discovery } from "@zactor/core"
import { decodeRecord } from "./records.ts"

/** Values larger than this are garbage (no valid record comes close). */
export const MAX_VALUE_BYTES = 256 * 1024

/** The JSON value of a record. */
export const encodeValue = (record: Discovery.MemberRecord, goodbye = false): string =>
  JSON.stringify({ v: 1, ...record, ...(goodbye ? { goodbye: true } : {}) })

/** A decoded value, or `undefined` for garbage (including a record whose id does not match its key). */
export const decodeValue = (
  keyNodeId: string,
  value: Buffer,
): { readonly record: Discovery.MemberRecord; readonly goodbye: boolean } | undefined => {
  if (value.length > MAX_VALUE_BYTES) return undefined
  let parsed: unknown
  try {
    parsed = JSON.parse(value.toString("utf8"))
  } catch {
    return undefined
  }
  if (typeof parsed !== "object" || parsed === null || (parsed as { v?: unknown }).v !== 1) return undefined
  const fields = parsed as Record<string, unknown>
  const record = decodeRecord({
    nodeId: fields.nodeId,
    endpoints: fields.endpoints,
    services: fields.services,
    actors: fields.actors,
    meta: fields.meta,
    protocolVersion: fields.protocolVersion,
    publicKey: fields.publicKey,
  })
  if (record === undefined || record.nodeId !== keyNodeId) return undefined
  return { record, goodbye: fields.goodbye === true }
}
