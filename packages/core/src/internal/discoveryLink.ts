/**
 * The link between a node and a `Discovery` service, when one is provided: the node registers itself (and
 * publishes a new record whenever it starts or stops serving something), watches membership, connects to the
 * members that serve something as they join (so a call by service name finds them with no endpoint
 * configured), and stops routing to members that leave.
 *
 * Two sources decide routing. The registry says who should exist; the transport's connection events (with
 * ZMTP heartbeats) say who answers. Routing needs a live connection in any case (`Remote.down`); the registry
 * adds and removes the connections. Where they disagree the link keeps the member and shows it in
 * `members()`: registered but unreachable (not routed to until it answers), or still answering after its
 * registration expired (routed to until its connection drops).
 *
 * The link never fails the node for a registry problem after start: backends keep their last view through
 * outages (see the `Discovery` invariants).
 */
import type { TransportShape } from "@zactor/transport"
import { Duration, Effect, FiberMap, Queue, Schedule, type Scope, Stream } from "effect"
import * as Discovery from "../Discovery.ts"
import * as Envelope from "../Envelope.ts"
import { RpcError } from "../RpcError.ts"
import { pollUntil } from "./pollUntil.ts"
import type { Remote } from "./remotes.ts"

/** What the link needs from its node. */
export interface LinkHost {
  readonly transport: TransportShape
  readonly options: { readonly id: string }
  /** What the node says about itself in HELLO. */
  info(): Envelope.NodeInfo
  /** The outbound connection to an endpoint (with its CURVE key, when CURVE is on), made on first use. */
  remoteFor(endpoint: string, serverPublicKey?: string): Effect.Effect<Remote, RpcError>
  /** Drops the connection to an endpoint: pending calls fail `unavailable`, the transport disconnects. */
  forget(endpoint: string): void
}

/** A running link. */
export interface Link {
  /** Tells the link the node's info changed (it serves something new); the record is republished. */
  readonly infoChanged: () => void
  /** The members as this node sees them. */
  readonly members: () => ReadonlyArray<Discovery.MemberView>
  /** Waits until `ready()` holds or `waitForInstance` passes (polled: this is the rare, no-route path). */
  readonly awaitRoute: (ready: () => boolean) => Effect.Effect<void>
}

/** How long a member that said goodbye may finish the calls in flight before its connection is dropped. */
const GOODBYE_DRAIN_MS = 5_000
const POLL_MS = 10

interface Tracked {
  record: Discovery.MemberRecord
  registered: boolean
  remote: Remote | undefined
  endpoint: string | undefined
  state: Discovery.MemberState
  since: number
  /** Its CURVE key is not among the transport's `allowedServerKeys`: not connected to. */
  untrusted: boolean
}

/** The record a node publishes, from its HELLO info and its transport's CURVE public key (if any). */
export const recordOf = (info: Envelope.NodeInfo, publicKey: string | undefined): Discovery.MemberRecord => ({
  nodeId: info.id,
  endpoints: info.endpoints,
  services: info.services,
  actors: info.actors,
  meta: info.meta,
  protocolVersion: Envelope.PROTOCOL_VERSION,
  ...(publicKey === undefined ? {} : { publicKey }),
})

/** Connected, and not declared dead by liveness (silent on an open connection: frozen, event loop stuck). */
const isUp = (remote: Remote): boolean => remote.connectedBefore && !remote.down && remote.liveness.state !== "dead"

const stateOf = (tracked: Tracked): Discovery.MemberState => {
  if (tracked.record.protocolVersion !== Envelope.PROTOCOL_VERSION) return "incompatible"
  if (tracked.untrusted) return "untrusted"
  const remote = tracked.remote
  if (remote === undefined) return "passive"
  if (!tracked.registered) return "unregistered"
  if (isUp(remote) && remote.info !== undefined) return remote.info.draining === true ? "draining" : "alive"
  return remote.connectedBefore ? "unreachable" : "joining"
}

/** Whether the node should hold a connection to a member: it serves something, in our protocol version. */
const wanted = (record: Discovery.MemberRecord): boolean =>
  record.protocolVersion === Envelope.PROTOCOL_VERSION &&
  record.endpoints.length > 0 &&
  (record.services.length > 0 || record.actors.length > 0)

const toRpcError = (error: Discovery.DiscoveryError): RpcError =>
  new RpcError({
    code: error.reason === "InvalidOptions" || error.reason === "InvalidRecord" ? "invalid_argument" : "unavailable",
    message: `discovery: ${error.message}`,
    cause: error,
  })

/**
 * Starts the link: registers the node, then follows membership until the scope closes (which deregisters).
 * Fails only if the registration is refused (`invalid_argument`) or the backend is closed.
 */
