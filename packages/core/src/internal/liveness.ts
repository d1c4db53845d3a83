/**
 * The liveness monitor of a node: one timer drives the detectors (`internal/detector.ts`) of every outbound
 * connection. It checks each, pings each connected peer every heartbeat interval (and probes it over UDP while it
 * is silent on its connection), applies transitions (failing calls in flight to a peer declared dead, telling
 * watchers, publishing the change), answers death watches and health pings, and samples this node's own load.
 *
 * Hot path cost for the node: one `performance.now()` and one field write per received batch (`lastHeard`);
 * everything else runs on the timer. docs/LIVENESS.md documents the rules and their timings.
 */
import { Endpoint, type Peer, type TransportEvent } from "@zactor/transport"
import { Effect } from "effect"
import * as Envelope from "../Envelope.ts"
import * as Liveness from "../Liveness.ts"
import { RpcError } from "../RpcError.ts"
import { type DetectorConfig, type PendingPing, REFUSED_WITHIN_MS, type Transition } from "./detector.ts"
import { waitingTotal } from "./mailbox.ts"
import type { RuntimeMetrics } from "./nodeMetrics.ts"
import * as ProbeSocket from "./probeSocket.ts"
import type { Remote } from "./remotes.ts"

/** UDP probes start once a peer has been silent on its connection for this many heartbeat intervals. */
export const PROBE_AFTER_INTERVALS = 1.5
/** UDP probes go this many times per heartbeat interval while the silence lasts. */
export const PROBES_PER_INTERVAL = 5
/** A UDP probe unanswered for this long is forgotten, ms. */
const PROBE_EXPIRY_MS = 2000

/** What the monitor needs from its node. */
export interface MonitorHost {
  readonly selfId: string
  readonly metrics: RuntimeMetrics
  /** The node's outbound connections. */
  readonly remotes: () => Iterable<Remote>
  /** The outbound connection to an endpoint, made on first use. */
  readonly remoteFor: (endpoint: string, serverPublicKey?: string) => Effect.Effect<Remote, RpcError>
  /** The endpoints a node that connected to this one announced in its HELLO, if any. */
  readonly inboundEndpoints: (nodeId: string) => ReadonlyArray<string> | undefined
  readonly send: (peer: Peer.PeerId, envelope: Envelope.Envelope) => void
  /** Whether this node serves an address now (for actor watches). */
  readonly serves: (address: string) => boolean
  /** Requests this node is serving now. */
  readonly inflight: () => number
  readonly publish: (change: Liveness.PeerChange) => void
  /** Checks the nodes calling this one, each round: `stallMs` > 0 when this node was stalled meanwhile. */
  readonly checkCallers: (now: number, stallMs: number) => void
}

/** A death watch waiting to fire. */
interface Watcher {
  /** The watched actor's address, or undefined for the node itself. */
  readonly actor: string | undefined
  readonly fire: (notice: Liveness.DeathNotice) => void
  readonly fail: (error: RpcError) => void
}

/** Runs the detectors of one node. */
export class Monitor {
  readonly options: Liveness.ResolvedLivenessOptions
  readonly settings: Liveness.HeartbeatSettings
  readonly tickMs: number
  private readonly host: MonitorHost
  private readonly joinTimeoutMs: number
  private readonly watchers = new Map<Remote, Set<Watcher>>()
  private readonly localWatchers = new Set<Watcher>()
  private readonly signals = new Map<string, () => number>()
  private timer: ReturnType<typeof setInterval> | undefined = undefined
  /** Answers probes, on the host of the node's tcp endpoint (its port is announced). */
  private answerer: ProbeSocket.ProbeSocket | undefined = undefined
  /** Send this node's probes and receive their answers, on every interface (per family; opened on first use). */
  private readonly probers = new Map<"udp4" | "udp6", ProbeSocket.ProbeSocket | "opening">()
  /** UDP probes in flight, oldest first, by (random) sequence number, one space for all peers. */
  private readonly probes = new Map<number, { readonly remote: Remote; readonly at: number }>()
  private lastTick = performance.now()
  private lagWindowMax = 0
  private lagWindowStart = performance.now()
  private closed = false
  /** The worst lateness of this node's timer over the last completed second, ms. */
  eventLoopDelayMs = 0

