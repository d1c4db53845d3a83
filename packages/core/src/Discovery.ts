/**
 * The discovery contract core needs: a registry where a node publishes what it is (id, endpoints, services,
 * actors, metadata, protocol version) under a lease, resolves a service to the instances that serve it, and
 * watches membership change. Core declares it; `@zactor/discovery` implements it as layers (memory, static,
 * LAN beacon, etcd). A node finds the `Discovery` service in its context when it is built and then registers
 * itself, connects to the members that serve something, and routes calls by service name to them.
 *
 * Registry membership says who should exist; the transport's connection events say who answers. Both feed
 * routing, and `node.members()` shows where they disagree (see `MemberState`).
 *
 * This module holds no backend and no I/O: only the shapes, the error, and small pure helpers.
 *
 * @since 0.1.0
 */
import { Context, Data, type Duration, type Effect, Result, type Scope, Stream } from "effect"

/**
 * What a node publishes about itself, and what a registry says about a member.
 *
 * @since 0.1.0
 */
export interface MemberRecord {
  /** Stable id of the node; unique in a cluster. */
  readonly nodeId: string
  /** Endpoints it accepts connections on, e.g. `tcp://10.0.0.2:41000`. The first one is used. */
  readonly endpoints: ReadonlyArray<string>
  /** Service names it serves; `ANY_SERVICE` when not known in advance (static lists). */
  readonly services: ReadonlyArray<string>
  /** Names of the actors it hosts (served at `@name`). */
  readonly actors: ReadonlyArray<string>
  /** Application metadata. */
  readonly meta: { readonly [key: string]: string }
  /** The wire protocol version it speaks (`Envelope.PROTOCOL_VERSION`). */
  readonly protocolVersion: number
  /**
   * Its CURVE public key (Z85), when its transport uses CURVE: what peers connect to it with. Absent otherwise.
   * A key is as trustworthy as the registry that carries it (signed beacons, etcd with authentication).
   */
  readonly publicKey?: string | undefined
}

/**
 * Marks a member whose services are unknown until connected (an entry of a static list): nodes connect to it
 * and learn what it serves from its HELLO.
 *
 * @since 0.1.0
 */
export const ANY_SERVICE = "*"

/**
 * Why a member left the view.
 * - `Goodbye`: it deregistered (graceful shutdown).
 * - `Expired`: its lease ran out or its beacons stopped (crash, partition) or its entry was deleted.
 * - `Removed`: a resync with the registry no longer found it.
 *
 * @since 0.1.0
 */
export type LeftReason = "Goodbye" | "Expired" | "Removed"

/**
 * A change of membership. A watch starts with one `Joined` per member already known.
 *
 * @since 0.1.0
 */
export type MembershipEvent =
  | { readonly _tag: "Joined"; readonly member: MemberRecord }
  | { readonly _tag: "Updated"; readonly member: MemberRecord; readonly previous: MemberRecord }
  | { readonly _tag: "Left"; readonly member: MemberRecord; readonly reason: LeftReason }

/**
 * Why a discovery operation failed.
 * - `InvalidOptions`: a backend option is out of range or malformed.
 * - `InvalidRecord`: the record cannot be published (e.g. larger than a beacon packet may be).
 * - `Unavailable`: the backend cannot be reached or its socket cannot be opened.
 * - `Closed`: the backend was shut down.
 *
 * @since 0.1.0
 */
export type DiscoveryErrorReason = "InvalidOptions" | "InvalidRecord" | "Unavailable" | "Closed"

/**
 * A failed discovery operation, with a closed `reason`.
 *
 * @since 0.1.0
 */
export class DiscoveryError extends Data.TaggedError("DiscoveryError")<{
  readonly reason: DiscoveryErrorReason
  readonly message: string
  readonly cause?: unknown
}> {
  /** Guard that works across duplicated installs, where `instanceof` would not. */
  static is(u: unknown): u is DiscoveryError {
    return typeof u === "object" && u !== null && (u as { _tag?: unknown })._tag === "DiscoveryError"
  }
}

/**
 * A live registration, returned by `register`; it lasts until the scope of `register` closes.
 *
 * @since 0.1.0
 */
export interface Registration {
  /** Replaces the published record (the node serves something new). Same `nodeId` required. */
  readonly update: (record: MemberRecord) => Effect.Effect<void, DiscoveryError>
}

/**
 * Counters of a backend: input it ignored, by reason, and recoveries. Keys are backend-specific and
 * documented by each backend (e.g. `malformed`, `wrongCluster`, `unauthenticated`, `garbage`, `reconnects`).
 *
 * @since 0.1.0
 */
export type DiscoveryStats = { readonly [counter: string]: number }

/**
 * The operations of a registry.
 *
 * Invariants every backend keeps:
 * - `register` fails only for an invalid record or options, never because the backend is briefly
 *   unreachable: it keeps the registration alive (re-registering after outages) until its scope closes, and
 *   then deregisters (a goodbye) as well as it can.
 * - A watch never fails for a transient outage: the last known view stays (so calls continue) and the backend
 *   catches up when it is reachable again, emitting what changed meanwhile.
 * - Bad input from the network or the registry (malformed, foreign, unauthenticated, garbage) is ignored and
 *   counted in `stats`, never a failure.
 * - The view includes this process's own registrations (for etcd, once etcd has them).
 *
 * @since 0.1.0
 */
