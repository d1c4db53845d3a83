/**
 * The LAN beacon: discovery with no server, the embedded default for several processes or hosts on one
 * network. Every member sends a small UDP beacon (its record) every `interval` to a multicast group (or a
 * broadcast address) and listens on the same port; a member appears on its first beacon and is dropped when
 * its beacons stop for `expiry` (crash, partition) or at once on its goodbye (graceful shutdown). A member
 * that hears a newcomer answers with its own beacon at once, so a new node sees the cluster in about one
 * round trip instead of one interval.
 *
 * Safety: beacons of another cluster name, from another protocol, malformed, oversized, unsigned or badly
 * signed (with a `secret`), replayed or out of order are ignored and counted in `stats()`; none of them can
 * fail or stop the backend.
 *
 * Why multicast by default: every process bound to the port on a host receives each beacon (as with
 * broadcast), switches with IGMP snooping deliver it only to hosts that joined the group, it needs no
 * per-subnet broadcast address, and `multicastTtl` can let it cross multicast routers. Broadcast remains an
 * option for networks that filter multicast. Neither crosses a cloud VPC: use etcd there.
 *
 * @since 0.1.0
 */
import * as Dgram from "node:dgram"
import { Discovery } from "@zactor/core"
import { Effect, Layer, type Scope } from "effect"
import * as BeaconOptions from "./BeaconOptions.ts"
import * as Packet from "./internal/beaconPacket.ts"
import { checkedRegistration, Membership, queriesOf } from "./internal/membership.ts"
import { isValidRecord, localAddresses, reachableFrom, withHost } from "./internal/records.ts"

/**
 * The counters in `stats()`: packets sent and received, members expired and said goodbye, and packets
 * ignored by reason (`oversized`, `foreign` magic or version, `malformed`, `wrongCluster`, `unauthenticated`,
 * `stale` replays or reordering, `conflicts` with this process's own node ids, `overCapacity`), `sendErrors`,
 * and `stalls` (this process's own timer ran late by over half an interval and 50 ms: the stalled time is not
 * counted as the others' silence).
 *
 * @since 0.1.0
 */
export const counters = [
  "packetsSent",
  "packetsReceived",
  "joined",
  "expired",
  "goodbyes",
  "oversized",
  "foreign",
  "malformed",
  "wrongCluster",
  "unauthenticated",
  "stale",
  "conflicts",
  "overCapacity",
  "sendErrors",
  "stalls",
] as const

/** Members tracked at most; beyond, new ones are ignored (a flood of forged ids cannot exhaust memory). */
const MAX_MEMBERS = 10_000

interface Own {
  record: Discovery.MemberRecord
  readonly incarnation: number
  seq: number
}

interface Heard {
  readonly incarnation: number
  readonly seq: number
  /** Monotonic (`performance.now()`): a wall-clock step must not expire everyone at once. */
  lastSeen: number
}

/** The sockets, timers and tables of one beacon instance. Callbacks are plain functions: no fiber per packet. */
class BeaconEngine {
  readonly membership = new Membership(counters)
  private readonly own = new Map<string, Own>()
  private readonly heard = new Map<string, Heard>()
  /** Incarnations that said goodbye: their late beacons must not resurrect them. */
  private readonly departed = new Map<string, { readonly incarnation: number; readonly until: number }>()
  private timer: ReturnType<typeof setTimeout> | undefined
  private earlyTimer: ReturnType<typeof setTimeout> | undefined
  private lastEarly = 0
  /** This host's addresses, read at start: a beacon from one of them comes from a process on this host. */
  private readonly local = localAddresses()
  private lastIncarnation = 0
  private closed = false

  private readonly options: BeaconOptions.ResolvedBeaconOptions
  private readonly socket: Dgram.Socket

  constructor(options: BeaconOptions.ResolvedBeaconOptions, socket: Dgram.Socket) {
    this.options = options
    this.socket = socket
  }

  start(): void {
    this.socket.on("message", (packet, from) => this.onPacket(packet, from.address))
    this.schedule()
  }

  encode(own: Own, kind: Packet.Beacon["kind"]): Uint8Array {
    const record = { ...own.record, endpoints: withHost(own.record.endpoints, this.options.advertiseHost) }
    return Packet.encode(
      { cluster: this.options.cluster, kind, incarnation: own.incarnation, seq: own.seq, record },
      this.options.secret,
    )
  }

  /** Adds a registration and announces it at once. */
  add(record: Discovery.MemberRecord): Own {
    this.lastIncarnation = Math.max(Date.now(), this.lastIncarnation + 1)
    const own: Own = { record, incarnation: this.lastIncarnation, seq: 0 }
    this.own.set(record.nodeId, own)
    this.membership.upsert(record)
    void this.send(this.encode(own, "alive"))
    return own
  }

