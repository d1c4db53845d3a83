/**
 * Options of the LAN beacon, their defaults, and the one function that applies them. `fromEnv` reads the same
 * fields from `ZACTOR_BEACON_*` environment variables.
 *
 * @since 0.1.0
 */
import { isIPv4 } from "node:net"
import { Discovery } from "@zactor/core"
import { Config, Duration, Effect, Option } from "effect"
import { envReader } from "./internal/envReader.ts"

/**
 * Options of the beacon.
 *
 * @since 0.1.0
 */
export interface BeaconOptions {
  /**
   * Cluster name: beacons of other clusters on the same port and group are ignored (and counted), so
   * separate clusters share a network safely. Default `"zactor"`.
   */
  readonly cluster?: string | undefined
  /** UDP port every member sends to and listens on. Default 48555. Change it to separate clusters fully. */
  readonly port?: number | undefined
  /**
   * Where beacons are sent. A multicast group (224.0.0.0/4) selects multicast; any other IPv4 address is
   * used as a broadcast address (e.g. a subnet's `10.1.255.255`, or `127.255.255.255` for one host).
   * Default `"239.255.90.1"` (administratively scoped multicast).
   */
  readonly address?: string | undefined
  /**
   * Local IPv4 address of the interface to send and listen on (multicast only), e.g. `"127.0.0.1"` for
   * processes of one host, or the address on the cluster's network. Default: the interface the OS picks
   * for the group (the default route's).
   */
  readonly interface?: string | undefined
  /** Time between beacons. Default 250 ms. Lower finds and loses members faster, at more packets. */
  readonly interval?: Duration.Input | undefined
  /**
   * A member whose beacons stop for this long is dropped (reason `Expired`). Default five intervals and at
   * least 1250 ms (1250 ms with the default interval). At least twice `interval`; raise it on lossy networks.
   */
  readonly expiry?: Duration.Input | undefined
  /**
   * Shared secret: beacons carry an HMAC-SHA256 over the packet keyed by it, and unsigned or badly signed
   * beacons are ignored (counted as `unauthenticated`). Default none (any host on the network can announce).
   */
  readonly secret?: string | undefined
  /**
   * Largest beacon sent or accepted, in bytes; larger packets are ignored (`oversized`) and a record that
   * does not fit cannot be registered. Default 1400 (fits an Ethernet MTU unfragmented); at most 65,507.
   */
  readonly maxPacketBytes?: number | undefined
  /** Multicast TTL: 1 keeps beacons on the local segment. Default 1. */
  readonly multicastTtl?: number | undefined
  /**
   * Host announced for wildcard endpoints (`tcp://0.0.0.0:port`). Default: receivers use the beacon's
   * source address, which is right unless NAT sits between members.
   */
  readonly advertiseHost?: string | undefined
}

/**
 * Options with defaults applied, durations in milliseconds.
 *
 * @since 0.1.0
 */
export interface ResolvedBeaconOptions {
  readonly cluster: string
  readonly port: number
  readonly address: string
  readonly multicast: boolean
  readonly interface: string | undefined
  readonly intervalMs: number
  readonly expiryMs: number
  readonly secret: string | undefined
  readonly maxPacketBytes: number
  readonly multicastTtl: number
  readonly advertiseHost: string | undefined
}

/**
 * The defaults.
 *
 * @since 0.1.0
 */
export const defaults = Object.freeze({
  cluster: "zactor",
  port: 48555,
  address: "239.255.90.1",
  intervalMs: 250,
  expiryMs: 1250,
  maxPacketBytes: 1400,
  multicastTtl: 1,
})

/** Whether an IPv4 address is multicast (224.0.0.0/4). */
const isMulticast = (address: string): boolean => {
  const first = Number(address.split(".")[0])
  return first >= 224 && first <= 239
}

/**
 * Applies defaults and checks ranges; fails with `InvalidOptions` naming each bad field.
 *
 * @since 0.1.0
 */
