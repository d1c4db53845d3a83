/**
 * @zactor/discovery: registry backends for zactor nodes (memory, static list, LAN beacon, etcd), as layers
 * of the `Discovery` service that `@zactor/core` declares.
 *
 * @since 0.1.0
 */

/** The LAN beacon backend. @since 0.1.0 */
export * as BeaconDiscovery from "./BeaconDiscovery.ts"
/** Options of the beacon. @since 0.1.0 */
export * as BeaconOptions from "./BeaconOptions.ts"
/** The service with every backend as a layer. @since 0.1.0 */
export * as Discovery from "./Discovery.ts"
/** The etcd backend. @since 0.1.0 */
export * as EtcdDiscovery from "./EtcdDiscovery.ts"
/** Options of the etcd backend. @since 0.1.0 */
export * as EtcdOptions from "./EtcdOptions.ts"
/** The in-process backend. @since 0.1.0 */
export * as MemoryDiscovery from "./MemoryDiscovery.ts"
/** The static-list backend. @since 0.1.0 */
export * as StaticDiscovery from "./StaticDiscovery.ts"