export interface DiscoveryShape {
  /** The backend's name: `memory`, `static`, `beacon`, `etcd`. */
  readonly backend: string
  /** Publishes `record` under a lease until the scope closes. Fails with `InvalidRecord`. */
  readonly register: (record: MemberRecord) => Effect.Effect<Registration, DiscoveryError, Scope.Scope>
  /** Every member known now. */
  readonly members: Effect.Effect<ReadonlyArray<MemberRecord>, DiscoveryError>
  /** The members serving `service` (a service name, or `@name` for an actor). */
  readonly resolve: (service: string) => Effect.Effect<ReadonlyArray<MemberRecord>, DiscoveryError>
  /** Membership changes: a `Joined` per member known at subscription, then changes as they happen. */
  readonly watch: Stream.Stream<MembershipEvent, DiscoveryError>
  /** A snapshot of the backend's counters. */
  readonly stats: () => DiscoveryStats
}

/**
 * The discovery service. Optional: a node without it routes only to nodes it was told to connect to.
 *
 * @since 0.1.0
 */
export class Discovery extends Context.Service<Discovery, DiscoveryShape>()("@zactor/core/Discovery") {}

/**
 * How a node uses discovery.
 *
 * @since 0.1.0
 */
export interface LinkOptions {
  /**
   * How long a call by service name (or node id) waits for a matching member to be discovered and connected
   * when none is, before failing `unavailable`. Covers start-up, when a node calls before its first beacon or
   * watch event. Default 2 s; 0 fails at once.
   */
  readonly waitForInstance: Duration.Input
}

/**
 * The link options a node reads when it is built; provide another value to change them.
 *
 * @since 0.1.0
 */
export const LinkOptions = Context.Reference<LinkOptions>("@zactor/core/Discovery/LinkOptions", {
  defaultValue: () => ({ waitForInstance: 2000 }),
})

/**
 * Where a member stands for this node, from the registry (who should exist) and the transport (who answers).
 * - `alive`: registered and connected.
 * - `draining`: registered and connected, but draining before it stops (`NodeShape.drain`): sent nothing new.
 * - `joining`: registered, connection not up yet (just discovered, or never answered).
 * - `unreachable`: registered, but its connection is down: the registry and the heartbeats disagree.
 * - `unregistered`: connected and answering, but gone from the registry (its lease expired while it still
 *   runs, e.g. it lost the registry): routed to until its connection drops.
 * - `passive`: registered, serves nothing, so not connected to.
 * - `incompatible`: registered with another protocol version; not connected to.
 * - `untrusted`: registered with a CURVE key this node does not trust (`curve.allowedServerKeys`); not
 *   connected to.
 *
 * @since 0.1.0
 */
export type MemberState =
  | "alive"
  | "draining"
  | "joining"
  | "unreachable"
  | "unregistered"
  | "passive"
  | "incompatible"
  | "untrusted"

/**
 * One member as a node sees it (`node.members()`).
 *
 * @since 0.1.0
 */
export interface MemberView extends MemberRecord {
  readonly state: MemberState
  /** Whether the registry lists it now. */
  readonly registered: boolean
  /** The endpoint this node connects to (`undefined` when not connected to). */
  readonly endpoint: string | undefined
  /** When `state` last changed (epoch ms). */
  readonly since: number
}

/**
 * Whether a member serves a service name, or `@name` for an actor.
 *
 * @since 0.1.0
 */
export const serves = (member: MemberRecord, service: string): boolean =>
  service.startsWith("@")
    ? member.actors.includes(service.slice(1))
    : member.services.includes(service) || member.services.includes(ANY_SERVICE)

/**
 * Whether two records say the same thing (used to tell updates from repeats).
 *
 * @since 0.1.0
 */
export const sameRecord = (a: MemberRecord, b: MemberRecord): boolean =>
  a.nodeId === b.nodeId &&
  a.protocolVersion === b.protocolVersion &&
  sameList(a.endpoints, b.endpoints) &&
  sameList(a.services, b.services) &&
  sameList(a.actors, b.actors) &&
  sameMeta(a.meta, b.meta)

const sameList = (a: ReadonlyArray<string>, b: ReadonlyArray<string>): boolean =>
  a.length === b.length && a.every((value, i) => value === b[i])

const sameMeta = (a: { readonly [key: string]: string }, b: { readonly [key: string]: string }): boolean => {
  const keys = Object.keys(a)
  return keys.length === Object.keys(b).length && keys.every((key) => a[key] === b[key])
}

/**
 * The changes of one service's instances, derived from a membership watch: `Joined` when a member starts
 * serving it (or joins serving it), `Left` (reason `Removed`) when it stops serving it, `Updated` otherwise.
 *
 * @since 0.1.0
 */
export const watchService = (
  discovery: DiscoveryShape,
  service: string,
): Stream.Stream<MembershipEvent, DiscoveryError> =>
  discovery.watch.pipe(
    Stream.filterMap((event) => {
      const derived = forService(event, service)
      return derived === undefined ? Result.fail(event) : Result.succeed(derived)
    }),
  )

const forService = (event: MembershipEvent, service: string): MembershipEvent | undefined => {
  if (event._tag !== "Updated") return serves(event.member, service) ? event : undefined
  const was = serves(event.previous, service)
  const is = serves(event.member, service)
  if (was && is) return event
  if (is) return { _tag: "Joined", member: event.member }
  if (was) return { _tag: "Left", member: event.previous, reason: "Removed" }
  return undefined
}
