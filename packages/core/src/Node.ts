/**
 * A zactor node: one process's presence in the system. It binds endpoints, greets the nodes it connects to
 * (HELLO/WELCOME: protocol version, node id, what it serves), serves contracts with handlers, and hands out
 * typed clients that call other nodes by endpoint, by node id, or by service name.
 *
 * The node owns routing, correlation and deadlines; the transport below it only moves bytes, and delivery
 * guarantees, supervision and discovery build on the node.
 *
 * @since 0.1.0
 */

import { randomBytes, randomUUID } from "node:crypto"
import {
  type Peer,
  type Received,
  Transport,
  type TransportError,
  type TransportEvent,
  type TransportOptions,
  type TransportShape,
  ZmqTransport,
} from "@zactor/transport"
import { Cause, Context, Duration, Effect, Exit, type Fiber, Layer, Option, PubSub, type Scope, Stream } from "effect"
import * as Admin from "./Admin.ts"
import { type CallContext, type CallOptions, CurrentCall, type Target } from "./CallContext.ts"
import type * as Contract from "./Contract.ts"
import type { DeadLetter } from "./DeadLetter.ts"
import * as DedupeStore from "./DedupeStore.ts"
import * as Discovery from "./Discovery.ts"
import * as Envelope from "./Envelope.ts"
import * as Interceptor from "./Interceptor.ts"
import { retrying } from "./internal/delivery.ts"
import * as DiscoveryLink from "./internal/discoveryLink.ts"
import { Dispatcher, type ServedMethod } from "./internal/dispatch.ts"
import * as LivenessMonitor from "./internal/liveness.ts"
import * as MetricsSnapshot from "./internal/metricsSnapshot.ts"
import * as NodeMetrics from "./internal/nodeMetrics.ts"
import { pollUntil } from "./internal/pollUntil.ts"
import * as Remotes from "./internal/remotes.ts"
import { TargetGuard } from "./internal/targetGuard.ts"
import { withTrace } from "./internal/trace.ts"
import * as Liveness from "./Liveness.ts"
import * as Log from "./Log.ts"
import type * as Metrics from "./Metrics.ts"
import * as NodeOptions from "./NodeOptions.ts"
import * as Prometheus from "./Prometheus.ts"
import * as Routing from "./Routing.ts"
import { isCode, type RemoteDefect, RpcError } from "./RpcError.ts"
import * as Topics from "./Topics.ts"
import * as TraceContext from "./TraceContext.ts"

/**
 * What a node knows about a connected node.
 *
 * @since 0.1.0
 */
export interface RemoteNode {
  /** The endpoint we connected to. */
  readonly endpoint: string
  /** Its HELLO/WELCOME, once received. */
  readonly info: Envelope.NodeInfo | undefined
  /** Calls sent to it that wait for an outcome. */
  readonly outstanding: number
  /** Whether it answers: state, silence, round trip, reported load, circuit (docs/LIVENESS.md). */
  readonly liveness: Liveness.PeerStatus
  /** The CURVE public key it was connected with (authenticated by the handshake), when CURVE is on. */
  readonly publicKey: string | undefined
}

/**
 * A typed client of a contract: one function per method.
 *
 * @since 0.1.0
 */
export type Client<C extends Contract.Contract> = {
  readonly [K in keyof C["methods"]]: MethodClient<C["methods"][K]>
}

/**
 * The client function of one method.
 *
 * @since 0.1.0
 */
export type MethodClient<M> =
  M extends Contract.Unary<infer P, infer S, infer E>
    ? (payload: P, options?: CallOptions) => Effect.Effect<S, E | RpcError | RemoteDefect>
    : M extends Contract.ServerStream<infer P, infer A, infer E>
      ? (payload: P, options?: CallOptions) => Stream.Stream<A, E | RpcError | RemoteDefect>
      : never

/**
 * The handlers serving a contract: one per method, written as Effects or async functions.
 *
 * @since 0.1.0
 */
export type Handlers<C extends Contract.Contract, R = never> = {
  readonly [K in keyof C["methods"]]: Handler<C["methods"][K], R>
}

/**
 * The handler of one method. A unary handler returns an Effect (failing with the contract's error type, an
 * `RpcError`, or the `RemoteDefect` of a call it made, which its caller gets as `internal`) or a Promise; a
 * streaming handler returns a Stream.
 *
 * @since 0.1.0
 */
export type Handler<M, R> =
  M extends Contract.Unary<infer P, infer S, infer E>
    ? (payload: P, context: CallContext) => Effect.Effect<S, E | RpcError | RemoteDefect, R> | Promise<S>
    : M extends Contract.ServerStream<infer P, infer A, infer E>
      ? (payload: P, context: CallContext) => Stream.Stream<A, E | RpcError | RemoteDefect, R>
      : never

/**
 * Where a contract is served: by default at its own name; actors use `@name`.
 *
 * @since 0.1.0
 */
export interface AddressOptions {
  /** The address on the wire instead of the contract name, e.g. `@counter-1` for an actor. */
  readonly address?: string | undefined
}

/**
 * What a family resolver returns for one address: the contract served there and its handlers. Return the same
 * object for every address that shares a behaviour: the node prepares it for dispatch once per object.
 *
 * @since 0.1.0
 */
export interface FamilyMember<R = never> {
  readonly contract: Contract.Contract
  /** Handlers by method name; `context.method` (`address/method`) tells which address a call is for. */
  readonly handlers: {
    readonly [method: string]: (payload: unknown, context: CallContext) => Effect.Effect<unknown, unknown, R>
  }
}

/**
 * One-way senders of a contract's methods.
 *
 * @since 0.1.0
 */
export type Teller<C extends Contract.Contract> = {
  readonly [K in keyof C["methods"]]: (
    payload: Contract.PayloadOf<C["methods"][K]>,
    options?: CallOptions,
  ) => Effect.Effect<void, RpcError>
}

/**
 * The operations of a node.
 *
 * @since 0.1.0
 */