  constructor(options: Liveness.ResolvedLivenessOptions, joinTimeoutMs: number, host: MonitorHost) {
    this.options = options
    this.settings = { intervalMs: options.heartbeatIntervalMs, timeoutMs: options.heartbeatTimeoutMs }
    this.tickMs = Math.min(50, Math.max(10, options.heartbeatIntervalMs / 5))
    this.joinTimeoutMs = joinTimeoutMs
    this.host = host
  }

  /** Starts the timer. */
  start(): void {
    if (this.timer !== undefined || this.closed) return
    this.lastTick = performance.now()
    this.timer = setInterval(() => this.tick(), this.tickMs)
    // Liveness must never keep a process alive on its own.
    this.timer.unref()
  }

  /**
   * Opens the UDP socket that answers probes (with `liveness.datagramProbes`, the default) on the host of the
   * node's first tcp endpoint to bind, so that it is reachable exactly where the node is. Without a tcp endpoint
   * (nobody can probe it) or when it cannot be bound, the node announces no port and is watched through its
   * connections alone.
   */
  async openProbe(bind: ReadonlyArray<string>): Promise<void> {
    if (!this.options.datagramProbes || this.answerer !== undefined) return
    let host: string | undefined
    for (const endpoint of bind) {
      const parsed = Endpoint.parse(endpoint)
      if (typeof parsed !== "string" && parsed.scheme === "tcp") {
        host = parsed.host
        break
      }
    }
    if (host === undefined) return
    const answerer = await ProbeSocket.open(ProbeSocket.bindHost(host), (bytes, address, port) =>
      this.onProbe(bytes, address, port),
    )
    if (this.closed) answerer?.close()
    else this.answerer = answerer
  }

  /** The heartbeat settings this node announces in HELLO/WELCOME, with its UDP probe port when it has one. */
  announced(): Liveness.HeartbeatSettings {
    return this.answerer === undefined ? this.settings : { ...this.settings, udpPort: this.answerer.port }
  }

  /** The socket this node's probes to `host` leave from; opened (asynchronously) on first use. */
  private prober(host: string): ProbeSocket.ProbeSocket | undefined {
    const family = host.includes(":") ? "udp6" : "udp4"
    const prober = this.probers.get(family)
    if (prober !== undefined) return prober === "opening" ? undefined : prober
    this.probers.set(family, "opening")
    void ProbeSocket.open(family === "udp6" ? "::" : "0.0.0.0", (bytes) => this.onAnswer(bytes)).then((opened) => {
      if (this.closed || opened === undefined) opened?.close()
      else this.probers.set(family, opened)
    })
    return undefined
  }

  /** Stops the timer; pending watches and pings fail `unavailable`. */
  close(): void {
    this.closed = true
    this.answerer?.close()
    for (const prober of this.probers.values()) if (prober !== "opening") prober.close()
    this.probes.clear()
    if (this.timer !== undefined) clearInterval(this.timer)
    this.timer = undefined
    const closing = new RpcError({ code: "unavailable", message: "node is closing" })
    for (const set of this.watchers.values()) for (const watcher of set) watcher.fail(closing)
    for (const watcher of this.localWatchers) watcher.fail(closing)
    this.watchers.clear()
    this.localWatchers.clear()
    for (const remote of this.host.remotes()) this.failPings(remote, closing)
  }

  /** The detector configuration of one link. */
  config(remote: Remote): DetectorConfig {
    const peer = remote.info?.heartbeat ?? undefined
    return {
      intervalMs: this.options.heartbeatIntervalMs,
      timeoutMs: Liveness.linkTimeoutMs(this.settings, peer),
      maxTimeoutMs: this.options.maxHeartbeatTimeoutMs,
      reviveAfterMs: this.options.reviveAfterMs,
      joinTimeoutMs: this.joinTimeoutMs,
    }
  }

  // ---- the timer ----------------------------------------------------------------------------------------------

