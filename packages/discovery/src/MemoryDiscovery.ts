/**
 * The in-memory registry: several nodes of one process share a `MemoryRegistry`, each through its own
 * `Discovery` layer. Registration is immediate and lasts until its scope closes (a goodbye); `expire`
 * removes a member as a lease expiry would after a crash. For tests and in-process applications.
 *
 * @since 0.1.0
 */
import { Discovery } from "@zactor/core"
import { Effect, Layer } from "effect"
import { Membership } from "./internal/membership.ts"
import { isValidRecord } from "./internal/records.ts"

/**
 * A registry shared by the nodes of one process.
 *
 * @since 0.1.0
 */
export interface MemoryRegistry {
  /** @internal */
  readonly membership: Membership
}

/**
 * A new, empty registry.
 *
 * @since 0.1.0
 */
export const makeRegistry = (): MemoryRegistry => ({ membership: new Membership(["registrations", "expired"]) })

/**
 * Removes a member as if its lease had expired (its process crashed). Returns whether it was registered.
 *
 * @since 0.1.0
 */
export const expire = (registry: MemoryRegistry, nodeId: string): boolean => {
  const removed = registry.membership.remove(nodeId, "Expired")
  if (removed) registry.membership.count("expired")
  return removed
}

const invalid = (record: Discovery.MemberRecord) =>
  new Discovery.DiscoveryError({
    reason: "InvalidRecord",
    message: `record of ${record.nodeId} is malformed or exceeds the limits`,
  })

/**
 * A `Discovery` over a shared registry.
 *
 * @since 0.1.0
 */
export const make = (registry: MemoryRegistry): Discovery.DiscoveryShape => {
  const membership = registry.membership
  return {
    backend: "memory",
    register: (record) =>
      Effect.gen(function* () {
        if (!isValidRecord(record)) return yield* Effect.fail(invalid(record))
        yield* Effect.acquireRelease(
          Effect.sync(() => {
            membership.count("registrations")
            membership.upsert(record)
          }),
          () => Effect.sync(() => membership.remove(record.nodeId, "Goodbye")),
        )
        const registration: Discovery.Registration = {
          update: (next) =>
            isValidRecord(next) && next.nodeId === record.nodeId
              ? Effect.sync(() => {
                  // Only while still registered: an expired member stays gone until it registers again.
                  if (membership.has(next.nodeId)) membership.upsert(next)
                })
              : Effect.fail(invalid(next)),
        }
        return registration
      }),
    members: Effect.sync(() => membership.list()),
    resolve: (service) => Effect.sync(() => membership.resolve(service)),
    watch: membership.watch,
    stats: () => membership.stats(),
  }
}

/**
 * The `Discovery` service over a shared registry.
 *
 * @since 0.1.0
 */
export const layer = (registry: MemoryRegistry): Layer.Layer<Discovery.Discovery> =>
  Layer.succeed(Discovery.Discovery, make(registry))