export interface NodeShape {
  /** This node's id. */
  readonly id: string
  /** The endpoints this node is bound to. */
  readonly endpoints: () => ReadonlyArray<string>
  /** Serves a contract until the scope closes. Dies if the contract is already served here. */
  readonly serve: <C extends Contract.Contract, R = never>(
    contract: C,
    handlers: Handlers<C, R>,
    options?: AddressOptions,
  ) => Effect.Effect<void, never, Scope.Scope | R>
  /**
   * Serves a family of addresses with one registration until the scope closes: a call to an address starting
   * with `prefix` that `serve` did not register goes to the handlers `resolve(address)` returns, or fails
   * `not_found` when it returns `undefined`. Members are not announced in HELLO (they are reached by endpoint).
   * Actors use this, so that a node can host millions of them without a registration each. Dies if the prefix
   * is already served.
   */
  readonly serveFamily: <R = never>(
    prefix: string,
    resolve: (address: string) => FamilyMember<R> | undefined,
  ) => Effect.Effect<void, never, Scope.Scope | R>
  /** A typed client of a contract, sending to `target` (default: any connected node serving it). */
  readonly client: <C extends Contract.Contract>(contract: C, target?: Target, options?: AddressOptions) => Client<C>
  /**
   * Typed one-way senders of a contract's methods (TELL, at most once): each resolves once the message is
   * queued, and fails only if it cannot be (no route, queue full, invalid payload).
   */
  readonly teller: <C extends Contract.Contract>(contract: C, target?: Target, options?: AddressOptions) => Teller<C>
  /** Connects to a node and waits for its WELCOME. Fails `unavailable` or `incompatible_version`. */
  readonly connect: (
    endpoint: string,
    options?: { readonly serverPublicKey?: string | undefined },
  ) => Effect.Effect<RemoteNode, RpcError>
  /** The nodes this node has connected to. */
  readonly remotes: () => ReadonlyArray<RemoteNode>
  /**
   * Health check: sends a PING to a node (connecting to an endpoint if needed) and waits for its PONG, which the
   * node's receive loop answers (so it proves the process and its event loop work, not only an open port).
   * Succeeds with the round trip and the load the node reported; fails `deadline_exceeded` after `timeout`
   * (default 1 s) and `unavailable` when not connected.
   */
  readonly ping: (
    target: Liveness.PingTarget,
    options?: { readonly timeout?: Duration.Input | undefined },
  ) => Effect.Effect<Liveness.PingResult, RpcError>
  /**
   * Death watch: completes once, when the node (by id or endpoint) or the actor (by ref) dies or becomes
   * unreachable, with why (`Liveness.DeathNotice`); at once if it is already dead or unknown. Interrupt it to stop
   * watching. Fails `invalid_argument` for a ref without endpoints, `unavailable` if the node closes first.
   */
  readonly watch: (target: Liveness.WatchTarget) => Effect.Effect<Liveness.DeathNotice, RpcError>
  /** Every liveness state change of the nodes this node connected to, as it happens. */
  readonly peerChanges: Stream.Stream<Liveness.PeerChange>
  /**
   * Adds a load signal to what this node reports in PONGs (e.g. `mailbox`: messages waiting in actor mailboxes),
   * until the scope closes. `read` runs on every PING: keep it cheap.
   */
  readonly addLoadSignal: (name: string, read: () => number) => Effect.Effect<void, never, Scope.Scope>
  /** A snapshot of this node's counters. */
  readonly metrics: () => NodeMetrics.NodeMetrics
  /** All of this node's metrics now: counters, transport, gauges, latency histograms, failures by code. */
  readonly metricsSnapshot: () => Metrics.Snapshot
  /** The URL of the Prometheus endpoint, when `NodeOptions.metricsHttp` is set. */
  readonly metricsUrl: () => string | undefined
  /** This node's logger (pino), bound with its node id. */
  readonly logger: Log.PinoLogger
  /** The transport under this node, for its events and counters. */
  readonly transport: TransportShape
  /** Messages this node gave up on (expired, unroutable, rejected, retries exhausted...), as they happen. */
  readonly deadLetters: Stream.Stream<DeadLetter>
  /** Publishes (and counts) a message given up on by a component built on this node, such as an actor. */
  readonly reportDeadLetter: (letter: DeadLetter) => void
  /**
   * The members discovered through the `Discovery` service in context (empty without one), each with its
   * state: where the registry and the connection disagree shows here (see `Discovery.MemberState`).
   */
  readonly members: () => ReadonlyArray<Discovery.MemberView>
  /**
   * Stops routing new calls to the connected node at `endpoint`, waits up to `drain` (default 0) for the calls
   * in flight to it to finish, then drops the connection: calls still pending fail `unavailable` (retry-safe
   * ones are retried elsewhere). Worker pools use it when a worker dies (no drain) or is retired (drained).
   * Connecting to the endpoint again makes a new connection. A no-op for an endpoint not connected.
   */
  readonly disconnect: (
    endpoint: string,
    options?: { readonly drain?: Duration.Input | undefined },
  ) => Effect.Effect<void>
  /** Typed PUB/SUB topics on this node: publishers, subscriptions with gap detection (see `Topics`). */
  readonly topics: Topics.TopicsShape
  /**
   * Drains the node before it stops: from now on it refuses new calls with `unavailable` (retry-safe callers
   * send them to another instance; the admin service still answers), tells its peers in a new HELLO/WELCOME so
   * they route it nothing new, and waits up to `timeout` (default 5 s) for the calls it serves to finish.
   * Succeeds with the number still running at the end (0: drained). Draining is for good: close the node after.
   */
  readonly drain: (options?: { readonly timeout?: Duration.Input | undefined }) => Effect.Effect<number>
}

/**
 * The node service.
 *
 * @since 0.1.0
 */
export class Node extends Context.Service<Node, NodeShape>()("@zactor/core/Node") {}

interface InboundPeer {
  info: Envelope.NodeInfo | undefined
  /** `performance.now()` of the last batch from it: a caller with liveness pings every heartbeat interval. */
  lastHeardAt: number
}

/** After a drain: how long the answers handed to ZeroMQ get to reach the wire before the node may close. */
const DRAIN_SETTLE_MS = 50

class NodeRuntime {
  readonly metrics = NodeMetrics.make()
  readonly startedAt = Date.now()
  /** The contracts served with `serve`, by address (for the admin service's `describe`). */
  readonly contracts = new Map<string, Contract.Contract>()
  readonly log: Log.PinoLogger
  readonly dispatcher: Dispatcher
  private readonly remotes = new Map<Peer.PeerId, Remotes.Remote>()
  private readonly remotesByEndpoint = new Map<string, Remotes.Remote>()
  private readonly inbound = new Map<Peer.PeerId, InboundPeer>()
  readonly options: NodeOptions.ResolvedNodeOptions
  readonly transport: TransportShape
  readonly callEnv: Remotes.CallEnvironment

  readonly deadLetterHub: PubSub.PubSub<DeadLetter>
  /** Failure detection of the nodes this one connected to (docs/LIVENESS.md). */
  readonly liveness: LivenessMonitor.Monitor
  /** New at every start: peers tell a restart of this node from a reconnection by it. */
  readonly incarnation = randomBytes(9).toString("base64url")
  /** Set by `make`: publishes a liveness change. */
  onPeerChange: (change: Liveness.PeerChange) => void = () => undefined
  /** Set by `make`: the node as its users see it (its actors' mailboxes are found through it for the metrics). */
  shape: NodeShape | undefined = undefined

  constructor(
    options: NodeOptions.ResolvedNodeOptions,
    transport: TransportShape,
    dedupe: DedupeStore.DedupeStoreShape,
    deadLetterHub: PubSub.PubSub<DeadLetter>,
  ) {
    this.options = options
    this.transport = transport
    this.deadLetterHub = deadLetterHub
    this.dispatcher = new Dispatcher(transport, this.metrics, options.maxConcurrentCalls, dedupe, (letter) =>
      this.deadLetter(letter),
    )
    this.callEnv = { transport, metrics: this.metrics, defaultTimeoutMs: options.defaultTimeoutMs }
    this.liveness = new LivenessMonitor.Monitor(options.liveness, options.helloTimeoutMs, {
      selfId: options.id,
      metrics: this.metrics,
      remotes: () => this.remotes.values(),
      remoteFor: (endpoint, key) => this.remoteFor(endpoint, key),
      inboundEndpoints: (nodeId) => {
        for (const inbound of this.inbound.values()) if (inbound.info?.id === nodeId) return inbound.info.endpoints
        return undefined
      },
      send: (peer, envelope) => this.send(peer, envelope),
      serves: (address) => this.dispatcher.serves(address),
      inflight: () => this.dispatcher.inflightCount,
      publish: (change) => this.onPeerChange(change),
      checkCallers: (now, stallMs) => this.checkCallers(now, stallMs),
    })
    this.log = Log.make(options.log, { node: options.id })
    this.dispatcher.onDefect = (context, cause) =>
      this.log.error({ ...Log.callBindings(context), err: Cause.pretty(cause) }, "handler died with a defect")
  }

