/**
 * Flags shared by the commands that talk to nodes: where to find them (LAN beacon by default, `--static`
 * endpoints, `--etcd`), CURVE keys, the time budget and the output format.
 */
import * as nodePath from "node:path"
import { Option } from "effect"
import { Flag } from "effect/cli"

/** How members are found. */
export const discovery = {
  static: Flag.String("static").pipe(
    Flag.withDescription(
      "Node endpoints to use instead of discovery, e.g. tcp://10.0.0.2:5000 ([nodeId@]endpoint; repeat the flag or separate with commas)",
    ),
    Flag.atLeast(0),
  ),
  etcd: Flag.String("etcd").pipe(
    Flag.withDescription("etcd endpoints (http://host:2379) to read the members from, instead of the LAN beacon"),
    Flag.atLeast(0),
  ),
  cluster: Flag.String("cluster").pipe(
    Flag.withDescription("Cluster name of the beacon or etcd registry (default zactor, or ZACTOR_BEACON_CLUSTER)"),
    Flag.optional,
  ),
  beaconPort: Flag.Int("beacon-port").pipe(
    Flag.withDescription("UDP port of the LAN beacon (default 48555, or ZACTOR_BEACON_PORT)"),
    Flag.optional,
  ),
  beaconAddress: Flag.String("beacon-address").pipe(
    Flag.withDescription("Multicast group or broadcast address of the beacon (default 239.255.90.1)"),
    Flag.optional,
  ),
  beaconInterface: Flag.String("beacon-interface").pipe(
    Flag.withDescription("Local IPv4 address of the interface to listen for beacons on"),
    Flag.optional,
  ),
  beaconSecret: Flag.String("beacon-secret").pipe(
    Flag.withDescription("Shared secret of signed beacons (or ZACTOR_BEACON_SECRET)"),
    Flag.optional,
  ),
  wait: Flag.String("wait").pipe(
    Flag.withDescription("How long to listen for beacons before answering, e.g. 1s, 500ms (default 1s)"),
    Flag.withDefault("1s"),
  ),
}

/** CURVE: this client's key pair and the servers' public key. */
export const curve = {
  curveKey: Flag.String("curve-key").pipe(
    Flag.withDescription(
      "Key pair file of this client (JSON, as `zactor keys --out` writes it); its public key must be admitted by the nodes",
    ),
    Flag.optional,
  ),
  serverKey: Flag.String("server-key").pipe(
    Flag.withDescription("Z85 public key of the nodes (CURVE); without --curve-key a throwaway client key is used"),
    Flag.optional,
  ),
}

/** The time budget of each network operation. */
export const timeout = Flag.String("timeout").pipe(
  Flag.withDescription("Time allowed for each answer, e.g. 2s, 500ms (default 2s)"),
  Flag.withDefault("2s"),
)

/** Machine-readable output. */
export const json = Flag.Boolean("json").pipe(
  Flag.withDescription("Print JSON for scripts instead of text"),
  Flag.withDefault(false),
)

/** The values of the discovery, CURVE and timeout flags. */
export interface ConnectionFlags {
  readonly static: ReadonlyArray<string>
  readonly etcd: ReadonlyArray<string>
  readonly cluster: Option.Option<string>
  readonly beaconPort: Option.Option<number>
  readonly beaconAddress: Option.Option<string>
  readonly beaconInterface: Option.Option<string>
  readonly beaconSecret: Option.Option<string>
  readonly wait: string
  readonly curveKey: Option.Option<string>
  readonly serverKey: Option.Option<string>
  readonly timeout: string
}

/** All connection flags, for a command's config. */
export const connection = { ...discovery, ...curve, timeout }

/**
 * Milliseconds of a duration written `250ms`, `2s`, `1.5s`, `1m` or a bare number of milliseconds; a message
 * when it is none of those.
 */
export const parseDuration = (text: string, flag: string): number | string => {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*$/.exec(text)
  if (match === null) return `--${flag} ${JSON.stringify(text)} is not a duration (e.g. 500ms, 2s, 1m)`
  const value = Number(match[1])
  const unit = match[2] ?? "ms"
  const ms = unit === "ms" ? value : unit === "s" ? value * 1000 : value * 60_000
  return ms > 0 ? ms : `--${flag} must be more than 0`
}

/** The value of an optional flag, or `undefined`. */
export const orUndefined = <A>(option: Option.Option<A>): A | undefined => Option.getOrUndefined(option)

/**
 * A file path from the command line, relative to where the command was typed: `pnpm --filter ... zactor` runs
 * in the package's directory and says where it was started in `INIT_CWD`.
 */
export const filePath = (path: string): string => nodePath.resolve(process.env.INIT_CWD ?? process.cwd(), path)