  /** One round: own lag, every peer's state, pings, local actor watches. Public for tests. */
  tick(): void {
    const now = performance.now()
    const lag = Math.max(0, now - this.lastTick - this.tickMs)
    this.lastTick = now
    if (lag > this.lagWindowMax) this.lagWindowMax = lag
    if (now - this.lagWindowStart >= 1000) {
      this.eventLoopDelayMs = Math.round(this.lagWindowMax)
      this.lagWindowMax = 0
      this.lagWindowStart = now
    }
    // This node was stalled (its own event loop, or the whole process frozen): peers could not be heard meanwhile.
    // Only a stall of at least an interval counts: a loop merely busy (ticks tens of ms late) still reads what
    // arrives between ticks, and crediting every late tick would add up to more than the real silence.
    const stalled = lag > Math.max(this.tickMs, this.options.heartbeatIntervalMs)
    for (const [seq, probe] of this.probes) {
      if (now - probe.at < PROBE_EXPIRY_MS) break
      this.probes.delete(seq)
    }
    for (const remote of this.host.remotes()) this.checkRemote(remote, now, stalled ? lag : 0)
    this.host.checkCallers(now, stalled ? lag : 0)
    for (const watcher of this.localWatchers) {
      if (watcher.actor !== undefined && !this.host.serves(watcher.actor)) {
        this.localWatchers.delete(watcher)
        watcher.fire(this.notice("ActorStopped", this.host.selfId, undefined, watcher.actor, "not served on this node"))
      }
    }
  }

  private checkRemote(remote: Remote, now: number, stallMs: number): void {
    const detector = remote.liveness
    if (remote.incompatible !== undefined) {
      const killed = detector.kill(now, `refused: ${remote.incompatible.message}`)
      if (killed !== undefined) this.apply(remote, killed, "Refused")
      return
    }
    const incarnation = remote.info?.incarnation ?? undefined
    if (incarnation !== undefined && incarnation !== detector.incarnation) {
      const previous = detector.incarnation
      detector.incarnation = incarnation
      if (previous !== undefined) {
        // The watched process is gone even if this node never saw it dead (it came back faster than detection).
        this.fire(remote, "Restarted", `a new process answers at ${remote.endpoint}`)
        const change = detector.restarted(now)
        if (change !== undefined) this.apply(remote, change, undefined)
      }
    }
    const change = detector.check(now, remote.down, this.config(remote), stallMs)
    if (change !== undefined) this.apply(remote, change, "Dead")
    if (remote.connectedBefore && !remote.down && now - detector.lastPingAt >= this.options.heartbeatIntervalMs) {
      this.sendPing(remote, now, undefined)
    }
    this.maybeProbe(remote, now)
    this.expirePings(remote, now)
  }

  /** While a peer is silent on its connection, probes it over UDP (if it announced a port and the link is plain). */
  private maybeProbe(remote: Remote, now: number): void {
    const port = remote.info?.heartbeat?.udpPort
    // With CURVE the connection is authenticated and the datagrams would not be: liveness stays on the connection.
    if (!this.options.datagramProbes || typeof port !== "number" || remote.peer.publicKey !== undefined) return
    const detector = remote.liveness
    const interval = this.options.heartbeatIntervalMs
    if (detector.silence(now) < PROBE_AFTER_INTERVALS * interval) return
    if (now - detector.lastProbeAt < interval / PROBES_PER_INTERVAL) return
    if (detector.probeHost === undefined) detector.probeHost = probeHostOf(remote.endpoint)
    if (detector.probeHost === null) return
    const probe = this.prober(detector.probeHost)
    if (probe === undefined) return
    // Random, not counted: an off-path sender cannot forge the answer that would keep a dead peer alive.
    const seq = 1 + Math.floor(Math.random() * 0x7fff_fffe)
    this.probes.set(seq, { remote, at: now })
    detector.lastProbeAt = now
    probe.send(detector.probeHost, port, Envelope.encode([Envelope.PROTOCOL_VERSION, Envelope.Kind.Ping, seq, {}]))
    this.host.metrics.pingsSent++
  }

  /** A datagram on the answering socket: a PING is answered at once, with no load (datagrams are not authenticated). */
  private onProbe(bytes: Uint8Array, address: string, port: number): void {
    const envelope = Envelope.decode(bytes)
    if (Envelope.isMalformed(envelope) || envelope[1] !== Envelope.Kind.Ping) return
    this.answerer?.send(
      address,
      port,
      Envelope.encode([Envelope.PROTOCOL_VERSION, Envelope.Kind.Pong, envelope[2], {}]),
    )
  }