  /**
   * Stops the calls of callers silent past their heartbeat timeout (the larger of theirs and this node's):
   * nobody waits for those answers. Only callers that announced heartbeats (and so ping) are judged, and
   * nobody after this node itself stalled (it could not hear them meanwhile).
   */
  checkCallers(now: number, stallMs: number): void {
    for (const [peer, caller] of this.inbound) {
      if (stallMs > 0) {
        caller.lastHeardAt = now
        continue
      }
      const timeoutMs = caller.info?.heartbeat?.timeoutMs
      if (timeoutMs == null || !this.dispatcher.serving(peer)) continue
      const silentMs = now - caller.lastHeardAt
      if (silentMs <= Math.max(timeoutMs, this.options.liveness.heartbeatTimeoutMs)) continue
      const stopped = this.dispatcher.callerSilent(peer)
      if (stopped > 0) {
        this.log.warn({ caller: caller.info?.id, silentMs: Math.round(silentMs), stopped }, "caller fell silent")
      }
    }
  }

  /** All metrics now. */
  snapshot(): Metrics.Snapshot {
    return MetricsSnapshot.take({
      id: this.options.id,
      startedAt: this.startedAt,
      metrics: this.metrics,
      transport: this.transport.metrics(),
      inflight: this.dispatcher.inflightCount,
      remotes: this.remotes.values(),
      node: this.shape,
    })
  }

  /** Publishes and counts a message given up on. */
  deadLetter(letter: DeadLetter): void {
    this.metrics.deadLettered++
    NodeMetrics.countBy(this.metrics.deadLetters, letter.reason)
    if (this.log.isLevelEnabled("debug")) this.log.debug({ deadLetter: letter }, "dead letter")
    PubSub.publishUnsafe(this.deadLetterHub, letter)
  }

  info(): Envelope.NodeInfo {
    return {
      id: this.options.id,
      services: this.dispatcher.served().filter((address) => !address.startsWith("@") && address !== Admin.ADDRESS),
      actors: this.dispatcher
        .served()
        .filter((address) => address.startsWith("@"))
        .map((a) => a.slice(1)),
      endpoints: this.transport.endpoints(),
      meta: this.options.meta,
      heartbeat: this.liveness.announced(),
      incarnation: this.incarnation,
      ...(this.dispatcher.draining === undefined ? {} : { draining: true }),
    }
  }

  /** Drains (see `NodeShape.drain`): refuses new calls, tells peers, waits for the calls being served. */
  drain(timeout: Duration.Input | undefined): Effect.Effect<number> {
    return Effect.suspend(() => {
      if (this.dispatcher.draining === undefined) {
        this.dispatcher.draining = { exempt: new Set([Admin.ADDRESS]) }
        this.log.info({ inflight: this.dispatcher.inflightCount }, "draining: new calls are refused")
        this.announce()
      }
      const timeoutMs = timeout === undefined ? 5_000 : Duration.toMillis(Duration.fromInputUnsafe(timeout))
      const until = Date.now() + timeoutMs
      return pollUntil(() => this.dispatcher.inflightCount === 0, timeoutMs).pipe(
        // The last answers must leave too: a close right after would cut them off (ZeroMQ writes them from a
        // thread of its own). Wait for the outbound queues to empty, then briefly for the socket to write them.
        Effect.andThen(
          Effect.suspend(() => pollUntil(() => this.transport.metrics().queuedMessages === 0, until - Date.now())),
        ),
        Effect.andThen(Effect.suspend(() => Effect.sleep(Math.max(0, Math.min(DRAIN_SETTLE_MS, until - Date.now()))))),
        Effect.andThen(Effect.sync(() => this.dispatcher.inflightCount)),
      )
    })
  }

  /** Set by the discovery link: told when what this node serves changes, so it republishes its record. */
  onInfoChanged: (() => void) | undefined = undefined
  /** Set by the discovery link: waits (bounded) for a route to appear when a call finds none. */
  awaitRoute: ((ready: () => boolean) => Effect.Effect<void>) | undefined = undefined

  /** Tells every peer what this node serves now (after serve or stop of a contract). */
  announce(): void {
    this.onInfoChanged?.()
    // Coalesced: serving many contracts in one turn sends one HELLO/WELCOME per peer, not one per contract.
    if (this.announcePending) return
    this.announcePending = true
    setImmediate(() => {
      this.announcePending = false
      if (this.remotes.size === 0 && this.inbound.size === 0) return
      const info = this.info()
      for (const remote of this.remotes.values()) {
        this.send(remote.peer.id, [Envelope.PROTOCOL_VERSION, Envelope.Kind.Hello, info])
      }
      for (const [peer, inbound] of this.inbound) {
        if (inbound.info !== undefined) this.send(peer, [Envelope.PROTOCOL_VERSION, Envelope.Kind.Welcome, info])
      }
    })
  }
  private announcePending = false

  private send(peer: Peer.PeerId, envelope: Envelope.Envelope): void {
    this.transport.offer(peer, Envelope.encode(envelope))
  }

  // ---- connections -----------------------------------------------------------------------------------------

  remoteFor(endpoint: string, serverPublicKey?: string): Effect.Effect<Remotes.Remote, RpcError> {
    const existing = this.remotesByEndpoint.get(endpoint)
    if (existing !== undefined) return Effect.succeed(existing)
    return this.transport.connect(endpoint, { serverPublicKey }).pipe(
      Effect.map((peer) => {
        const again = this.remotesByEndpoint.get(endpoint)
        if (again !== undefined) return again
        const remote = new Remotes.Remote(peer, endpoint)
        remote.guard = new TargetGuard(
          { breaker: this.options.circuitBreaker, maxCallsPerTarget: this.options.maxCallsPerTarget },
          this.metrics,
        )
        this.remotes.set(peer.id, remote)
        this.remotesByEndpoint.set(endpoint, remote)
        // HELLO goes first on the connection; calls may follow at once, per-peer order keeps them behind it.
        this.send(peer.id, [Envelope.PROTOCOL_VERSION, Envelope.Kind.Hello, this.info()])
        return remote
      }),
      Effect.mapError(
        (error) =>
          new RpcError({
            code:
              error.reason === "InvalidEndpoint"
                ? "invalid_argument"
                : error.reason === "Untrusted"
                  ? "permission_denied"
                  : "unavailable",
            message: error.message,
            cause: error,
          }),
      ),
    )
  }

  connect(endpoint: string, serverPublicKey?: string): Effect.Effect<RemoteNode, RpcError> {
    return Effect.flatMap(this.remoteFor(endpoint, serverPublicKey), (remote) =>
      Effect.promise(() => remote.awaitWelcome()).pipe(
        Effect.timeoutOrElse({
          duration: this.options.helloTimeoutMs,
          orElse: () =>
            Effect.succeed(
              new RpcError({
                code: "unavailable",
                message: `${endpoint} did not answer HELLO within ${this.options.helloTimeoutMs} ms`,
              }),
            ),
        }),
        Effect.flatMap((refused) =>
          refused === undefined ? Effect.succeed(this.describe(remote)) : Effect.fail(refused),
        ),
      ),
    )
  }

  describe(remote: Remotes.Remote): RemoteNode {
    return {
      endpoint: remote.endpoint,
      info: remote.info,
      outstanding: remote.outstanding,
      liveness: this.liveness.status(remote),
      publicKey: remote.peer.publicKey,
    }
  }

  listRemotes(): Array<RemoteNode> {
    return [...this.remotes.values()].map((remote) => this.describe(remote))
  }

  /** Picks the remote for a call. */
  route(address: string, target: Target): Effect.Effect<Remotes.Remote, RpcError> {
    // Lazy: a call's effect may be built once and run later or many times; each run routes afresh (built
    // eagerly, forty calls created together all went to the instance that was least loaded at creation).
    return Effect.suspend(() => this.routeNow(address, target))
  }

