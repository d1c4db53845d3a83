/**
 * The `Discovery` service of `@zactor/core` with this package's backends as layers, so an application needs
 * one import:
 *
 * ```ts
 * Node.layerZmq({ bind: ["tcp://0.0.0.0:*"] }).pipe(Layer.provide(Discovery.layerBeacon({ cluster: "shop" })))
 * ```
 *
 * A node built with a `Discovery` in context registers itself, connects to the members that serve something,
 * and calls services by name with no endpoint configured (see docs/DISCOVERY.md).
 *
 * @since 0.1.0
 */
import { Discovery as Contract } from "@zactor/core"
import * as BeaconDiscovery from "./BeaconDiscovery.ts"
import * as EtcdDiscovery from "./EtcdDiscovery.ts"
import * as MemoryDiscovery from "./MemoryDiscovery.ts"
import * as StaticDiscovery from "./StaticDiscovery.ts"

/** The service key, declared by core. @since 0.1.0 */
export const Discovery = Contract.Discovery
/** The service key, declared by core. @since 0.1.0 */
export type Discovery = Contract.Discovery
/** A discovery failure with a closed `reason`. @since 0.1.0 */
export const DiscoveryError = Contract.DiscoveryError
/** A discovery failure with a closed `reason`. @since 0.1.0 */
export type DiscoveryError = Contract.DiscoveryError
/** The operations of a registry. @since 0.1.0 */
export type DiscoveryShape = Contract.DiscoveryShape
/** What a member publishes. @since 0.1.0 */
export type MemberRecord = Contract.MemberRecord
/** A change of membership. @since 0.1.0 */
export type MembershipEvent = Contract.MembershipEvent
/** A member as a node sees it. @since 0.1.0 */
export type MemberView = Contract.MemberView
/** How a node uses discovery. @since 0.1.0 */
export const LinkOptions = Contract.LinkOptions
/** The changes of one service's instances. @since 0.1.0 */
export const watchService = Contract.watchService

/** One process, several nodes, a shared registry (tests, in-process apps). @since 0.1.0 */
export const layerMemory = MemoryDiscovery.layer
/** A fixed list of peers. @since 0.1.0 */
export const layerStatic = StaticDiscovery.layer
/** A fixed list of peers from `ZACTOR_PEERS`. @since 0.1.0 */
export const layerStaticFromEnv = StaticDiscovery.layerFromEnv
/** UDP beacons on the local network, no server: the embedded default. @since 0.1.0 */
export const layerBeacon = BeaconDiscovery.layer
/** UDP beacons configured from `ZACTOR_BEACON_*`. @since 0.1.0 */
export const layerBeaconFromEnv = BeaconDiscovery.layerFromEnv
/** etcd: leases, watches, reconnects; for clusters beyond one network. @since 0.1.0 */
export const layerEtcd = EtcdDiscovery.layer
/** etcd configured from `ZACTOR_ETCD_*`. @since 0.1.0 */
export const layerEtcdFromEnv = EtcdDiscovery.layerFromEnv