  /** A datagram on a probing socket: the PONG to one of this node's probes is a sign of life of the peer probed. */
  private onAnswer(bytes: Uint8Array): void {
    const envelope = Envelope.decode(bytes)
    if (Envelope.isMalformed(envelope) || envelope[1] !== Envelope.Kind.Pong) return
    const probe = this.probes.get(envelope[2])
    if (probe === undefined) return
    this.probes.delete(envelope[2])
    probe.remote.liveness.lastHeard = performance.now()
    this.host.metrics.pongsReceived++
  }

  /** Acts on a transition: counts it, fails calls in flight to a dead peer, tells watchers, publishes it. */
  private apply(remote: Remote, change: Transition, deathReason: Liveness.DeathReason | undefined): void {
    const metrics = this.host.metrics
    if (change.to === "dead") {
      metrics.peersDead++
      remote.failAll(
        new RpcError({
          code: "unavailable",
          reason: "peer-dead",
          message: `${remote.endpoint}${remote.info === undefined ? "" : ` (${remote.info.id})`} declared dead: ${change.reason}`,
        }),
      )
      if (deathReason !== undefined) this.fire(remote, deathReason, change.reason)
    } else if (change.from === "dead") {
      metrics.peersRevived++
    }
    this.host.publish({
      nodeId: remote.info?.id,
      endpoint: remote.endpoint,
      from: change.from,
      to: change.to,
      at: Date.now(),
      silentMs: Math.round(change.silentMs),
      reason: change.reason,
    })
  }

  // ---- transport events -----------------------------------------------------------------------------------------

  /**
   * Follows connection events of an outbound peer (the node sets `down` itself). libzmq reports a reconnection as
   * scheduled at once after a drop, then again after each failed attempt: one that comes back as soon as the
   * attempt was due was refused.
   */
  onTransportEvent(event: TransportEvent.TransportEvent, remote: Remote): void {
    const detector = remote.liveness
    if (event._tag === "Disconnected" || event._tag === "Connected") {
      detector.refusedConnects = 0
      detector.lastRetryAt = undefined
    } else if (event._tag === "ConnectRetried") {
      const now = performance.now()
      const previous = detector.lastRetryAt
      if (previous !== undefined && now - previous <= detector.lastRetryIntervalMs + REFUSED_WITHIN_MS) {
        detector.refusedConnects++
      }
      detector.lastRetryAt = now
      detector.lastRetryIntervalMs = event.intervalMs
    }
  }

  /** The node dropped a connection (discovery says the node left): its watchers are told. */
  forgotten(remote: Remote): void {
    this.fire(remote, "Left", `the connection to ${remote.endpoint} was dropped`)
    this.watchers.delete(remote)
    this.failPings(remote, new RpcError({ code: "unavailable", message: `${remote.endpoint} was disconnected` }))
  }

  // ---- pings --------------------------------------------------------------------------------------------------

  private sendPing(remote: Remote, now: number, answer: PendingPing["answer"]): number {
    const detector = remote.liveness
    const seq = detector.nextSeq
    detector.nextSeq = seq >= 0x7fff_ffff ? 1 : seq + 1
    detector.pings.set(seq, { at: now, answer })
    if (answer === undefined) detector.lastPingAt = now
    const watched = this.watchedActors(remote)
    this.host.send(
      remote.peer.id,
      watched === undefined
        ? [Envelope.PROTOCOL_VERSION, Envelope.Kind.Ping, seq, this.load()]
        : [Envelope.PROTOCOL_VERSION, Envelope.Kind.Ping, seq, this.load(), watched],
    )
    this.host.metrics.pingsSent++
    return seq
  }

  /** Heartbeat pings unanswered for longer than any bound are forgotten (their connection dropped them). */
  private expirePings(remote: Remote, now: number): void {
    const pings = remote.liveness.pings
    if (pings.size === 0) return
    for (const [seq, ping] of pings) {
      if (now - ping.at < this.options.maxHeartbeatTimeoutMs * 2) break
      if (ping.answer === undefined) pings.delete(seq)
    }
  }

  private failPings(remote: Remote, error: RpcError): void {
    const pings = [...remote.liveness.pings.values()]
    remote.liveness.pings.clear()
    for (const ping of pings) ping.answer?.(error)
  }

  /** The PONG for a PING received from any peer: this node's load, and which of the asked addresses it lacks. */
  pong(ping: Envelope.Ping): Envelope.Pong {
    const asked = ping[4]
    if (asked === undefined || asked === null || asked.length === 0) {
      return [Envelope.PROTOCOL_VERSION, Envelope.Kind.Pong, ping[2], this.load()]
    }
    const missing = asked.filter((address) => !this.host.serves(address))
    return [Envelope.PROTOCOL_VERSION, Envelope.Kind.Pong, ping[2], this.load(), missing]
  }