  /**
   * The remote for a call when one can be picked without waiting (an endpoint already connected, a live
   * instance of the service), else `undefined` (then `route` connects or waits). The hot path of every call:
   * whatever `routeNow` checks for a pick, this checks too.
   */
  routeSync(address: string, target: Target): Remotes.Remote | undefined {
    if (target !== undefined && "endpoint" in target) return this.remotesByEndpoint.get(target.endpoint)
    return this.pick(address, target)
  }

  private routeNow(address: string, target: Target): Effect.Effect<Remotes.Remote, RpcError> {
    if (target !== undefined && "endpoint" in target) return this.remoteFor(target.endpoint, target.serverPublicKey)
    const best = this.pick(address, target)
    if (best !== undefined) return Effect.succeed(best)
    const unroutable = () => {
      const what = target !== undefined ? `node "${target.node}"` : `a node serving "${address}"`
      return Effect.fail(new RpcError({ code: "unavailable", message: `no connection to ${what}` }))
    }
    if (this.awaitRoute === undefined) return unroutable()
    // With discovery, the instance may be about to appear (start-up): wait for it, bounded.
    return Effect.flatMap(
      this.awaitRoute(() => this.pick(address, target) !== undefined),
      () => {
        const found = this.pick(address, target)
        return found !== undefined ? Effect.succeed(found) : unroutable()
      },
    )
  }

  /**
   * The connected, compatible remote for a call: never one declared dead; among several, `Routing.choose` (live
   * before suspect, admissible before refusing, then the routing strategy).
   */
  private pick(address: string, target: { readonly node: string } | undefined): Remotes.Remote | undefined {
    let only: Remotes.Remote | undefined
    let several: Array<Remotes.Remote> | undefined
    for (const remote of this.remotes.values()) {
      if (remote.info === undefined || remote.incompatible !== undefined || remote.down || remote.retired) continue
      if (remote.info.draining === true) continue
      if (remote.liveness.state === "dead") continue
      if (target !== undefined ? remote.info.id !== target.node : !serves(remote.info, address)) continue
      if (only === undefined) only = remote
      else {
        several ??= [only]
        several.push(remote)
      }
    }
    return several === undefined ? only : Routing.choose(several, this.options.routing)
  }

  /** Pings a node (see `NodeShape.ping`). */
  ping(target: Liveness.PingTarget, timeout: Duration.Input | undefined): Effect.Effect<Liveness.PingResult, RpcError> {
    const timeoutMs = timeout === undefined ? 1000 : Math.max(1, Duration.toMillis(Duration.fromInputUnsafe(timeout)))
    const remote =
      "endpoint" in target
        ? this.remoteFor(target.endpoint, target.serverPublicKey)
        : Effect.suspend(() => {
            const found = this.liveness.findNode(target.node)
            return found !== undefined
              ? Effect.succeed(found)
              : Effect.fail(new RpcError({ code: "unavailable", message: `no connection to node "${target.node}"` }))
          })
    return Effect.flatMap(remote, (found) => this.liveness.ping(found, timeoutMs))
  }

  /** Drops the connection to an endpoint (discovery says the node left): its pending calls fail. */
  disconnect(endpoint: string, drain: Duration.Input | undefined): Effect.Effect<void> {
    return Effect.suspend(() => {
      const remote = this.remotesByEndpoint.get(endpoint)
      if (remote === undefined) return Effect.void
      // Retired synchronously, before anything can yield: no call is routed to it from here on.
      remote.retired = true
      const drainMs = drain === undefined ? 0 : Duration.toMillis(Duration.fromInputUnsafe(drain))
      const drained = pollUntil(() => remote.outstanding === 0, drainMs)
      const drop = Effect.sync(() => {
        if (this.remotesByEndpoint.get(endpoint) === remote) this.forget(endpoint)
      })
      return drainMs > 0 ? Effect.andThen(drained, drop) : drop
    })
  }

  forget(endpoint: string): void {
    const remote = this.remotesByEndpoint.get(endpoint)
    if (remote === undefined) return
    this.remotesByEndpoint.delete(endpoint)
    this.remotes.delete(remote.peer.id)
    this.liveness.forgotten(remote)
    remote.failAll(new RpcError({ code: "unavailable", message: `${endpoint} left the cluster` }))
    Effect.runFork(this.transport.disconnect(remote.peer.id))
  }

  // ---- receiving -------------------------------------------------------------------------------------------

  /** Handles every batch the transport has received and not handed over yet. */
  processReceived(): void {
    let received = this.transport.pollReceived()
    while (received !== undefined) {
      this.onReceived(received)
      received = this.transport.pollReceived()
    }
  }

  onReceived(received: Received): void {
    const peer = received.peer
    // One clock read a batch: any message from a node this one connected to is a sign of life
    // (docs/LIVENESS.md), and the batch's arrival ends the calls it answers.
    const now = performance.now()
    // Answers come from nodes this one connected to: looked up once a batch.
    const from = this.remotes.get(peer.id)
    if (from !== undefined) from.liveness.lastHeard = now
    // And from nodes that connected to this one: a caller silent too long has its calls stopped (checkCallers).
    const caller = this.inbound.get(peer.id)
    if (caller !== undefined) caller.lastHeardAt = now
    for (const payload of received.payloads) {
      const envelope = Envelope.decode(payload)
      if (Envelope.isMalformed(envelope)) {
        this.onMalformed(peer, envelope)
        continue
      }
      try {
        this.onEnvelope(peer, envelope, from, caller, now)
      } catch (error) {
        this.onDispatchDefect(peer, envelope, error)
      }
    }
  }

  /**
   * A bug met while handling one envelope (in the node, or in a codec or interceptor it runs in place) must not
   * cost the other messages of the batch, which may be other callers' calls: count it, log it, go on. A request
   * is answered `internal` rather than left to its deadline.
   */
  private onDispatchDefect(peer: Peer.Peer, envelope: Envelope.Envelope, error: unknown): void {
    this.metrics.defects++
    this.log.error({ err: error, peer: peer.id, kind: envelope[1] }, "defect while dispatching a received message")
    if (envelope[1] !== Envelope.Kind.Request) return
    this.send(peer.id, [
      Envelope.PROTOCOL_VERSION,
      Envelope.Kind.Failure,
      envelope[2],
      "internal",
      `the node failed to dispatch ${envelope[3]}`,
      null,
    ])
  }

  private onEnvelope(
    peer: Peer.Peer,
    envelope: Envelope.Envelope,
    from: Remotes.Remote | undefined,
    caller: InboundPeer | undefined,
    now: number,
  ): void {
    switch (envelope[1]) {
      case Envelope.Kind.Request:
        this.dispatcher.onRequest(peer, caller?.info?.id ?? from?.info?.id, envelope)
        break
      case Envelope.Kind.Reply:
        if (from === undefined) this.metrics.unknownCorrelation++
        else Remotes.onReply(from, envelope[2], envelope[3], this.metrics, now)
        break
      case Envelope.Kind.Failure:
        this.onFailureEnvelope(peer, envelope)
        break
      case Envelope.Kind.Cancel:
        this.dispatcher.onCancel(peer, envelope[2])
        break
      case Envelope.Kind.Tell:
        this.dispatcher.onTell(peer, this.inbound.get(peer.id)?.info?.id, envelope)
        break
      case Envelope.Kind.Hello:
        this.onHello(peer, envelope[2])
        break
      case Envelope.Kind.Welcome:
        this.onWelcome(peer, envelope[2])
        break
      case Envelope.Kind.Ping:
        this.send(peer.id, this.liveness.pong(envelope))
        break
      case Envelope.Kind.Pong:
        if (from === undefined) this.metrics.unknownCorrelation++
        else this.liveness.onPong(from, envelope)
        break
      case Envelope.Kind.Item:
        if (from === undefined) this.metrics.unknownCorrelation++
        else Remotes.onItem(from, envelope[2], envelope[3], this.metrics)
        break
      case Envelope.Kind.End:
        if (from === undefined) this.metrics.unknownCorrelation++
        else Remotes.onEnd(from, envelope[2], this.metrics)
        break
      case Envelope.Kind.Credit:
        this.dispatcher.onCredit(peer, envelope[2], envelope[3])
        break
      case Envelope.Kind.Ack:
        if (from === undefined) this.metrics.unknownCorrelation++
        else Remotes.onAck(from, envelope[2], this.metrics)
        break
      default:
        // ACK and PONG without a consumer registered: nothing waits for them.
        this.metrics.unknownCorrelation++
    }
  }

