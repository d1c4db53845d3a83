/**
 * What a command needs to talk to a cluster: a zactor node of its own (binds nothing, serves nothing, is
 * registered nowhere: the CLI observes), the members the chosen source lists (LAN beacon, `--static`
 * endpoints, etcd), and the admin service of each node. Everything closes with the command's scope.
 */
import { Admin, type Discovery, type Metrics, Node, RpcError, type Target } from "@zactor/core"
import { BeaconDiscovery, BeaconOptions, EtcdDiscovery, EtcdOptions, StaticDiscovery } from "@zactor/discovery"
import { Curve, TransportOptions } from "@zactor/transport"
import { Effect, Option, type Scope } from "effect"
import { type ConnectionFlags, filePath, orUndefined, parseDuration } from "./flags.ts"
import { type CliFailure, failed, usage } from "./output.ts"

/** A node the member source lists. */
export interface Member {
  /** Its node id as the source knows it (a static entry without one is named by its endpoint). */
  readonly nodeId: string
  /** The endpoint to reach it at. */
  readonly endpoint: string
  /** What the source says it serves (`*` for static entries: unknown until asked). */
  readonly services: ReadonlyArray<string>
  readonly actors: ReadonlyArray<string>
}

/** Why a node did not answer: the framework code (or `internal` for an undeclared failure) and a message. */
export interface CallFailure {
  readonly code: string
  readonly message: string
}

const callFailure = (error: unknown): CallFailure =>
  RpcError.is(error)
    ? { code: error.code, message: error.message }
    : { code: "internal", message: error instanceof Error ? error.message : String(error) }

/** A command's connection to the cluster. */
export interface Session {
  readonly node: Node.NodeShape
  /** The time allowed for each answer, in ms. */
  readonly timeoutMs: number
  /** Where the members come from: `beacon`, `static` or `etcd`. */
  readonly source: string
  /** The members listed now (for the beacon: after listening `--wait`). */
  readonly members: Effect.Effect<ReadonlyArray<Member>, CliFailure>
  /** The call target of an endpoint, with the CURVE server key when one was given. */
  readonly target: (endpoint: string) => Exclude<Target, undefined>
  /** The node's description, from its admin service. */
  readonly describe: (endpoint: string) => Effect.Effect<Admin.Description, CallFailure>
  /** The node's metrics, from its admin service. */
  readonly metrics: (endpoint: string) => Effect.Effect<Metrics.Snapshot, CallFailure>
}

const ms = (text: string, flag: string): Effect.Effect<number, CliFailure> => {
  const parsed = parseDuration(text, flag)
  return typeof parsed === "string" ? Effect.fail(usage(parsed)) : Effect.succeed(parsed)
}

const splitList = (values: ReadonlyArray<string>): Array<string> =>
  values
    .flatMap((value) => value.split(","))
    .map((value) => value.trim())
    .filter((value) => value !== "")

const discoveryFailure = (error: Discovery.DiscoveryError): CliFailure =>
  error.reason === "InvalidOptions" ? usage(error.message) : failed(error.message)

/** The member source the flags choose: `--static`, else `--etcd`, else `ZACTOR_PEERS`, else the beacon. */
const openSource = (
  flags: ConnectionFlags,
): Effect.Effect<
  { readonly name: string; readonly registry: Discovery.DiscoveryShape },
  Discovery.DiscoveryError,
  Scope.Scope