  update(own: Own, record: Discovery.MemberRecord): void {
    own.record = record
    own.seq++
    this.membership.upsert(record)
    void this.send(this.encode(own, "alive"))
  }

  /** Removes a registration and says goodbye (twice: one lost datagram should not cost an expiry). */
  async remove(own: Own): Promise<void> {
    if (this.own.get(own.record.nodeId) !== own) return
    this.own.delete(own.record.nodeId)
    this.membership.remove(own.record.nodeId, "Goodbye")
    own.seq++
    const goodbye = this.encode(own, "goodbye")
    await this.send(goodbye)
    await this.send(goodbye)
  }

  private send(packet: Uint8Array): Promise<void> {
    if (this.closed) return Promise.resolve()
    return new Promise((resolve) => {
      this.socket.send(packet, this.options.port, this.options.address, (error) => {
        this.membership.count(error ? "sendErrors" : "packetsSent")
        resolve()
      })
    })
  }

  private round(): void {
    for (const own of this.own.values()) {
      own.seq++
      void this.send(this.encode(own, "alive"))
    }
  }

  private schedule(): void {
    // ±10 % jitter keeps members that started together from sending in lockstep.
    const delay = this.options.intervalMs * (0.9 + Math.random() * 0.2)
    const due = performance.now() + delay
    this.timer = setTimeout(() => {
      // A late timer means this process was stalled (GC pause, CPU starvation): beacons may be waiting unread
      // in the socket buffer, and timers run before I/O is polled. The stalled time does not count as the
      // others' silence, or one stall would expire everyone and cause a storm of leaves and joins.
      const stalled = performance.now() - due
      if (stalled > Math.max(this.options.intervalMs / 2, 50)) {
        this.membership.count("stalls")
        for (const heard of this.heard.values()) heard.lastSeen += stalled
      }
      this.round()
      this.sweep()
      this.schedule()
    }, delay)
  }

  /**
   * Answers a newcomer early: within 5 ms, coalesced, and at most one early round per quarter interval (a
   * crowd starting together triggers a few extra rounds, not one per newcomer). Periodic rounds do not count:
   * the newcomer may have started listening just after the last one.
   */
  private early(): void {
    if (this.earlyTimer !== undefined || this.closed) return
    const wait = Math.max(5, this.lastEarly + this.options.intervalMs / 4 - Date.now())
    this.earlyTimer = setTimeout(() => {
      this.earlyTimer = undefined
      this.lastEarly = Date.now()
      this.round()
    }, wait)
  }

  private sweep(): void {
    const now = performance.now()
    for (const [nodeId, heard] of this.heard) {
      if (now - heard.lastSeen <= this.options.expiryMs) continue
      this.heard.delete(nodeId)
      if (this.membership.remove(nodeId, "Expired")) this.membership.count("expired")
    }
    for (const [nodeId, gone] of this.departed) if (gone.until < now) this.departed.delete(nodeId)
  }

  onPacket(packet: Uint8Array, source: string): void {
    const { membership } = this
    membership.count("packetsReceived")
    const beacon = Packet.decode(packet, this.options.cluster, this.options.secret, this.options.maxPacketBytes)
    if (Packet.isRejection(beacon)) return membership.count(beacon)
    const nodeId = beacon.record.nodeId
    const mine = this.own.get(nodeId)
    if (mine !== undefined) {
      // Our own beacon looped back is expected; another process using our id is a misconfiguration.
      if (beacon.incarnation !== mine.incarnation) membership.count("conflicts")
      return
    }
    const gone = this.departed.get(nodeId)
    if (gone !== undefined && beacon.incarnation <= gone.incarnation) return membership.count("stale")
    const known = this.heard.get(nodeId)
    if (
      known !== undefined &&
      (beacon.incarnation < known.incarnation || (beacon.incarnation === known.incarnation && beacon.seq <= known.seq))
    )
      return membership.count("stale")
    if (beacon.kind === "goodbye") {
      this.heard.delete(nodeId)
      this.departed.set(nodeId, {
        incarnation: beacon.incarnation,
        until: performance.now() + 4 * this.options.expiryMs,
      })
      if (membership.remove(nodeId, "Goodbye")) membership.count("goodbyes")
      return
    }
    if (known === undefined && this.heard.size >= MAX_MEMBERS) return membership.count("overCapacity")
    this.heard.set(nodeId, { incarnation: beacon.incarnation, seq: beacon.seq, lastSeen: performance.now() })
    const sameHost = source.startsWith("127.") || this.local.has(source)
    const endpoints = reachableFrom(withHost(beacon.record.endpoints, source), sameHost)
    const record = { ...beacon.record, endpoints }
    if (membership.upsert(record) === "joined") {
      membership.count("joined")
      this.early()
    }
  }