  /** WELCOME (or a HELLO re-announcing a node we connected to): its info, unless its heartbeat settings are refused. */
  private onWelcome(peer: Peer.Peer, info: Envelope.NodeInfo): void {
    const remote = this.remotes.get(peer.id)
    if (remote === undefined) return
    const refused = info.heartbeat == null ? undefined : Liveness.checkSettings(info.heartbeat)
    if (refused === undefined) remote.welcomed(info)
    else remote.refused(new RpcError({ code: "invalid_argument", message: `${remote.endpoint} refused: ${refused}` }))
  }

  private onHello(peer: Peer.Peer, info: Envelope.NodeInfo): void {
    if (peer.direction === "outbound") {
      // A node we connected to re-announcing itself.
      this.onWelcome(peer, info)
      return
    }
    const refused = info.heartbeat == null ? undefined : Liveness.checkSettings(info.heartbeat)
    if (refused !== undefined) {
      // Refused before WELCOME: the caller fails every call on this connection with this reason (PROTOCOL.md 3.13).
      this.send(peer.id, [Envelope.PROTOCOL_VERSION, Envelope.Kind.Failure, 0, "invalid_argument", refused, null])
      return
    }
    const known = this.inbound.get(peer.id)
    if (known !== undefined) known.info = info
    else this.inbound.set(peer.id, { info, lastHeardAt: performance.now() })
    this.send(peer.id, [Envelope.PROTOCOL_VERSION, Envelope.Kind.Welcome, this.info()])
  }

  private onFailureEnvelope(peer: Peer.Peer, envelope: Envelope.Failure): void {
    const [, , id, code, message, error] = envelope
    const remote = this.remotes.get(peer.id)
    if (remote === undefined) {
      this.metrics.unknownCorrelation++
      return
    }
    if (id === 0) {
      // Id 0 names the connection. Before WELCOME, or for a version mismatch, the peer refused us as a whole;
      // otherwise it reports something we sent that it could not attribute to a call (counted, not fatal).
      if (remote.info !== undefined && code !== "incompatible_version") {
        this.metrics.unknownCorrelation++
        return
      }
      if (code === "incompatible_version") this.metrics.incompatiblePeers++
      remote.refused(
        new RpcError({
          code: isCode(code) ? code : "internal",
          message: `${remote.endpoint}: ${message}`,
        }),
      )
      return
    }
    Remotes.onFailure(remote, id, code, message, error, this.metrics)
  }

  private onMalformed(peer: Peer.Peer, malformed: Envelope.Malformed): void {
    this.metrics.malformed++
    // `warn` only for an incompatible peer (a deployment problem); garbage from one peer must not flood logs.
    if (malformed.reason === "UnsupportedVersion") {
      this.log.warn({ peer: peer.id, detail: malformed.detail }, "peer speaks another protocol version")
    } else this.log.debug({ peer: peer.id, reason: malformed.reason, detail: malformed.detail }, "malformed envelope")
    if (malformed.reason === "UnsupportedVersion") {
      this.metrics.incompatiblePeers++
      const remote = this.remotes.get(peer.id)
      if (remote !== undefined) {
        remote.refused(
          new RpcError({ code: "incompatible_version", message: `${remote.endpoint}: ${malformed.detail}` }),
        )
        return
      }
      // Answer in our version, which any version can read the first two fields of.
      const id = malformed.kind === Envelope.Kind.Request ? (malformed.id ?? 0) : 0
      this.send(peer.id, [
        Envelope.PROTOCOL_VERSION,
        Envelope.Kind.Failure,
        id,
        "incompatible_version",
        malformed.detail,
        null,
      ])
      return
    }
    // A request whose id we could read gets a typed answer instead of a timeout; so does a HELLO we cannot
    // read (id 0: the connection) and an unknown kind, which a newer peer may send.
    const answerable =
      (malformed.kind === Envelope.Kind.Request && malformed.id !== undefined) ||
      malformed.kind === Envelope.Kind.Hello ||
      malformed.reason === "UnknownKind"
    if (answerable) {
      const id = malformed.kind === Envelope.Kind.Request ? (malformed.id ?? 0) : 0
      this.send(peer.id, [
        Envelope.PROTOCOL_VERSION,
        Envelope.Kind.Failure,
        id,
        "invalid_argument",
        `malformed envelope: ${malformed.detail}`,
        null,
      ])
    }
  }

  onEvent(event: TransportEvent.TransportEvent): void {
    this.logEvent(event)
    if (event._tag === "Connected") {
      const remote = this.remotes.get(event.peer)
      // After a reconnect the peer may be a restarted process that never saw our HELLO: introduce us again.
      if (remote?.connectedBefore) {
        this.send(remote.peer.id, [Envelope.PROTOCOL_VERSION, Envelope.Kind.Hello, this.info()])
      }
      if (remote !== undefined) {
        remote.connectedBefore = true
        remote.down = false
      }
    }
    if (event._tag === "SendFailed") {
      this.deadLetter({
        reason: "undeliverable",
        target: event.peer,
        direction: "outbound",
        attempt: 1,
        count: event.messages,
        detail: `transport dropped ${event.messages} message(s): ${event.reason}`,
        at: Date.now(),
      })
      // Requests to this peer were dropped after waiting sendTimeout: the calls they carried are lost.
      const remote = this.remotes.get(event.peer)
      remote?.failAll(
        new RpcError({ code: "unavailable", message: `${remote.endpoint} did not take requests in time` }),
      )
    }
    if (event._tag === "Disconnected" && event.peer !== undefined) {
      // Answers already received are handled first (the news comes on a socket of its own and may be read
      // before them): only calls without one fail.
      this.processReceived()
      const remote = this.remotes.get(event.peer)
      if (remote !== undefined) remote.down = true
      // The rest is of unknown outcome (the request may have run, or may still go out after a reconnection):
      // fail it now, not at the deadline.
      remote?.failAll(new RpcError({ code: "unavailable", message: `connection to ${remote.endpoint} lost` }))
    }
    if (event._tag === "Connected" || event._tag === "Disconnected" || event._tag === "ConnectRetried") {
      const remote = event.peer === undefined ? undefined : this.remotes.get(event.peer)
      if (remote !== undefined) this.liveness.onTransportEvent(event, remote)
    }
  }