export const start = (
  host: LinkHost,
  discovery: Discovery.DiscoveryShape,
): Effect.Effect<Link, RpcError, Scope.Scope> =>
  Effect.gen(function* () {
    const options = yield* Discovery.LinkOptions
    const waitMs = Duration.toMillis(Duration.fromInputUnsafe(options.waitForInstance))
    const selfId = host.options.id
    const tracked = new Map<string, Tracked>()
    const drains = yield* FiberMap.make<string>()

    const refresh = (entry: Tracked): void => {
      const state = stateOf(entry)
      if (state !== entry.state) {
        entry.state = state
        entry.since = Date.now()
      }
    }
    const drop = (nodeId: string, entry: Tracked): void => {
      if (entry.endpoint !== undefined) host.forget(entry.endpoint)
      entry.remote = undefined
      entry.endpoint = undefined
      tracked.delete(nodeId)
    }

    const onUpsert = (record: Discovery.MemberRecord) =>
      Effect.gen(function* () {
        // Itself: by id, or by endpoint for entries of a static list that do not name their node.
        if (record.nodeId === selfId || record.endpoints.some((e) => host.transport.endpoints().includes(e))) return
        yield* FiberMap.remove(drains, record.nodeId)
        const endpoint = wanted(record) ? record.endpoints[0] : undefined
        let entry = tracked.get(record.nodeId)
        if (entry === undefined) {
          entry = {
            record,
            registered: true,
            remote: undefined,
            endpoint: undefined,
            state: "joining",
            since: Date.now(),
            untrusted: false,
          }
          tracked.set(record.nodeId, entry)
        }
        const previousKey = entry.record.publicKey
        entry.record = record
        entry.registered = true
        if (entry.remote !== undefined) entry.remote.retired = false
        if (entry.endpoint !== undefined && (entry.endpoint !== endpoint || previousKey !== record.publicKey)) {
          // Restarted elsewhere (new port), with new CURVE keys, or stopped serving: the old connection leads
          // nowhere useful.
          host.forget(entry.endpoint)
          entry.remote = undefined
          entry.endpoint = undefined
        }
        if (endpoint !== undefined && entry.remote === undefined) {
          // With CURVE on, the member's key comes with its record; a member without one is refused by the
          // transport (logged here) rather than connected to in plain text.
          const remote = yield* host.remoteFor(endpoint, record.publicKey).pipe(
            Effect.tapError((error) => Effect.logWarning(`discovery: cannot connect to ${record.nodeId}`, error)),
            Effect.result,
          )
          entry.untrusted = remote._tag === "Failure" && remote.failure.code === "permission_denied"
          if (remote._tag === "Success") {
            entry.remote = remote.success
            entry.endpoint = endpoint
          }
        }
        refresh(entry)
      })

    const onLeft = (record: Discovery.MemberRecord, reason: Discovery.LeftReason) =>
      Effect.gen(function* () {
        const entry = tracked.get(record.nodeId)
        if (entry === undefined || record.nodeId === selfId) return
        entry.registered = false
        const remote = entry.remote
        if (remote === undefined || !isUp(remote)) return drop(record.nodeId, entry)
        if (reason === "Goodbye") {
          // It is shutting down: send it nothing new, let the calls in flight finish, then drop it.
          remote.retired = true
          refresh(entry)
          yield* FiberMap.run(
            drains,
            record.nodeId,
            Effect.andThen(
              pollUntil(() => remote.outstanding === 0 || !isUp(remote), GOODBYE_DRAIN_MS, POLL_MS),
              Effect.sync(() => {
                if (tracked.get(record.nodeId) === entry && !entry.registered) drop(record.nodeId, entry)
              }),
            ),
          )
          return
        }
        // Expired in the registry but still answering: keep routing to it until its connection drops.
        refresh(entry)
      })

    const onEvent = (event: Discovery.MembershipEvent) =>
      event._tag === "Left" ? onLeft(event.member, event.reason) : onUpsert(event.member)

    const registration = yield* discovery
      .register(recordOf(host.info(), host.transport.publicKey))
      .pipe(Effect.mapError(toRpcError))

    // Republish on change, coalesced: serving ten contracts in one turn publishes once or twice, not ten times.
    const changes = yield* Queue.sliding<void>(1)
    yield* Effect.forever(
      Effect.gen(function* () {
        yield* Queue.take(changes)
        yield* registration
          .update(recordOf(host.info(), host.transport.publicKey))
          .pipe(Effect.catch((error) => Effect.logWarning("discovery: cannot publish this node's record", error)))
      }),
    ).pipe(Effect.forkScoped)

    // The watch does not fail for outages (backend invariant); should a backend still end it, resubscribe.
    yield* Stream.runForEach(discovery.watch, onEvent).pipe(
      Effect.tapCause((cause) => Effect.logWarning("discovery: watch ended; resubscribing", cause)),
      Effect.retry(Schedule.spaced(1000)),
      Effect.forkScoped,
    )

    // A member gone from the registry is dropped once its connection drops too.
    yield* Stream.runForEach(host.transport.events, (event) =>
      Effect.sync(() => {
        if (event._tag !== "Disconnected" && event._tag !== "Connected") return
        for (const [nodeId, entry] of tracked) {
          if (entry.remote === undefined || entry.remote.peer.id !== event.peer) continue
          if (event._tag === "Disconnected" && !entry.registered) drop(nodeId, entry)
          else refresh(entry)
        }
      }),
    ).pipe(Effect.forkScoped)

    const awaitRoute = (ready: () => boolean): Effect.Effect<void> => pollUntil(ready, waitMs, POLL_MS)

    const link: Link = {
      infoChanged: () => {
        Queue.offerUnsafe(changes, undefined)
      },
      members: () =>
        [...tracked.values()].map((entry) => {
          refresh(entry)
          return {
            ...entry.record,
            state: entry.state,
            registered: entry.registered,
            endpoint: entry.endpoint,
            since: entry.since,
          }
        }),
      awaitRoute,
    }
    return link
  })
