/**
 * The etcd backend, for clusters that outgrow one network: each registration is a key
 * `<prefix><cluster>/members/<nodeId>` attached to a lease kept alive by the client, so a crashed node's key
 * expires with its lease; members are mirrored with a watch. When etcd restarts or is unreachable the last
 * view stays (calls continue), registrations are re-established (a new lease if the old one was lost), and
 * the watch resumes after a full resync that reports what changed meanwhile.
 *
 * Uses the `etcd3` client (gRPC) with its own retry policies off: this module owns retries, paced by
 * `retryInterval`, so recovery after an outage takes one interval rather than a circuit breaker's pause.
 *
 * @since 0.1.0
 */
import { Discovery } from "@zactor/core"
import { type IBackoff, noop } from "cockatiel"
import { Effect, Layer, type Scope } from "effect"
import type { Etcd3 } from "etcd3"
import * as EtcdOptions from "./EtcdOptions.ts"
import { EtcdKeeper } from "./internal/etcdKeeper.ts"
import { EtcdMirror } from "./internal/etcdMirror.ts"
import { encodeValue, MAX_VALUE_BYTES } from "./internal/etcdValue.ts"
import { checkedRegistration, Membership, queriesOf } from "./internal/membership.ts"
import { isValidRecord, withHost } from "./internal/records.ts"

/**
 * The counters in `stats()`: `registrations`, `reregistrations` (after a lost lease or a missing key),
 * `registerFailures`, `leasesLost`, `resyncs`, `watchRestarts`, `unavailable` (failed reads), `storeResets`,
 * `expired`, `goodbyes`, and `garbage` (values under the prefix that are not valid records).
 *
 * @since 0.1.0
 */
export const counters = [
  "registrations",
  "reregistrations",
  "registerFailures",
  "leasesLost",
  "resyncs",
  "watchRestarts",
  "unavailable",
  "storeResets",
  "expired",
  "goodbyes",
  "garbage",
] as const

/**
 * The key prefix of a cluster's members.
 *
 * @since 0.1.0
 */
export const membersPrefix = (options: EtcdOptions.ResolvedEtcdOptions): string =>
  `${options.prefix}${options.cluster}/members/`

/** Watch reconnect delays: 100 ms doubling to 1 s (the client's default grows to 30 s). */
const watchBackoff = (ms: number): IBackoff<unknown> => ({
  duration: ms,
  next: () => watchBackoff(Math.min(ms * 2, 1000)),
})

// etcd3 (gRPC, protobuf) takes ~0.4 s to load: only applications that use etcd pay for it.
const makeClient = async (options: EtcdOptions.ResolvedEtcdOptions): Promise<Etcd3> =>
  new (await import("etcd3")).Etcd3({
    hosts: [...options.endpoints],
    ...(options.auth === undefined ? {} : { auth: { ...options.auth } }),
    dialTimeout: options.requestTimeoutMs,
    defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + options.requestTimeoutMs }),
    grpcOptions: {
      // gRPC's default reconnect backoff grows to 2 minutes; a restarted etcd should be seen within a second.
      "grpc.initial_reconnect_backoff_ms": 100,
      "grpc.max_reconnect_backoff_ms": 1000,
    },
    faultHandling: {
      host: () => noop,
      global: noop,
      watchBackoff: watchBackoff(50),
    },
  })

/**
 * An etcd `Discovery`, running until the scope closes (which deregisters with a goodbye and closes the
 * client). Waits up to `requestTimeout` for the first full read, then returns even if etcd is down (the
 * view fills when it answers). Fails only with `InvalidOptions`.
 *
 * @since 0.1.0
 */
export const make = (
  options: EtcdOptions.EtcdOptions = {},
): Effect.Effect<Discovery.DiscoveryShape, Discovery.DiscoveryError, Scope.Scope> =>
  Effect.gen(function* () {
    const resolved = yield* EtcdOptions.resolve(options)
    const base = membersPrefix(resolved)
    const membership = new Membership(counters)
    const keepers = new Map<string, EtcdKeeper>()
    const client = yield* Effect.acquireRelease(
      Effect.promise(() => makeClient(resolved)),
      (client) => Effect.sync(() => client.close()),
    )
    const mirror = new EtcdMirror(client, resolved, membership, base, {
      isOwn: (nodeId) => keepers.has(nodeId),
      ownIds: () => keepers.keys(),
      onOwnKeyMissing: (nodeId) => {
        const keeper = keepers.get(nodeId)
        if (keeper?.registered) void keeper.establish()
      },
    })
    yield* Effect.acquireRelease(
      Effect.promise(() => mirror.start(resolved.requestTimeoutMs)),
      () => Effect.sync(() => mirror.stop()),
    )

    const published = (record: Discovery.MemberRecord): Discovery.MemberRecord => ({
      ...record,
      endpoints: withHost(record.endpoints, resolved.advertiseHost),
    })
    const check = (record: Discovery.MemberRecord): Discovery.DiscoveryError | undefined =>
      isValidRecord(record) && Buffer.byteLength(encodeValue(record)) <= MAX_VALUE_BYTES
        ? undefined
        : new Discovery.DiscoveryError({
            reason: "InvalidRecord",
            message: `record of ${record.nodeId} is malformed or too large`,
          })

    const shape: Discovery.DiscoveryShape = {
      backend: "etcd",
      register: (record) =>
        Effect.gen(function* () {
          const problem = check(record)
          if (problem !== undefined) return yield* Effect.fail(problem)
          const keeper = yield* Effect.acquireRelease(
            Effect.promise(async () => {
              const keeper = new EtcdKeeper(client, resolved, membership, base + record.nodeId, published(record))
              keepers.set(record.nodeId, keeper)
              // Wait for the first write a little; if etcd is down the keeper keeps trying in the background.
              await Promise.race([
                keeper.establish(),
                new Promise((resolve) => setTimeout(resolve, resolved.requestTimeoutMs)),
              ])
              return keeper
            }),
            (keeper) =>
              Effect.promise(() => {
                keepers.delete(record.nodeId)
                return keeper.stop()
              }),
          )
          return checkedRegistration(record.nodeId, check, (next) =>
            Effect.promise(() => keeper.update(published(next))),
          )
        }),
      ...queriesOf(membership),
    }
    return shape
  })

/**
 * etcd as the `Discovery` service.
 *
 * @since 0.1.0
 */
export const layer = (
  options: EtcdOptions.EtcdOptions = {},
): Layer.Layer<Discovery.Discovery, Discovery.DiscoveryError> => Layer.effect(Discovery.Discovery, make(options))

/**
 * etcd configured from `ZACTOR_ETCD_*` environment variables over `base` (see `EtcdOptions.fromEnv`).
 *
 * @since 0.1.0
 */
export const layerFromEnv = (
  base: EtcdOptions.EtcdOptions = {},
): Layer.Layer<Discovery.Discovery, Discovery.DiscoveryError> =>
  Layer.effect(Discovery.Discovery, Effect.flatMap(EtcdOptions.fromEnv(base), make))