  /** Connection changes at `info` (reconnects, losses, drops) and `debug`; refused CURVE handshakes at `warn`. */
  private logEvent(event: TransportEvent.TransportEvent): void {
    switch (event._tag) {
      case "Connected": {
        const remote = this.remotes.get(event.peer)
        if (remote?.connectedBefore === true) this.log.info({ endpoint: event.endpoint }, "reconnected")
        else this.log.debug({ endpoint: event.endpoint }, "connected")
        break
      }
      case "Disconnected":
        this.log.info({ endpoint: event.endpoint }, "connection lost")
        break
      case "HandshakeFailed":
        if (event.reason === "Auth") this.log.warn({ endpoint: event.endpoint, detail: event.detail }, "peer refused")
        else this.log.info({ endpoint: event.endpoint, detail: event.detail }, "handshake failed")
        break
      case "SendFailed":
        this.log.info({ peer: event.peer, messages: event.messages, reason: event.reason }, "messages dropped")
        break
      case "InputRejected":
        this.log.info({ peer: event.peer, reason: event.reason, detail: event.detail }, "input rejected")
        break
      default:
        break
    }
  }

  load(): { readonly [key: string]: number } {
    return this.liveness.load()
  }

  close(): void {
    this.liveness.close()
    this.dispatcher.interruptAll()
    for (const remote of this.remotes.values())
      remote.failAll(new RpcError({ code: "unavailable", message: "node is closing" }))
  }
}

const serves = (info: Envelope.NodeInfo, address: string): boolean =>
  address.startsWith("@") ? info.actors.includes(address.slice(1)) : info.services.includes(address)

const toEffect = (result: unknown): Effect.Effect<unknown, unknown> =>
  Effect.isEffect(result)
    ? (result as Effect.Effect<unknown, unknown>)
    : typeof (result as PromiseLike<unknown> | undefined)?.then === "function"
      ? Effect.tryPromise({ try: () => result as PromiseLike<unknown>, catch: (error) => error })
      : Effect.succeed(result)

/** Builds the typed client functions of a contract by walking its methods once. */
const makeClient = <C extends Contract.Contract>(
  runtime: NodeRuntime,
  contract: C,
  target: Target,
  address: string,
): Client<C> => {
  const client: Record<string, unknown> = {}
  for (const [name, method] of Object.entries(contract.methods)) {
    const path = `${address}/${name}`
    if (method._tag === "Unary") {
      // Routed when each call runs: without waiting when possible, else through `route` (connect, discovery).
      const route: Remotes.Route = {
        now: () => runtime.routeSync(address, target),
        effect: runtime.route(address, target),
      }
      const send = (payload: unknown, options: CallOptions | undefined, headers: Envelope.Headers | null) => {
        const timeoutMs = timeoutOf(options, method, runtime.options.defaultTimeoutMs)
        if ((options?.delivery ?? method.delivery ?? "at-most-once") === "at-least-once") {
          return sendRetried(runtime, route, path, method, payload, timeoutMs, headers, "at-least-once")
        }
        // At most once, but safe to repeat: retried on a retryable failure, without asking for ACKs.
        if (method.idempotent || headers?.ik !== undefined) {
          return sendRetried(runtime, route, path, method, payload, timeoutMs, headers, "safe to repeat")
        }
        return Remotes.call(runtime.callEnv, route, path, method, payload, timeoutMs, headers)
      }
      const interceptors = runtime.options.clientInterceptors
      client[name] =
        interceptors.length === 0
          ? (payload: unknown, options?: CallOptions) => send(payload, options, headersOf(options))
          : (payload: unknown, options?: CallOptions) =>
              Interceptor.applyClient(
                interceptors,
                { method: path, target, payload, headers: headersOf(options) ?? {} },
                (call) => send(call.payload, options, call.headers),
              )
    } else {
      client[name] = (payload: unknown, options?: CallOptions) =>
        Stream.unwrap(
          Effect.gen(function* () {
            // Streams run the client interceptors for the call itself (headers, refusal); the elements flow
            // outside them.
            let call: Interceptor.ClientCall = { method: path, target, payload, headers: headersOf(options) ?? {} }
            yield* Interceptor.applyClient(runtime.options.clientInterceptors, call, (final) =>
              Effect.sync(() => {
                call = final
              }),
            )
            const remote = yield* runtime.route(address, target)
            return Remotes.callStream(
              runtime.callEnv,
              remote,
              path,
              method,
              call.payload,
              timeoutOf(options, method, runtime.options.defaultTimeoutMs),
              call.headers,
              options?.streamCredit ?? Remotes.DEFAULT_STREAM_CREDIT,
            )
          }),
        )
    }
  }
  return client as Client<C>
}

/**
 * How a retried call is sent:
 * - `at-least-once`: every attempt asks for an ACK and carries one idempotency key (generated when the method is
 *   not declared idempotent, or declares `dedupe`, and the caller gave none), so the callee runs the handler
 *   once however many arrive; an attempt whose ACK does not come in time counts as lost.
 * - `at-least-once tell`: the same, completed by the callee's ACK instead of its answer.
 * - `safe to repeat`: an at-most-once call to a method declared idempotent, or with the caller's idempotency
 *   key: no ACK is asked for, but a retryable failure (the callee's connection lost before its answer, the
 *   callee declared dead, overloaded) sends it again, so that a call caught by a dying instance is answered by
 *   another. Its first attempt is the plain request; later ones carry their attempt number.
 */
type Retried = "at-least-once" | "at-least-once tell" | "safe to repeat"

/** Sends a call on the node's retry schedule, each attempt routed afresh; given up on, it is a dead letter. */
const sendRetried = (
  runtime: NodeRuntime,
  route: Remotes.Route,
  path: string,
  method: Contract.Unary<unknown, unknown, unknown>,
  payload: unknown,
  timeoutMs: number,
  headers: Envelope.Headers | null,
  how: Retried,
): Effect.Effect<unknown, unknown> => {
  const retry = runtime.options.retry
  const acked = how !== "safe to repeat"
  const key = !acked
    ? undefined
    : (headers?.ik ?? (method.idempotent && method.dedupe !== true ? undefined : randomUUID()))
  return retrying(
    retry,
    runtime.metrics,
    path,
    timeoutMs,
    (attempt, remainingMs) =>
      Remotes.call(
        runtime.callEnv,
        route,
        path,
        method,
        payload,
        remainingMs,
        attemptHeaders(headers, key, attempt, acked),
        acked ? retry.ackTimeoutMs : undefined,
        how === "at-least-once tell",
      ),
    (attempts, error) => retriesExhausted(runtime, path, attempts, error),
  )
}

/** Dead-letters a retried call given up on. */
const retriesExhausted = (runtime: NodeRuntime, path: string, attempts: number, error: unknown): void =>
  runtime.deadLetter({
    reason: "retries-exhausted",
    target: path,
    direction: "outbound",
    attempt: attempts,
    count: 1,
    detail: error instanceof Error ? error.message : String(error),
    at: Date.now(),
  })

/**
 * Whether an at-least-once tell was received, judged from how its attempt failed: a callee that answers quickly
 * sends its handler's failure instead of an ACK, and a tell does not report its handler's outcome.
 */
const receivedDespite = (error: unknown): boolean => !RpcError.is(error) || error.code === "internal"