  /** A PONG from an outbound peer. */
  onPong(remote: Remote, pong: Envelope.Pong): void {
    this.host.metrics.pongsReceived++
    const detector = remote.liveness
    const seq = pong[2]
    const ping = detector.pings.get(seq)
    if (ping === undefined) return
    detector.pings.delete(seq)
    // Pongs come back in order: heartbeat pings older than this one were lost with a dropped connection.
    for (const [older, entry] of detector.pings) {
      if (entry.at >= ping.at) break
      if (entry.answer === undefined) detector.pings.delete(older)
    }
    const rtt = performance.now() - ping.at
    detector.observeRtt(rtt)
    detector.load = pong[3]
    ping.answer?.({ rttMs: rtt, load: pong[3] })
    const missing = pong[4]
    if (missing !== undefined && missing !== null && missing.length > 0) {
      const set = this.watchers.get(remote)
      if (set === undefined) return
      for (const watcher of set) {
        if (watcher.actor !== undefined && missing.includes(watcher.actor)) {
          set.delete(watcher)
          watcher.fire(
            this.notice(
              "ActorStopped",
              remote.info?.id,
              remote.endpoint,
              watcher.actor,
              "the node no longer serves it",
            ),
          )
        }
      }
    }
  }

  /** Sends a PING now and waits for its PONG, up to `timeoutMs`. */
  ping(remote: Remote, timeoutMs: number): Effect.Effect<Liveness.PingResult, RpcError> {
    return Effect.callback<Liveness.PingResult, RpcError>((resume) => {
      if (this.closed) return resume(Effect.fail(new RpcError({ code: "unavailable", message: "node is closing" })))
      const refusal = remote.incompatible ?? (remote.down ? notConnected(remote) : undefined)
      if (refusal !== undefined) return resume(Effect.fail(refusal))
      let timer: ReturnType<typeof setTimeout> | undefined
      const seq = this.sendPing(remote, performance.now(), (outcome) => {
        clearTimeout(timer)
        if (RpcError.is(outcome)) resume(Effect.fail(outcome))
        else resume(Effect.succeed({ rttMs: outcome.rttMs, nodeId: remote.info?.id, load: outcome.load }))
      })
      timer = setTimeout(() => {
        remote.liveness.pings.delete(seq)
        resume(
          Effect.fail(
            new RpcError({ code: "deadline_exceeded", message: `${remote.endpoint}: no PONG within ${timeoutMs} ms` }),
          ),
        )
      }, timeoutMs)
      return Effect.sync(() => {
        clearTimeout(timer)
        remote.liveness.pings.delete(seq)
      })
    })
  }

  // ---- watches ------------------------------------------------------------------------------------------------

  /** Waits until the target dies (see `Liveness.DeathReason`); fails only when it cannot be watched at all. */
  watch(target: Liveness.WatchTarget): Effect.Effect<Liveness.DeathNotice, RpcError> {
    return Effect.suspend(() => {
      if (Liveness.isActorRefLike(target)) {
        const address = `@${target.name}`
        if (target.node === this.host.selfId) return this.await(undefined, address)
        const endpoint = target.endpoints[0]
        if (endpoint === undefined) {
          return Effect.fail(
            new RpcError({ code: "invalid_argument", message: `actor ref ${address} names no endpoint to watch` }),
          )
        }
        return Effect.flatMap(this.host.remoteFor(endpoint), (remote) => this.await(remote, address))
      }
      if ("endpoint" in target) {
        return Effect.flatMap(this.host.remoteFor(target.endpoint, target.serverPublicKey), (remote) =>
          this.await(remote, undefined),
        )
      }
      const remote = this.findNode(target.node)
      if (remote !== undefined) return this.await(remote, undefined)
      const endpoint = this.host.inboundEndpoints(target.node)?.[0]
      if (endpoint !== undefined) return Effect.flatMap(this.host.remoteFor(endpoint), (r) => this.await(r, undefined))
      return Effect.succeed(this.notice("Unknown", target.node, undefined, undefined, "no such node is connected"))
    })
  }