  async close(): Promise<void> {
    clearTimeout(this.timer)
    clearTimeout(this.earlyTimer)
    await Promise.all([...this.own.values()].map((own) => this.remove(own)))
    this.closed = true
    await new Promise<void>((resolve) => this.socket.close(() => resolve()))
  }
}

const unavailable = (message: string, cause?: unknown) =>
  new Discovery.DiscoveryError({ reason: "Unavailable", message, cause })

/** Opens the UDP socket: bound to the port on every address (several processes share it), group joined. */
const openSocket = (options: BeaconOptions.ResolvedBeaconOptions) =>
  Effect.callback<Dgram.Socket, Discovery.DiscoveryError>((resume) => {
    const socket = Dgram.createSocket({ type: "udp4", reuseAddr: true })
    const fail = (error: unknown) => {
      socket.close()
      resume(Effect.fail(unavailable(`beacon socket on port ${options.port}: ${String(error)}`, error)))
    }
    socket.once("error", fail)
    socket.bind(options.port, () => {
      try {
        if (options.multicast) {
          socket.addMembership(options.address, options.interface)
          if (options.interface !== undefined) socket.setMulticastInterface(options.interface)
          socket.setMulticastTTL(options.multicastTtl)
          socket.setMulticastLoopback(true)
        } else {
          socket.setBroadcast(true)
        }
        // Room for bursts (a crowd starting together); the kernel caps it at net.core.rmem_max.
        socket.setRecvBufferSize(1 << 20)
      } catch (error) {
        return fail(error)
      }
      socket.off("error", fail)
      // Later socket errors (e.g. ICMP unreachable on a send) are counted by the send callback, not fatal.
      socket.on("error", () => {})
      resume(Effect.succeed(socket))
    })
  })

/**
 * A beacon `Discovery`, running until the scope closes (which sends a goodbye for each registration). Fails
 * with `InvalidOptions`, or `Unavailable` when the socket cannot be opened (port in use without address
 * reuse, no such interface, no route for the group).
 *
 * @since 0.1.0
 */
export const make = (
  options: BeaconOptions.BeaconOptions = {},
): Effect.Effect<Discovery.DiscoveryShape, Discovery.DiscoveryError, Scope.Scope> =>
  Effect.gen(function* () {
    const resolved = yield* BeaconOptions.resolve(options)
    const engine = yield* Effect.acquireRelease(
      Effect.map(openSocket(resolved), (socket) => {
        const engine = new BeaconEngine(resolved, socket)
        engine.start()
        return engine
      }),
      (engine) => Effect.promise(() => engine.close()),
    )
    const check = (record: Discovery.MemberRecord) => {
      if (!isValidRecord(record))
        return new Discovery.DiscoveryError({
          reason: "InvalidRecord",
          message: `record of ${record.nodeId} is malformed`,
        })
      const size = Packet.encode(
        { cluster: resolved.cluster, kind: "alive", incarnation: Date.now(), seq: 2 ** 40, record },
        resolved.secret,
      ).length
      return size > resolved.maxPacketBytes
        ? new Discovery.DiscoveryError({
            reason: "InvalidRecord",
            message: `record of ${record.nodeId} needs a ${size}-byte beacon, over maxPacketBytes (${resolved.maxPacketBytes})`,
          })
        : undefined
    }
    const membership = engine.membership
    const shape: Discovery.DiscoveryShape = {
      backend: "beacon",
      register: (record) =>
        Effect.gen(function* () {
          const problem = check(record)
          if (problem !== undefined) return yield* Effect.fail(problem)
          const own = yield* Effect.acquireRelease(
            Effect.sync(() => engine.add(record)),
            (own) => Effect.promise(() => engine.remove(own)),
          )
          return checkedRegistration(record.nodeId, check, (next) => Effect.sync(() => engine.update(own, next)))
        }),
      ...queriesOf(membership),
    }
    return shape
  })

/**
 * The beacon as the `Discovery` service.
 *
 * @since 0.1.0
 */
export const layer = (
  options: BeaconOptions.BeaconOptions = {},
): Layer.Layer<Discovery.Discovery, Discovery.DiscoveryError> => Layer.effect(Discovery.Discovery, make(options))

/**
 * The beacon configured from `ZACTOR_BEACON_*` environment variables over `base` (see `BeaconOptions.fromEnv`).
 *
 * @since 0.1.0
 */
export const layerFromEnv = (
  base: BeaconOptions.BeaconOptions = {},
): Layer.Layer<Discovery.Discovery, Discovery.DiscoveryError> =>
  Layer.effect(Discovery.Discovery, Effect.flatMap(BeaconOptions.fromEnv(base), make))