export const resolve = (options: BeaconOptions = {}): Effect.Effect<ResolvedBeaconOptions, Discovery.DiscoveryError> =>
  Effect.suspend(() => {
    const problems: Array<string> = []
    const ms = (name: string, input: Duration.Input | undefined, fallback: number): number => {
      if (input === undefined) return fallback
      const value = Duration.fromInput(input)
      const millis = Option.isSome(value) ? Duration.toMillis(value.value) : Number.NaN
      if (!Number.isFinite(millis) || millis < 10) problems.push(`${name} must be a finite duration >= 10 ms`)
      return millis
    }
    const cluster = options.cluster ?? defaults.cluster
    const port = options.port ?? defaults.port
    const address = options.address ?? defaults.address
    const intervalMs = ms("interval", options.interval, defaults.intervalMs)
    const expiryMs = ms("expiry", options.expiry, Math.max(defaults.expiryMs, 5 * intervalMs))
    const maxPacketBytes = options.maxPacketBytes ?? defaults.maxPacketBytes
    const multicastTtl = options.multicastTtl ?? defaults.multicastTtl
    if (cluster.length === 0 || cluster.length > 64) problems.push("cluster must have 1-64 characters")
    if (!Number.isInteger(port) || port < 1 || port > 65535) problems.push("port must be 1-65535")
    if (!isIPv4(address)) problems.push("address must be an IPv4 address")
    if (options.interface !== undefined && !isIPv4(options.interface))
      problems.push("interface must be an IPv4 address")
    if (expiryMs < 2 * intervalMs) problems.push("expiry must be at least twice interval")
    if (!Number.isInteger(maxPacketBytes) || maxPacketBytes < 256 || maxPacketBytes > 65507)
      problems.push("maxPacketBytes must be 256-65507")
    if (!Number.isInteger(multicastTtl) || multicastTtl < 0 || multicastTtl > 255)
      problems.push("multicastTtl must be 0-255")
    if (options.secret !== undefined && options.secret.length === 0) problems.push("secret must not be empty")
    if (problems.length > 0) {
      return Effect.fail(
        new Discovery.DiscoveryError({
          reason: "InvalidOptions",
          message: `invalid beacon options: ${problems.join("; ")}`,
        }),
      )
    }
    return Effect.succeed({
      cluster,
      port,
      address,
      multicast: isMulticast(address),
      interface: options.interface,
      intervalMs,
      expiryMs,
      secret: options.secret,
      maxPacketBytes,
      multicastTtl,
      advertiseHost: options.advertiseHost,
    })
  })

/**
 * Reads options from the environment: `ZACTOR_BEACON_CLUSTER`, `_PORT`, `_ADDRESS`, `_INTERFACE`,
 * `_INTERVAL_MS`, `_EXPIRY_MS`, `_SECRET`, `_MAX_PACKET_BYTES`, `_TTL`, `_ADVERTISE_HOST`; unset ones keep the
 * defaults (or the values in `base`).
 *
 * @since 0.1.0
 */
export const fromEnv = (base: BeaconOptions = {}): Effect.Effect<BeaconOptions, Discovery.DiscoveryError> =>
  Effect.gen(function* () {
    const read = envReader("beacon")
    const pick = <A>(value: A | undefined, fallback: A | undefined): A | undefined => value ?? fallback
    return {
      cluster: pick(yield* read(Config.String("ZACTOR_BEACON_CLUSTER")), base.cluster),
      port: pick(yield* read(Config.Int("ZACTOR_BEACON_PORT")), base.port),
      address: pick(yield* read(Config.String("ZACTOR_BEACON_ADDRESS")), base.address),
      interface: pick(yield* read(Config.String("ZACTOR_BEACON_INTERFACE")), base.interface),
      interval: pick<Duration.Input>(yield* read(Config.Int("ZACTOR_BEACON_INTERVAL_MS")), base.interval),
      expiry: pick<Duration.Input>(yield* read(Config.Int("ZACTOR_BEACON_EXPIRY_MS")), base.expiry),
      secret: pick(yield* read(Config.String("ZACTOR_BEACON_SECRET")), base.secret),
      maxPacketBytes: pick(yield* read(Config.Int("ZACTOR_BEACON_MAX_PACKET_BYTES")), base.maxPacketBytes),
      multicastTtl: pick(yield* read(Config.Int("ZACTOR_BEACON_TTL")), base.multicastTtl),
      advertiseHost: pick(yield* read(Config.String("ZACTOR_BEACON_ADVERTISE_HOST")), base.advertiseHost),
    }
  })