/** Builds the one-way senders of a contract by walking its methods once. */
const makeTeller = <C extends Contract.Contract>(
  runtime: NodeRuntime,
  contract: C,
  target: Target,
  address: string,
): Teller<C> => {
  const teller: Record<string, unknown> = {}
  for (const [name, method] of Object.entries(contract.methods)) {
    const path = `${address}/${name}`
    const route: Remotes.Route = {
      now: () => runtime.routeSync(address, target),
      effect: runtime.route(address, target),
    }
    teller[name] = (payload: unknown, options?: CallOptions) =>
      method._tag === "Unary" && (options?.delivery ?? method.delivery ?? "at-most-once") === "at-least-once"
        ? sendRetried(
            runtime,
            route,
            path,
            method,
            payload,
            timeoutOf(options, method, runtime.options.defaultTimeoutMs),
            headersOf(options),
            "at-least-once tell",
          ).pipe(
            Effect.asVoid,
            Effect.catch((error) => (receivedDespite(error) ? Effect.void : Effect.fail(error))),
          )
        : Effect.flatMap(runtime.route(address, target), (remote) =>
            Effect.suspend(() => {
              const encoded = method.payload.encode(payload)
              if (encoded._tag === "Failure") return Effect.fail(Remotes.invalidPayload(path, encoded.failure))
              const bytes = Envelope.encode([
                Envelope.PROTOCOL_VERSION,
                Envelope.Kind.Tell,
                path,
                encoded.success,
                withTrace(headersOf(options)),
              ])
              const refused = runtime.transport.offer(remote.peer.id, bytes)
              if (refused !== undefined) return Effect.fail(Remotes.fromTransportError(refused, path))
              runtime.metrics.sent++
              return Effect.void
            }),
          )
  }
  return teller as Teller<C>
}

const timeoutOf = (options: CallOptions | undefined, method: Contract.Method, fallbackMs: number): number => {
  if (options?.timeout !== undefined) {
    const ms = Duration.toMillis(Duration.fromInputUnsafe(options.timeout))
    if (Number.isFinite(ms)) return Math.max(0, Math.ceil(ms))
  }
  return method.timeoutMs ?? fallbackMs
}

/**
 * The headers of one attempt of a retried call; `acked` asks for an ACK (at-least-once). Without headers of the
 * caller's own (the usual case) an acked attempt's are one literal of a fixed shape: spreading builds a slower
 * object, and costs a few µs per call to build and encode.
 */
const attemptHeaders = (
  headers: Envelope.Headers | null,
  key: string | number | undefined,
  attempt: number,
  acked: boolean,
): Envelope.Headers | null => {
  // Not acked (safe to repeat): the first attempt is the plain request; later ones carry their number.
  if (!acked) return attempt === 1 ? headers : { ...headers, at: attempt }
  const plain = headers === null || (headers.ik !== undefined && Object.keys(headers).length === 1)
  if (plain) return key === undefined ? { at: attempt, ak: 1 } : { ik: key, at: attempt, ak: 1 }
  return { ...headers, ...(key === undefined ? {} : { ik: key }), at: attempt, ak: 1 }
}

const headersOf = (options: CallOptions | undefined): Envelope.Headers | null => {
  if (options === undefined) return null
  if (options.headers === undefined && options.traceparent === undefined) {
    // The usual keyed call: one literal, not three spreads (this runs per call).
    return options.idempotencyKey === undefined ? null : { ik: options.idempotencyKey }
  }
  return {
    ...options.headers,
    ...(options.idempotencyKey === undefined ? {} : { ik: options.idempotencyKey }),
    ...(options.traceparent === undefined ? {} : { tp: TraceContext.child(options.traceparent) }),
  }
}

/** Runs handler effects in `context`, each with the call it serves as `CurrentCall` (trace, log bindings). */
const callForker =
  <R>(context: Context.Context<R>) =>
  (call: CallContext, effect: Effect.Effect<unknown, unknown, R>): Fiber.Fiber<unknown, unknown> =>
    Effect.runForkWith(Context.add(context, CurrentCall, call))(effect)

/**
 * Starts one call of a unary handler served without interceptors. A handler that answers at once with an
 * `Exit` (`Effect.succeed`, `Effect.fail`: nothing to run) is answered without a fiber, which halves what the
 * server allocates per call; any other effect runs in a fiber with the call's context, as it would have. The
 * handler function itself is called outside that fiber: only a raw Promise-returning handler can tell (code
 * before its first `await` does not see `CurrentCall`); effects are lazy, and Promise API handlers are effects.
 */
const startUnary = <R>(
  fork: (call: CallContext, effect: Effect.Effect<unknown, unknown, R>) => Fiber.Fiber<unknown, unknown>,
  handler: (payload: unknown, context: CallContext) => unknown,
  payload: unknown,
  call: CallContext,
): Fiber.Fiber<unknown, unknown> | Exit.Exit<unknown, unknown> => {
  let result: unknown
  try {
    result = handler(payload, call)
  } catch (defect) {
    return Exit.die(defect)
  }
  return Exit.isExit(result) ? result : fork(call, toEffect(result) as Effect.Effect<unknown, unknown, R>)
}

/** Wraps handler effects in the node's server interceptors (identity when there are none). */
const intercept =
  (interceptors: ReadonlyArray<Interceptor.ServerInterceptor>) =>
  <R>(
    payload: unknown,
    context: CallContext,
    effect: Effect.Effect<unknown, unknown, R>,
  ): Effect.Effect<unknown, unknown, R> =>
    interceptors.length === 0
      ? effect
      : // Interceptors only wrap `next`; the services it needs are still provided by the fork that runs it.
        (Interceptor.applyServer(
          interceptors,
          { method: context.method, payload, context },
          effect as Effect.Effect<unknown, unknown>,
        ) as Effect.Effect<unknown, unknown, R>)

const receiveLoop = async (transport: TransportShape, runtime: NodeRuntime): Promise<void> => {
  for (;;) {
    runtime.processReceived()
    if (!(await transport.awaitReceived())) return
  }
}

/**
 * Builds a node on the `Transport` in context: binds, connects to the configured peers, and starts serving.
 * Everything stops when the scope closes.
 *
 * @since 0.1.0
 */
