/**
 * Member records from untrusted sources (beacon packets, etcd values): validation with size limits, so a
 * garbage or hostile value is rejected (and counted by the caller) instead of reaching routing.
 */
import { networkInterfaces } from "node:os"
import type { Discovery } from "@zactor/core"
import { TransportOptions } from "@zactor/transport"

/** Limits on a record read from the network or a registry. */
export const limits = Object.freeze({
  idChars: 128,
  endpoints: 16,
  endpointChars: 256,
  names: 4096,
  nameChars: 256,
  metaEntries: 64,
  metaChars: 1024,
})

const isString = (u: unknown, max: number): u is string => typeof u === "string" && u.length > 0 && u.length <= max

const stringList = (u: unknown, maxItems: number, maxChars: number): ReadonlyArray<string> | undefined =>
  Array.isArray(u) && u.length <= maxItems && u.every((item) => isString(item, maxChars))
    ? (u as ReadonlyArray<string>)
    : undefined

const metaOf = (u: unknown): { readonly [key: string]: string } | undefined => {
  if (u === undefined || u === null) return {}
  if (typeof u !== "object" || Array.isArray(u)) return undefined
  const entries = Object.entries(u as Record<string, unknown>)
  if (entries.length > limits.metaEntries) return undefined
  const meta: Record<string, string> = {}
  for (const [key, value] of entries) {
    if (key.length > limits.metaChars || typeof value !== "string" || value.length > limits.metaChars) return undefined
    meta[key] = value
  }
  return meta
}

/** A record from loosely typed fields, or `undefined` when any field is missing, mistyped or too large. */
export const decodeRecord = (fields: {
  readonly nodeId: unknown
  readonly endpoints: unknown
  readonly services: unknown
  readonly actors: unknown
  readonly meta: unknown
  readonly protocolVersion: unknown
  readonly publicKey?: unknown
}): Discovery.MemberRecord | undefined => {
  if (!isString(fields.nodeId, limits.idChars)) return undefined
  const endpoints = stringList(fields.endpoints, limits.endpoints, limits.endpointChars)
  const services = stringList(fields.services, limits.names, limits.nameChars)
  const actors = stringList(fields.actors, limits.names, limits.nameChars)
  const meta = metaOf(fields.meta)
  const version = fields.protocolVersion
  if (endpoints === undefined || services === undefined || actors === undefined || meta === undefined) return undefined
  if (typeof version !== "number" || !Number.isInteger(version) || version < 0) return undefined
  const record = { nodeId: fields.nodeId, endpoints, services, actors, meta, protocolVersion: version }
  const key = fields.publicKey
  if (key === undefined || key === null) return record
  return typeof key === "string" && TransportOptions.isZ85Key(key) ? { ...record, publicKey: key } : undefined
}

/** Whether a record fits the limits (checked before publishing our own). */
export const isValidRecord = (record: Discovery.MemberRecord): boolean => decodeRecord(record) !== undefined

const WILDCARD = /^(tcp:\/\/)(0\.0\.0\.0|\*)(:\d+)$/

/**
 * Replaces the host of wildcard endpoints (`tcp://0.0.0.0:port`, `tcp://*:port`, which a node bound on every
 * interface reports) with an address others can reach it at: the source address of its beacon, or the
 * configured advertised host.
 */
export const withHost = (endpoints: ReadonlyArray<string>, host: string | undefined): ReadonlyArray<string> =>
  host === undefined ? endpoints : endpoints.map((endpoint) => endpoint.replace(WILDCARD, `$1${host}$3`))

/** Whether any endpoint is a wildcard that needs a host before others can use it. */
export const hasWildcard = (endpoints: ReadonlyArray<string>): boolean => endpoints.some((e) => WILDCARD.test(e))

const HOST_LOCAL = /^(ipc|inproc):\/\/|^tcp:\/\/(127\.\d+\.\d+\.\d+|localhost|\[::1\]):/

/**
 * The endpoints of a member heard from `source` that this process can reach: host-local ones (loopback, ipc,
 * inproc) only when the member runs on this host (`sameHost`). A loopback endpoint of another host would lead
 * to whatever listens on that port here.
 */
export const reachableFrom = (endpoints: ReadonlyArray<string>, sameHost: boolean): ReadonlyArray<string> =>
  sameHost ? endpoints : endpoints.filter((endpoint) => !HOST_LOCAL.test(endpoint))

/** The IPv4 addresses of this host's interfaces, to tell beacons of local processes from remote ones. */
export const localAddresses = (): ReadonlySet<string> => {
  const addresses = new Set<string>(["127.0.0.1"])
  for (const list of Object.values(networkInterfaces())) {
    for (const info of list ?? []) if (info.family === "IPv4") addresses.add(info.address)
  }
  return addresses
}