  /** The outbound connection to a node by id, preferring one not known dead. */
  findNode(nodeId: string): Remote | undefined {
    let found: Remote | undefined
    for (const remote of this.host.remotes()) {
      if (remote.info?.id !== nodeId) continue
      if (found === undefined || (found.liveness.state === "dead" && remote.liveness.state !== "dead")) found = remote
    }
    return found
  }

  private await(remote: Remote | undefined, actor: string | undefined): Effect.Effect<Liveness.DeathNotice, RpcError> {
    return Effect.callback<Liveness.DeathNotice, RpcError>((resume) => {
      if (this.closed) return resume(Effect.fail(new RpcError({ code: "unavailable", message: "node is closing" })))
      if (remote !== undefined && remote.liveness.state === "dead") {
        const reason = remote.incompatible === undefined ? "Dead" : "Refused"
        return resume(
          Effect.succeed(this.notice(reason, remote.info?.id, remote.endpoint, actor, "already declared dead")),
        )
      }
      const watcher: Watcher = {
        actor,
        fire: (notice) => resume(Effect.succeed(notice)),
        fail: (error) => resume(Effect.fail(error)),
      }
      if (remote === undefined) this.localWatchers.add(watcher)
      else {
        let set = this.watchers.get(remote)
        if (set === undefined) {
          set = new Set()
          this.watchers.set(remote, set)
        }
        set.add(watcher)
      }
      return Effect.sync(() => {
        if (remote === undefined) this.localWatchers.delete(watcher)
        else this.watchers.get(remote)?.delete(watcher)
      })
    })
  }

  /** Fires (once) and removes every watcher of a remote. */
  private fire(remote: Remote, reason: Liveness.DeathReason, detail: string): void {
    const set = this.watchers.get(remote)
    if (set === undefined || set.size === 0) return
    this.watchers.delete(remote)
    for (const watcher of set) {
      watcher.fire(this.notice(reason, remote.info?.id, remote.endpoint, watcher.actor, detail))
    }
  }

  private watchedActors(remote: Remote): ReadonlyArray<string> | undefined {
    const set = this.watchers.get(remote)
    if (set === undefined) return undefined
    let actors: Array<string> | undefined
    for (const watcher of set) {
      if (watcher.actor === undefined) continue
      actors ??= []
      if (!actors.includes(watcher.actor)) actors.push(watcher.actor)
    }
    return actors
  }

  private notice(
    reason: Liveness.DeathReason,
    nodeId: string | undefined,
    endpoint: string | undefined,
    actor: string | undefined,
    detail: string,
  ): Liveness.DeathNotice {
    return { reason, nodeId, endpoint, actor, at: Date.now(), detail }
  }

  // ---- load and status ------------------------------------------------------------------------------------------

  /** Adds a load signal reported in PONGs; returns its removal. */
  addSignal(name: string, read: () => number): () => void {
    this.signals.set(name, read)
    return () => {
      if (this.signals.get(name) === read) this.signals.delete(name)
    }
  }

  /** This node's load now. */
  load(): Liveness.Load {
    const load: Record<string, number> = {
      inflight: this.host.inflight(),
      eventLoopDelayMs: this.eventLoopDelayMs,
      mailbox: waitingTotal(),
    }
    for (const [name, read] of this.signals) {
      const value = read()
      if (Number.isFinite(value)) load[name] = value
    }
    return load
  }

  /** A snapshot of one peer's liveness. */
  status(remote: Remote): Liveness.PeerStatus {
    const detector = remote.liveness
    const now = performance.now()
    return {
      state: detector.state,
      since: detector.changedAtEpoch,
      silentMs: Math.round(detector.silence(now)),
      boundMs: Math.round(detector.bound(this.config(remote))),
      rttMs: detector.rttMs,
      load: detector.load,
      recentDeaths: detector.recentDeaths(now),
      circuit: remote.guard.circuit(),
    }
  }
}

const notConnected = (remote: Remote): RpcError =>
  new RpcError({ code: "unavailable", message: `${remote.endpoint} is not connected` })

/** The host of a tcp endpoint, to send UDP probes to; `null` for other schemes. */
const probeHostOf = (endpoint: string): string | null => {
  const parsed = Endpoint.parse(endpoint)
  return typeof parsed === "string" || parsed.scheme !== "tcp" ? null : ProbeSocket.unbracket(parsed.host)
}