> => {
  const peers = splitList(flags.static)
  const etcd = splitList(flags.etcd)
  const fromEnv = process.env[StaticDiscovery.ENV_VAR]?.trim()
  if (peers.length > 0 || (etcd.length === 0 && fromEnv !== undefined && fromEnv !== "")) {
    const list = peers.length > 0 ? peers : [fromEnv!]
    return Effect.map(StaticDiscovery.make(list), (registry) => ({ name: "static", registry }))
  }
  if (etcd.length > 0) {
    return Effect.gen(function* () {
      const options = yield* EtcdOptions.fromEnv({})
      const registry = yield* EtcdDiscovery.make({
        ...options,
        endpoints: etcd,
        ...(Option.isSome(flags.cluster) ? { cluster: flags.cluster.value } : {}),
      })
      return { name: "etcd", registry }
    })
  }
  return Effect.gen(function* () {
    const options = yield* BeaconOptions.fromEnv({})
    const registry = yield* BeaconDiscovery.make({
      ...options,
      ...(Option.isSome(flags.cluster) ? { cluster: flags.cluster.value } : {}),
      ...(Option.isSome(flags.beaconPort) ? { port: flags.beaconPort.value } : {}),
      ...(Option.isSome(flags.beaconAddress) ? { address: flags.beaconAddress.value } : {}),
      ...(Option.isSome(flags.beaconInterface) ? { interface: flags.beaconInterface.value } : {}),
      ...(Option.isSome(flags.beaconSecret) ? { secret: flags.beaconSecret.value } : {}),
    })
    return { name: "beacon", registry }
  })
}

const loadCurve = (flags: ConnectionFlags) =>
  Effect.gen(function* () {
    const serverKey = orUndefined(flags.serverKey)
    const keyFile = orUndefined(flags.curveKey)
    if (serverKey === undefined && keyFile === undefined) return undefined
    if (serverKey === undefined)
      return yield* Effect.fail(usage("--curve-key needs --server-key (the nodes' public key)"))
    if (!TransportOptions.isZ85Key(serverKey)) {
      return yield* Effect.fail(usage("--server-key is not a Z85 CURVE public key (40 characters)"))
    }
    const pair =
      keyFile === undefined
        ? Curve.generateKeyPair()
        : yield* Curve.loadKeyPair(filePath(keyFile)).pipe(
            Effect.mapError((error) => (error.reason === "Io" ? failed(error.message) : usage(error.message))),
          )
    return { serverKey, pair }
  })

/** Opens a session from the connection flags; everything closes with the scope. */
export const open = (flags: ConnectionFlags): Effect.Effect<Session, CliFailure, Scope.Scope> =>
  Effect.gen(function* () {
    const timeoutMs = yield* ms(flags.timeout, "timeout")
    const waitMs = yield* ms(flags.wait, "wait")
    const curve = yield* loadCurve(flags)
    const node = yield* Node.makeZmq({
      id: `zactor-cli-${process.pid}`,
      bind: [],
      admin: false,
      helloTimeout: timeoutMs,
      defaultTimeout: timeoutMs,
      // Exit at once: nothing the CLI sends is worth waiting for once it is done.
      transport: {
        linger: 0,
        ...(curve === undefined ? {} : { curve: { publicKey: curve.pair.publicKey, secretKey: curve.pair.secretKey } }),
      },
    }).pipe(Effect.mapError((error) => failed(error.message)))
    const source = yield* openSource(flags).pipe(Effect.mapError(discoveryFailure))
    const target = (endpoint: string): Exclude<Target, undefined> =>
      curve === undefined ? { endpoint } : { endpoint, serverPublicKey: curve.serverKey }
    const admin = (endpoint: string) => node.client(Admin.Admin, target(endpoint))
    let listened = false
    const members = Effect.gen(function* () {
      // Beacons arrive every interval: listen once for `--wait` before the first answer.
      if (source.name === "beacon" && !listened) {
        listened = true
        yield* Effect.sleep(waitMs)
      }
      const records = yield* source.registry.members.pipe(Effect.mapError(discoveryFailure))
      return records
        .filter((record) => record.endpoints.length > 0 && record.nodeId !== node.id)
        .map(
          (record): Member => ({
            nodeId: record.nodeId,
            endpoint: record.endpoints[0]!,
            services: record.services,
            actors: record.actors,
          }),
        )
    })
    return {
      node,
      timeoutMs,
      source: source.name,
      members,
      target,
      describe: (endpoint) => Effect.mapError(admin(endpoint).describe({}, { timeout: timeoutMs }), callFailure),
      metrics: (endpoint) => Effect.mapError(admin(endpoint).metrics({}, { timeout: timeoutMs }), callFailure),
    } satisfies Session
  })
