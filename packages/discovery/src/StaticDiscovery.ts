/**
 * A fixed list of peers from configuration or the environment (`ZACTOR_PEERS`). There is no registry to
 * write to: `register` only adds this node to its own view, and the list never changes at run time. What each
 * peer serves is learnt when the node connects to it (its HELLO), so entries need only an endpoint; liveness
 * comes from the connections alone.
 *
 * @since 0.1.0
 */
import { Discovery, Envelope } from "@zactor/core"
import { TransportOptions } from "@zactor/transport"
import { Config, Effect, Layer, Option } from "effect"
import { Membership, queriesOf } from "./internal/membership.ts"
import { isValidRecord } from "./internal/records.ts"

/**
 * One peer of a static list.
 *
 * @since 0.1.0
 */
export interface StaticPeer {
  /** The endpoint to connect to, e.g. `tcp://10.0.0.2:5000`. */
  readonly endpoint: string
  /** Its node id, if known. Default: the endpoint. Naming it lets a node skip itself in a shared list. */
  readonly nodeId?: string | undefined
  /** The services it serves, if known. Default: unknown (`Discovery.ANY_SERVICE`), learnt on connection. */
  readonly services?: ReadonlyArray<string> | undefined
  /** Its CURVE public key (Z85), needed when the transports use CURVE. */
  readonly publicKey?: string | undefined
}

/**
 * The environment variable `layerFromEnv` reads by default.
 *
 * @since 0.1.0
 */
export const ENV_VAR = "ZACTOR_PEERS"

/** Characters of a CURVE public key in Z85. */
const KEY_LENGTH = 40

const invalid = (message: string) => new Discovery.DiscoveryError({ reason: "InvalidOptions", message })

/**
 * Parses a peer list: entries separated by commas or whitespace, each `[nodeId@]endpoint[#publicKey]`, e.g.
 * `a@tcp://10.0.0.2:5000, tcp://10.0.0.3:5000#<40 Z85 characters>` (the key, for clusters on CURVE, is the
 * peer's public key as `zactor keys` prints it). Fails with `InvalidOptions` naming the bad entry.
 *
 * @since 0.1.0
 */
export const parse = (text: string): Effect.Effect<ReadonlyArray<StaticPeer>, Discovery.DiscoveryError> =>
  Effect.suspend(() => {
    const peers: Array<StaticPeer> = []
    for (const entry of text.split(/[\s,]+/).filter((e) => e.length > 0)) {
      // A key is the entry's last 40 characters after a "#" (Z85 has no comma or space, so it cannot be split).
      const hash = entry.lastIndexOf("#", entry.length - KEY_LENGTH - 1)
      const keyed = hash !== -1 && hash === entry.length - KEY_LENGTH - 1
      const publicKey = keyed ? entry.slice(hash + 1) : entry.includes("#") ? "" : undefined
      if (publicKey !== undefined && !TransportOptions.isZ85Key(publicKey)) {
        return Effect.fail(invalid(`${ENV_VAR} entry "${entry}" has a public key that is not 40 Z85 characters`))
      }
      const address = keyed ? entry.slice(0, hash) : entry
      const at = address.indexOf("@")
      const separator = address.indexOf("://")
      const hasId = at > 0 && (separator === -1 || at < separator)
      const endpoint = hasId ? address.slice(at + 1) : address
      if (!/^(tcp|ipc|inproc):\/\/.+/.test(endpoint)) {
        return Effect.fail(invalid(`${ENV_VAR} entry "${entry}" is not [nodeId@]tcp://host:port[#publicKey]`))
      }
      peers.push({
        ...(hasId ? { nodeId: address.slice(0, at) } : {}),
        endpoint,
        ...(publicKey === undefined ? {} : { publicKey }),
      })
    }
    return Effect.succeed(peers)
  })

const recordOf = (peer: StaticPeer): Discovery.MemberRecord => ({
  nodeId: peer.nodeId ?? peer.endpoint,
  endpoints: [peer.endpoint],
  services: peer.services ?? [Discovery.ANY_SERVICE],
  actors: [],
  meta: {},
  protocolVersion: Envelope.PROTOCOL_VERSION,
  ...(peer.publicKey === undefined ? {} : { publicKey: peer.publicKey }),
})

/**
 * A `Discovery` over a fixed list. Fails with `InvalidOptions` for an entry that is not a valid record.
 *
 * @since 0.1.0
 */
export const make = (
  peers: ReadonlyArray<StaticPeer | string>,
): Effect.Effect<Discovery.DiscoveryShape, Discovery.DiscoveryError> =>
  Effect.gen(function* () {
    const membership = new Membership([])
    for (const peer of peers) {
      const parsed = typeof peer === "string" ? yield* parse(peer) : [peer]
      for (const one of parsed) {
        const record = recordOf(one)
        if (!isValidRecord(record)) return yield* Effect.fail(invalid(`static peer ${one.endpoint} is invalid`))
        membership.upsert(record)
      }
    }
    const shape: Discovery.DiscoveryShape = {
      backend: "static",
      register: (record) =>
        Effect.gen(function* () {
          const listed = membership.get(record.nodeId)
          // A node named in the list keeps its entry; otherwise it appears in its own view only while it runs.
          yield* Effect.acquireRelease(
            Effect.sync(() => membership.upsert(record)),
            () =>
              Effect.sync(() => {
                if (listed === undefined) membership.remove(record.nodeId, "Goodbye")
                else membership.upsert(listed)
              }),
          )
          return { update: (next) => Effect.sync(() => void membership.upsert(next)) }
        }),
      ...queriesOf(membership),
    }
    return shape
  })

/**
 * The `Discovery` service over a fixed list (entries as `StaticPeer` or `[nodeId@]endpoint` strings).
 *
 * @since 0.1.0
 */
export const layer = (
  peers: ReadonlyArray<StaticPeer | string>,
): Layer.Layer<Discovery.Discovery, Discovery.DiscoveryError> => Layer.effect(Discovery.Discovery, make(peers))

/**
 * The `Discovery` service over the list in an environment variable (default `ZACTOR_PEERS`; empty or unset
 * means no peers).
 *
 * @since 0.1.0
 */
export const layerFromEnv = (name: string = ENV_VAR): Layer.Layer<Discovery.Discovery, Discovery.DiscoveryError> =>
  Layer.effect(
    Discovery.Discovery,
    Effect.gen(function* () {
      const text = yield* Config.option(Config.String(name)).pipe(
        Effect.mapError((error) => invalid(`${name}: ${String(error)}`)),
      )
      return yield* make(Option.isSome(text) ? [text.value] : [])
    }),
  )