export const make = (
  options: NodeOptions.NodeOptions = {},
): Effect.Effect<NodeShape, RpcError, Transport | Scope.Scope> =>
  Effect.gen(function* () {
    const resolved = yield* NodeOptions.resolve(options)
    const transport = yield* Transport
    const dedupe = Option.getOrElse(yield* Effect.serviceOption(DedupeStore.DedupeStore), () => DedupeStore.memory())
    const deadLetterHub = yield* PubSub.sliding<DeadLetter>(1024)
    const runtime = new NodeRuntime(resolved, transport, dedupe, deadLetterHub)
    const peerChangeHub = yield* PubSub.sliding<Liveness.PeerChange>(1024)
    runtime.onPeerChange = (change) => {
      PubSub.publishUnsafe(peerChangeHub, change)
    }
    // Before any HELLO leaves: the UDP probe port is part of what this node announces.
    yield* Effect.promise(() => runtime.liveness.openProbe(resolved.bind))
    runtime.liveness.start()
    yield* Effect.addFinalizer(() => Effect.sync(() => runtime.close()))
    // The receive loop runs outside the fiber scheduler: it drains what is waiting synchronously and wakes on a
    // microtask, which keeps a scheduler turn off every round trip (see the transport's pollReceived).
    yield* Effect.promise(() => receiveLoop(transport, runtime)).pipe(Effect.forkScoped)
    yield* Stream.runForEach(transport.events, (event) => Effect.sync(() => runtime.onEvent(event))).pipe(
      Effect.forkScoped,
    )
    for (const endpoint of resolved.bind) {
      yield* transport
        .bind(endpoint)
        .pipe(
          Effect.mapError(
            (error) =>
              new RpcError({ code: "unavailable", message: `cannot bind ${endpoint}: ${error.message}`, cause: error }),
          ),
        )
    }
    for (const endpoint of resolved.peers) yield* runtime.remoteFor(endpoint)
    // Discovery is optional: with a `Discovery` service in context the node registers and routes by it.
    const discovery = yield* Effect.serviceOption(Discovery.Discovery)
    const link = Option.isSome(discovery) ? yield* DiscoveryLink.start(runtime, discovery.value) : undefined
    if (link !== undefined) {
      runtime.onInfoChanged = link.infoChanged
      runtime.awaitRoute = link.awaitRoute
    }

    // Handlers log through the node's logger (bound with their call) unless the application chose loggers.
    const handlerContext = <R>(context: Context.Context<R>): Context.Context<R> =>
      resolved.log?.effectLogs === false ? context : Log.handlerContext(context, runtime.log)

    const serve = <C extends Contract.Contract, R>(contract: C, handlers: Handlers<C, R>, options?: AddressOptions) =>
      Effect.gen(function* () {
        const address = options?.address ?? contract.name
        const fork = callForker(handlerContext(yield* Effect.context<R>()))
        const guard = intercept(resolved.serverInterceptors)
        const methods = new Map<string, ServedMethod>()
        for (const [name, method] of Object.entries(contract.methods)) {
          const handler = (handlers as Record<string, (payload: unknown, context: CallContext) => unknown>)[name]
          if (handler === undefined) return yield* Effect.die(new Error(`${address}/${name} has no handler`))
          methods.set(name, {
            path: `${address}/${name}`,
            method,
            fork:
              method._tag === "ServerStream"
                ? (payload, callContext, sink) =>
                    fork(
                      callContext,
                      Effect.suspend(() =>
                        guard(
                          payload,
                          callContext,
                          Stream.runForEach(
                            handler(payload, callContext) as Stream.Stream<unknown, unknown>,
                            (element) => {
                              const encoded = method.element.encode(element)
                              return encoded._tag === "Success"
                                ? sink!.emit(encoded.success)
                                : Effect.fail(
                                    new RpcError({
                                      code: "internal",
                                      message: `${address}/${name}: stream element does not match the contract: ${encoded.failure.message}`,
                                    }),
                                  )
                            },
                          ),
                        ),
                      ),
                    )
                : resolved.serverInterceptors.length === 0
                  ? (payload, callContext) => startUnary(fork, handler, payload, callContext)
                  : (payload, callContext) =>
                      fork(
                        callContext,
                        guard(
                          payload,
                          callContext,
                          Effect.suspend(() => toEffect(handler(payload, callContext))),
                        ),
                      ),
          })
        }
        const unregister = runtime.dispatcher.register(address, methods)
        runtime.contracts.set(address, contract)
        runtime.announce()
        yield* Effect.addFinalizer(() =>
          Effect.sync(() => {
            unregister()
            if (runtime.contracts.get(address) === contract) runtime.contracts.delete(address)
            runtime.announce()
          }),
        )
      })

    const serveFamily = <R>(prefix: string, resolve: (address: string) => FamilyMember<R> | undefined) =>
      Effect.gen(function* () {
        const fork = callForker(handlerContext(yield* Effect.context<R>()))
        const guard = intercept(resolved.serverInterceptors)
        // Dispatch tables per member object, built on its first call: one per behaviour, not one per address.
        const tables = new WeakMap<FamilyMember<R>, Map<string, ServedMethod>>()
        const unregister = runtime.dispatcher.registerResolver(prefix, (address) => {
          const member = resolve(address)
          if (member === undefined) return undefined
          let methods = tables.get(member)
          if (methods === undefined) {
            methods = new Map()
            for (const [name, method] of Object.entries(member.contract.methods)) {
              const handler = member.handlers[name]
              if (handler === undefined) continue
              methods.set(name, {
                path: `${prefix}*/${name}`,
                method,
                fork: (payload, callContext) =>
                  fork(
                    callContext,
                    guard(
                      payload,
                      callContext,
                      Effect.suspend(() => handler(payload, callContext)),
                    ),
                  ),
              })
            }
            tables.set(member, methods)
          }
          return methods
        })
        yield* Effect.addFinalizer(() => Effect.sync(unregister))
      })

    // Topics (Topics.ts) ride on this node's transport PUB/SUB sockets, its RPC (control calls) and its discovery.
    const topics = yield* Topics.make({
      id: resolved.id,
      transport,
      serve: (contract, handlers, options) => serve(contract, handlers, options),
      client: (contract, target, options) => makeClient(runtime, contract, target, options.address ?? contract.name),
      remotes: () => runtime.listRemotes(),
    }).pipe(
      Effect.mapError((error) => new RpcError({ code: "invalid_argument", message: error.message, cause: error })),
    )
    let metricsUrl: string | undefined
    const shape: NodeShape = {
      id: resolved.id,
      endpoints: () => transport.endpoints(),
      serve,
      serveFamily,
      client: (contract, target, options) => makeClient(runtime, contract, target, options?.address ?? contract.name),
      teller: (contract, target, options) => makeTeller(runtime, contract, target, options?.address ?? contract.name),
      connect: (endpoint, options) => runtime.connect(endpoint, options?.serverPublicKey),
      remotes: () => runtime.listRemotes(),
      metrics: () => NodeMetrics.counters(runtime.metrics),
      metricsSnapshot: () => runtime.snapshot(),
      metricsUrl: () => metricsUrl,
      logger: runtime.log,
      transport,
      deadLetters: Stream.fromPubSub(deadLetterHub),
      reportDeadLetter: (letter) => runtime.deadLetter(letter),
      members: () => link?.members() ?? [],
      disconnect: (endpoint, options) => runtime.disconnect(endpoint, options?.drain),
      drain: (options) => runtime.drain(options?.timeout),
      ping: (target, options) => runtime.ping(target, options?.timeout),
      watch: (target) => runtime.liveness.watch(target),
      peerChanges: Stream.fromPubSub(peerChangeHub),
      addLoadSignal: (name, read) =>
        Effect.asVoid(
          Effect.acquireRelease(
            Effect.sync(() => runtime.liveness.addSignal(name, read)),
            (remove) => Effect.sync(remove),
          ),
        ),
      topics,
    }
    runtime.shape = shape
    if (resolved.admin) {
      yield* serve<typeof Admin.Admin, never>(
        Admin.Admin,
        Admin.handlers({
          info: () => runtime.info(),
          startedAt: runtime.startedAt,
          contracts: () => runtime.contracts,
          snapshot: () => runtime.snapshot(),
          members: () => link?.members() ?? [],
        }),
      )
    }
    if (resolved.metricsHttp !== undefined) {
      metricsUrl = yield* Prometheus.serve(resolved.metricsHttp, () => [runtime.snapshot()])
    }
    runtime.log.info({ endpoints: transport.endpoints(), metrics: metricsUrl }, "node started")
    yield* Effect.addFinalizer(() => Effect.sync(() => runtime.log.info("node stopped")))
    return shape
  })

/**
 * A node with its own ZeroMQ transport: the shortest way to start one. Everything closes with the scope.
 *
 * @since 0.1.0
 */
export const makeZmq = (
  options: NodeOptions.NodeOptions & { readonly transport?: TransportOptions.TransportOptions | undefined } = {},
): Effect.Effect<NodeShape, RpcError | TransportError, Scope.Scope> =>
  Effect.flatMap(ZmqTransport.make(options.transport), (transport) =>
    make(options).pipe(Effect.provideService(Transport, transport)),
  )

/**
 * The node as a layer over the `Transport` in context.
 *
 * @since 0.1.0
 */
export const layer = (options: NodeOptions.NodeOptions = {}): Layer.Layer<Node, RpcError, Transport> =>
  Layer.effect(Node, make(options))

/**
 * The node on a ZeroMQ transport: the usual way to run one.
 *
 * @since 0.1.0
 */
export const layerZmq = (
  options: NodeOptions.NodeOptions & { readonly transport?: TransportOptions.TransportOptions | undefined } = {},
): Layer.Layer<Node, RpcError | TransportError> =>
  layer(options).pipe(Layer.provide(ZmqTransport.layer(options.transport)))
