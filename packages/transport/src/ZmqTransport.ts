/**
 * The ZeroMQ implementation of the Transport contract. Shape: one ROUTER serves every inbound peer on all
 * bound endpoints, one DEALER per outbound peer (so a dead peer's queue never captures another peer's traffic,
 * which a shared round-robin DEALER would), one XPUB for publishing and one SUB for subscribing.
 *
 * Every destination (an outbound DEALER, an inbound routing id, a topic) has one `Outbox`: a bounded queue
 * with a single writer that coalesces the payloads of one event-loop turn into one batch frame. Receive loops
 * split batches back into payloads and hand them to a bounded queue. When the consumer falls behind, the SUB loop
 * stops reading and ZeroMQ's high-water marks push back on publishers; DEALER/ROUTER input is dropped and counted
 * beyond its bound instead (libzmq must never stop reading those, see internal/zmqSocketOptions.ts).
 *
 * Not here: replies, acks, retries, identities of actors. This module moves bytes and reports what happened.
 *
 * @since 0.1.0
 */
import { Effect, Exit, Layer, PubSub, type Scope, Stream } from "effect"
import type * as Take from "effect/Take"
import * as zmq from "zeromq"
import * as BatchFrame from "./BatchFrame.ts"
import * as Curve from "./Curve.ts"
import * as Endpoint from "./Endpoint.ts"
import * as EndpointGuards from "./internal/endpointGuards.ts"
import { InboundPeers } from "./internal/inboundPeers.ts"
import { Outbox, type WriteGate } from "./internal/outbox.ts"
import { ReceiveBuffer } from "./internal/receiveBuffer.ts"
import * as SocketOptions from "./internal/zmqSocketOptions.ts"
import * as Peer from "./Peer.ts"
import { type ConnectOptions, type Published, type Received, Transport, type TransportShape } from "./Transport.ts"
import { TransportError } from "./TransportError.ts"
import type { RejectReason, TransportEvent } from "./TransportEvent.ts"
import * as TransportMetrics from "./TransportMetrics.ts"
import * as TransportOptions from "./TransportOptions.ts"
import * as ZapHandler from "./ZapHandler.ts"

/** Most messages read in one streak while writes are held (see `WriteGate`): bounds how long answers wait. */
const MAX_STREAK = 16
/** Smallest batch after which the receive loops look for a streak (see `receiveLoop`). */
const STREAK_MIN_BATCH = 8
/** Awaited for a microtask hop without allocating a promise each time. */
const RESOLVED = Promise.resolve()
/** Longest a lost connection's unread input is waited for before the loss is reported (a safety bound). */
const READ_OUT_MAX_MS = 250
/** Received batches that wait for the consumer before the SUB loop pauses (DEALER/ROUTER input: see `deliver`). */
const RECEIVE_QUEUE_CAPACITY = 1024

/** What a received batch holds in memory, for the byte budget of DEALER/ROUTER input. */
const receivedBytes = (received: Received): number => {
  let bytes = 0
  for (const payload of received.payloads) bytes += payload.byteLength
  return bytes
}
/** How many events a slow events subscriber may lag before the oldest are dropped. */
const EVENT_BUFFER = 4096
/** How many recent events a new events subscriber receives first, so early ones are not lost to a race. */
const EVENT_REPLAY = 256

interface OutboundConnection {
  readonly peer: Peer.Peer
  readonly endpoint: string
  readonly socket: zmq.Dealer
  readonly outbox: Outbox
  /** Whether writes go out: from a handshake to the loss of that connection (for inproc, once connected). */
  up: boolean
  connectedBefore: boolean
  /** Reports the loss of the last connection, once it has been read out (see `connectionLost`). */
  lossPending?: (() => void) | undefined
  /** Events of this connection that came while its loss was pending: reported after it, in order. */
  heldEvents: Array<TransportEvent>
  cancelWait?: (() => void) | undefined
}

/** Refuses a write while the connection is down, as ZeroMQ's back-pressure does (EAGAIN): the outbox retries it. */
const NOT_CONNECTED = Object.assign(new Error("not connected"), { code: "EAGAIN" })
const notConnected = (): Promise<void> => Promise.reject(NOT_CONNECTED)

const closedError = (): TransportError => new TransportError({ reason: "Closed", message: "transport is closed" })

class ZmqTransportImpl implements WriteGate {
  readonly metrics = TransportMetrics.make()
  /** Receive loops reading a streak of messages that were already waiting; writes are held while any is. */
  private streaks = 0
  private readonly held = new Set<Outbox>()
  readonly boundEndpoints: Array<string> = []
  readonly zapDomain: string | undefined
  private readonly outbound = new Map<string, OutboundConnection>()
  private readonly outboundByEndpoint = new Map<string, OutboundConnection>()
  private readonly inbound: InboundPeers
  private readonly topicOutboxes = new Map<string, Outbox>()
  private readonly proofVerifier: Curve.ProofVerifier | undefined
  readonly allowedClientKeys: ReadonlySet<string>
  private routerSocket: zmq.Router | undefined
  private publisherSocket: zmq.XPublisher | undefined
  private subscriberSocket: zmq.Subscriber | undefined
  private nextOutbound = 0
  private publisherBound = false
  private readonly publisherEndpoints: Array<string> = []
  private readonly inprocNames: Array<string> = []
  private subscriberConnected = false
  closed = false

  readonly options: TransportOptions.ResolvedTransportOptions
  readonly receivedBuffer: ReceiveBuffer<Received>
  readonly publishedBuffer: ReceiveBuffer<Published>
  readonly eventHub: PubSub.PubSub<Take.Take<TransportEvent>>

  constructor(
    options: TransportOptions.ResolvedTransportOptions,
    receivedBuffer: ReceiveBuffer<Received>,
    publishedBuffer: ReceiveBuffer<Published>,
    eventHub: PubSub.PubSub<Take.Take<TransportEvent>>,
  ) {
    this.options = options
    this.receivedBuffer = receivedBuffer
    this.publishedBuffer = publishedBuffer
    this.eventHub = eventHub
    const curve = options.curve
    this.zapDomain = curve === undefined ? undefined : ZapHandler.makeDomain()
    this.allowedClientKeys = new Set(curve?.allowedClientKeys ?? [])
    this.proofVerifier =
      curve === undefined
        ? undefined
        : Curve.makeProofVerifier({ publicKey: curve.publicKey, secretKey: curve.secretKey })
    this.inbound = new InboundPeers(
      options,
      this.metrics,
      (event) => this.emit(event),
      (rid, frame) => this.router().send([rid, frame]),
      this,
    )
  }

  emit(event: TransportEvent): void {
    PubSub.publishUnsafe(this.eventHub, [event])
  }

  /** Emits an event of an outbound connection, after the report of its last loss if that is still pending. */
  private emitOf(connection: OutboundConnection | undefined, event: TransportEvent): void {
    if (connection?.lossPending !== undefined) connection.heldEvents.push(event)
    else this.emit(event)
  }

  // ---- write gate (see internal/outbox.ts) -----------------------------------------------------------------

  get holding(): boolean {
    return this.streaks > 0
  }

  get earlyAllowed(): boolean {
    return this.streaks === 0 && this.quiet
  }

  /** Whether the receive loops found nothing more waiting, before and after the last message read. */
  private quiet = true

  defer(outbox: Outbox): void {
    this.held.add(outbox)
  }

  private endStreak(): void {
    this.streaks--
    if (this.streaks > 0 || this.held.size === 0) return
    const held = [...this.held]
    this.held.clear()
    for (const outbox of held) outbox.release()
  }

  // ---- inbound (ROUTER) ------------------------------------------------------------------------------------

  private router(): zmq.Router {
    if (this.routerSocket === undefined) {
      const socket = new zmq.Router(SocketOptions.router(this.options, this.zapDomain))
      this.routerSocket = socket
      this.observe(socket, undefined)
    }
    return this.routerSocket
  }

  async bind(endpoint: string): Promise<string> {
    const socket = this.router()
    await this.bindGuarded(socket, endpoint)
    // Reading starts after the first bind/connect: a receive pending before that never wakes on inproc.
    if (this.boundEndpoints.length === 0) {
      void this.receiveLoop(socket, (frames) => this.onRouterMessage(frames), true)
    }
    const resolved = socket.lastEndpoint ?? endpoint
    this.boundEndpoints.push(resolved)
    this.emit({ _tag: "Listening", endpoint: resolved })
    return resolved
  }

  private onRouterMessage(frames: Array<Buffer>): void {
    if (frames.length !== 2) {
      this.reject(undefined, "Malformed", `expected [routing id, batch], got ${frames.length} frames`)
      return
    }
    const [rid, frame] = frames as [Buffer, Buffer]
    const batch = this.decode(frame)
    if (batch === undefined) return
    let publicKey: string | undefined
    if (this.proofVerifier !== undefined) {
      publicKey = batch.proof === undefined ? undefined : this.proofVerifier.verify(rid, batch.proof)
      // The proof shows which key the sender holds; that key must itself be admitted.
      if (publicKey === undefined || !this.allowedClientKeys.has(publicKey)) {
        this.reject(undefined, "Unauthenticated", "batch without a valid CURVE key-binding proof")
        return
      }
    }
    const peer = this.inbound.touch(rid, publicKey)
    this.deliver(peer, batch.payloads)
  }

  /** Binds with the ipc/inproc guards (see internal/endpointGuards.ts). */
  private async bindGuarded(
    socket: zmq.Socket & { bind(endpoint: string): Promise<void> },
    endpoint: string,
  ): Promise<void> {
    if (endpoint.startsWith("ipc://") && (await EndpointGuards.ipcInUse(endpoint.slice("ipc://".length)))) {
      throw new TransportError({ reason: "BindFailed", message: `cannot bind ${endpoint}: address in use`, endpoint })
    }
    await socket.bind(endpoint)
    if (endpoint.startsWith("inproc://")) {
      this.inprocNames.push(endpoint)
      EndpointGuards.inprocBound(endpoint)
    }
  }

  // ---- outbound (DEALER per peer) --------------------------------------------------------------------------

  /** The server key to connect with, or throws why not (missing, malformed, not allowed: counted). */
  private trusted(curve: TransportOptions.CurveOptions, key: string | undefined, endpoint: string, what: string) {
    const checked = TransportOptions.checkServerKey(curve, key, endpoint, what)
    if (typeof checked === "string") return checked
    if (checked.reason === "Untrusted") this.metrics.authFailures++
    throw checked
  }

  connect(endpoint: string, options: ConnectOptions | undefined): Peer.Peer {
    const existing = this.outboundByEndpoint.get(endpoint)
    if (existing !== undefined) return existing.peer
    const curve = this.options.curve
    const serverPublicKey = options?.serverPublicKey
    if (curve !== undefined) this.trusted(curve, serverPublicKey, endpoint, "connect")
    const routingId = Curve.makeRoutingId()
    const id = Peer.makeId("outbound", `${this.nextOutbound++}:${endpoint}`)
    const peer: Peer.Peer = {
      id,
      direction: "outbound",
      publicKey: curve === undefined ? undefined : serverPublicKey,
    }
    const proof =
      curve === undefined || serverPublicKey === undefined
        ? undefined
        : Curve.makeProof({
            clientPublicKey: curve.publicKey,
            clientSecretKey: curve.secretKey,
            serverPublicKey,
            routingId,
          })
    const socket = new zmq.Dealer(SocketOptions.dealer(this.options, routingId, serverPublicKey))
    const connection: OutboundConnection = {
      peer,
      endpoint,
      socket,
      outbox: new Outbox(
        this.options,
        {
          write: (frame) => (connection.up ? socket.send(frame) : notConnected()),
          classify: SocketOptions.classifyWrite,
          onDropped: (messages, reason) => this.emit({ _tag: "SendFailed", peer: id, messages, reason }),
        },
        this.metrics,
        proof,
        this,
      ),
      up: false,
      connectedBefore: false,
      heldEvents: [],
    }
    this.outbound.set(id, connection)
    this.outboundByEndpoint.set(endpoint, connection)
    this.observe(socket, connection)
    try {
      if (endpoint.startsWith("inproc://")) {
        // inproc has no handshake and reports no connection events: the pipe is up once connected.
        connection.cancelWait = EndpointGuards.whenInprocBound(endpoint, () => {
          if (socket.closed) return
          socket.connect(endpoint)
          connection.up = true
          connection.outbox.kick()
        })
      } else {
        socket.connect(endpoint)
      }
    } catch (cause) {
      this.dropOutbound(connection)
      throw new TransportError({
        reason: "ConnectFailed",
        message: `cannot connect to ${endpoint}: ${String(cause)}`,
        endpoint,
        cause,
      })
    }
    void this.receiveLoop(socket, (frames) => this.onDealerMessage(connection, frames), true)
    return peer
  }

  /**
   * A connection that was up is gone; writes wait in the outbox until ZeroMQ has reconnected. Before
   * `Disconnected` is reported, the DEALER is read out: answers the peer sent before it went are handed up
   * first, so that nobody fails a call whose answer had arrived. (This is why DEALERs run without
   * `ZMQ_IMMEDIATE`: with it libzmq discards the dropped connection's unread input, docs/TRANSPORT.md.)
   */
  private connectionLost(connection: OutboundConnection, address: string): void {
    connection.up = false
    const socket = connection.socket
    const until = performance.now() + READ_OUT_MAX_MS
    const report = () => {
      if (connection.lossPending !== report) return
      connection.lossPending = undefined
      this.metrics.disconnects++
      this.emit({ _tag: "Disconnected", peer: connection.peer.id, endpoint: address })
      const held = connection.heldEvents
      connection.heldEvents = []
      for (const event of held) this.emit(event)
    }
    connection.lossPending = report
    let emptyChecks = 0
    const readOut = () => {
      if (connection.lossPending !== report || this.closed) return
      // The receive loop hands up what is waiting. Empty twice in a row: a message it had just taken (its
      // continuation pending when this ran) was handed up in between.
      emptyChecks = !socket.closed && socket.readable ? 0 : emptyChecks + 1
      if (emptyChecks < 2 && performance.now() < until) setImmediate(readOut)
      else report()
    }
    setImmediate(readOut)
  }

  private onDealerMessage(connection: OutboundConnection, frames: Array<Buffer>): void {
    if (frames.length !== 1) {
      this.reject(connection.peer.id, "Malformed", `expected [batch], got ${frames.length} frames`)
      return
    }
    const batch = this.decode(frames[0]!, connection.peer.id)
    if (batch !== undefined) this.deliver(connection.peer, batch.payloads)
  }

  disconnect(id: Peer.PeerId): void {
    const connection = this.outbound.get(id)
    if (connection !== undefined) this.dropOutbound(connection)
  }

  private dropOutbound(connection: OutboundConnection): void {
    this.outbound.delete(connection.peer.id)
    this.outboundByEndpoint.delete(connection.endpoint)
    connection.outbox.dropAll("Closed")
    connection.cancelWait?.()
    connection.socket.close()
  }

  // ---- sending ---------------------------------------------------------------------------------------------

  offer(id: Peer.PeerId, payload: Uint8Array, more = false): TransportError | undefined {
    if (this.closed) return closedError()
    if (payload.length > this.options.maxMessageBytes) {
      return new TransportError({
        reason: "MessageTooLarge",
        message: `payload of ${payload.length} bytes exceeds maxMessageBytes ${this.options.maxMessageBytes}`,
        peer: id,
      })
    }
    const outbox = this.outbound.get(id)?.outbox ?? this.inbound.outboxOf(id)
    if (outbox === undefined) {
      return new TransportError({ reason: "PeerUnknown", message: `no connection to peer ${id}`, peer: id })
    }
    if (outbox.offer(payload, more)) return undefined
    this.metrics.overloaded++
    return new TransportError({
      reason: "Overloaded",
      message: `outbound queue of ${id} is full (${outbox.size} payloads queued)`,
      peer: id,
    })
  }

  // ---- publish / subscribe ---------------------------------------------------------------------------------

  private publisher(): zmq.XPublisher {
    if (this.publisherSocket === undefined) {
      const socket = new zmq.XPublisher(SocketOptions.publisher(this.options, this.zapDomain))
      this.publisherSocket = socket
      this.observe(socket, undefined)
    }
    return this.publisherSocket
  }

  async bindPublisher(endpoint: string): Promise<string> {
    const socket = this.publisher()
    await this.bindGuarded(socket, endpoint)
    if (!this.publisherBound) void this.receiveLoop(socket, (frames) => this.onSubscription(frames))
    this.publisherBound = true
    this.publisherEndpoints.push(socket.lastEndpoint ?? endpoint)
    const resolved = socket.lastEndpoint ?? endpoint
    this.emit({ _tag: "Listening", endpoint: resolved })
    return resolved
  }

  private onSubscription(frames: Array<Buffer>): void {
    const message = frames[0]
    // XPUB hands up subscription messages: 1 = subscribe, 0 = unsubscribe, then the topic prefix.
    if (frames.length !== 1 || message === undefined || message.length < 1 || message[0]! > 1) return
    this.emit({ _tag: "SubscriptionChanged", topic: message.subarray(1).toString(), subscribed: message[0] === 1 })
  }

  publish(topic: string, payload: Uint8Array): TransportError | undefined {
    if (this.closed) return closedError()
    if (payload.length > this.options.maxMessageBytes) {
      return new TransportError({
        reason: "MessageTooLarge",
        message: `payload of ${payload.length} bytes exceeds maxMessageBytes ${this.options.maxMessageBytes}`,
      })
    }
    let outbox = this.topicOutboxes.get(topic)
    if (outbox === undefined) {
      const socket = this.publisher()
      const topicFrame = Buffer.from(topic)
      outbox = new Outbox(
        this.options,
        {
          write: (frame) => socket.send([topicFrame, frame]),
          classify: SocketOptions.classifyWrite,
          onDropped: () => {},
        },
        this.metrics,
        undefined,
      )
      this.topicOutboxes.set(topic, outbox)
    }
    if (outbox.offer(payload)) return undefined
    this.metrics.overloaded++
    return new TransportError({ reason: "Overloaded", message: `publish queue of topic "${topic}" is full` })
  }

  private subscriber(): zmq.Subscriber {
    if (this.subscriberSocket === undefined) {
      const socket = new zmq.Subscriber(SocketOptions.subscriber(this.options))
      this.subscriberSocket = socket
      this.observe(socket, undefined)
    }
    return this.subscriberSocket
  }

  connectSubscriber(endpoint: string, options: ConnectOptions | undefined): void {
    const socket = this.subscriber()
    const curve = this.options.curve
    if (curve !== undefined) {
      const serverPublicKey = this.trusted(curve, options?.serverPublicKey, endpoint, "connectSubscriber")
      // One SUB socket connects to every publisher, so its CURVE settings must be the same for all.
      socket.curveServerKey = serverPublicKey
      socket.curvePublicKey = curve.publicKey
      socket.curveSecretKey = curve.secretKey
    }
    socket.connect(endpoint)
    if (!this.subscriberConnected) void this.receiveLoop(socket, (frames) => this.onPublished(frames))
    this.subscriberConnected = true
  }

  subscribe(prefix: string): void {
    this.subscriber().subscribe(prefix)
  }

  unsubscribe(prefix: string): void {
    this.subscriber().unsubscribe(prefix)
  }

  private onPublished(frames: Array<Buffer>): void {
    if (frames.length !== 2) {
      this.reject(undefined, "Malformed", `expected [topic, batch], got ${frames.length} frames`)
      return
    }
    const batch = this.decode(frames[1]!)
    if (batch === undefined) return
    this.metrics.messagesReceived += batch.payloads.length
    this.enqueue(this.publishedBuffer, { topic: frames[0]!.toString(), payloads: batch.payloads })
  }

  // ---- receiving -------------------------------------------------------------------------------------------

  private decode(frame: Buffer, peer?: Peer.PeerId): BatchFrame.Batch | undefined {
    this.metrics.batchesReceived++
    this.metrics.bytesReceived += frame.length
    const batch = BatchFrame.decode(frame, this.options.maxMessageBytes)
    if (BatchFrame.isRejection(batch)) {
      this.reject(peer, batch.reject, batch.detail)
      return undefined
    }
    return batch
  }

  /** Payloads in the last batch delivered, for the receive loops' streak detection. */
  private delivered = 0

  /** Whether received batches are being dropped (a streak is reported once). */
  private droppingReceived = false

  /**
   * Hands a DEALER/ROUTER batch to the consumer. These receive loops never pause (see `common` in
   * internal/zmqSocketOptions.ts: libzmq must not stop reading them), so the bound is here: beyond
   * `receiveHighWaterMark` batches past the consumer's queue, or `maxReceivedBytes`, batches are dropped and
   * counted.
   */
  private deliver(peer: Peer.Peer, payloads: Array<Uint8Array>): void {
    this.delivered = payloads.length
    if (this.receivedBuffer.offer({ peer, payloads })) {
      this.droppingReceived = false
      this.metrics.messagesReceived += payloads.length
    } else if (this.droppingReceived) {
      this.metrics.rejected++
    } else if (!this.closed) {
      this.droppingReceived = true
      const { size, bytes } = this.receivedBuffer
      this.reject(peer.id, "Overloaded", `consumer ${size} batches (${bytes} bytes) behind: dropping received batches`)
    }
  }

  private pausedOn: Promise<unknown> | undefined

  private enqueue<A>(buffer: ReceiveBuffer<A>, item: A): void {
    if (!buffer.offer(item) && !this.closed) {
      // The consumer is behind: keep this item and pause the receive loops until there is room.
      buffer.force(item)
      this.pausedOn = buffer.whenSpace()
    }
  }

  private reject(peer: Peer.PeerId | undefined, reason: RejectReason, detail: string): void {
    this.metrics.rejected++
    this.emit({ _tag: "InputRejected", peer, reason, detail })
  }

  /**
   * Reads `socket` until it closes. With `holdWrites`, a message read while more are already waiting starts (or
   * continues) a streak, during which writes are held (see `WriteGate`): the answers to every message of the
   * streak then leave together, in full batches, when the socket has nothing more or the streak reaches
   * `MAX_STREAK` messages. Those loops (DEALER/ROUTER input) never pause; the others pause while their consumer's
   * queue is full, so that ZeroMQ's high-water marks push back on senders.
   */
  private async receiveLoop(
    socket: zmq.Readable<Array<Buffer>> & zmq.Socket,
    onMessage: (frames: Array<Buffer>) => void,
    holdWrites = false,
  ) {
    let streak = 0
    let waited = true
    try {
      while (!socket.closed) {
        const frames = await socket.receive()
        this.delivered = 0
        onMessage(frames)
        if (holdWrites) {
          // Small batches come from peers with little in flight: nothing to gather, and no ZMQ_EVENTS call (a
          // system call or two) on the path of every round trip.
          const more = this.delivered >= STREAK_MIN_BATCH && !socket.closed && socket.readable
          this.quiet = waited && !more
          waited = !more
          if (more && streak < MAX_STREAK) {
            if (streak++ === 0) this.streaks++
          } else if (streak > 0) {
            streak = 0
            this.endStreak()
          }
        }
        if (this.delivered > 0 && this.delivered < STREAK_MIN_BATCH) {
          // Few calls in flight: let the consumer answer and the outbox send (two microtask hops) before asking
          // for the next message. Asking first costs a native call and a poller start between the request and
          // its answer, on the CPU the ZeroMQ I/O thread needs next (measured at 1 in flight: p50 ~20 µs lower).
          await RESOLVED
          await RESOLVED
        }
        // Only loops without streaks pause (DEALER/ROUTER input never does, see `deliver`).
        if (this.pausedOn !== undefined && !holdWrites) {
          const paused = this.pausedOn
          await paused
          if (this.pausedOn === paused) this.pausedOn = undefined
        }
      }
    } catch (error) {
      // EAGAIN/ETERM after close end the loop; anything else is a defect of the binding worth surfacing.
      if (!socket.closed && !this.closed) {
        this.emit({
          _tag: "InputRejected",
          peer: undefined,
          reason: "Malformed",
          detail: `receive failed: ${String(error)}`,
        })
      }
    } finally {
      if (streak > 0) this.endStreak()
    }
  }

  // ---- monitor events --------------------------------------------------------------------------------------

  private observe(socket: zmq.Socket, connection: OutboundConnection | undefined): void {
    const events = socket.events
    const peer = connection?.peer.id
    events.on("accept", ({ address }) => this.emit({ _tag: "Accepted", endpoint: address }))
    events.on("handshake", ({ address }) => {
      if (connection === undefined) return
      // Back before the last loss was reported (a fast reconnect): report it first.
      connection.lossPending?.()
      if (connection.connectedBefore) this.metrics.reconnects++
      connection.connectedBefore = true
      connection.up = true
      this.emit({ _tag: "Connected", peer: connection.peer.id, endpoint: address })
      connection.outbox.kick()
    })
    events.on("disconnect", ({ address }) => {
      if (connection?.up === true) {
        this.connectionLost(connection, address)
        return
      }
      this.metrics.disconnects++
      this.emitOf(connection, { _tag: "Disconnected", peer, endpoint: address })
    })
    events.on("connect:retry", ({ address, interval }) => {
      if (peer !== undefined) {
        this.emitOf(connection, { _tag: "ConnectRetried", peer, endpoint: address, intervalMs: interval })
      }
    })
    const handshakeFailed = (reason: "Auth" | "Protocol" | "Other") => (event: { address: string; error: Error }) => {
      // Against a CURVE server, a plaintext or misconfigured client fails as a protocol (mechanism) error.
      if (reason === "Auth" || (reason === "Protocol" && this.options.curve !== undefined)) this.metrics.authFailures++
      this.emitOf(connection, {
        _tag: "HandshakeFailed",
        peer,
        endpoint: event.address,
        reason,
        detail: event.error.message,
      })
      // libzmq never retries a connection refused during the security handshake; the allow-list or keys may be
      // fixed later, so an outbound peer tries again after the longest reconnect interval.
      if (connection !== undefined && reason !== "Other") this.retryRefused(connection)
    }
    events.on("handshake:error:auth", handshakeFailed("Auth"))
    events.on("handshake:error:protocol", handshakeFailed("Protocol"))
    events.on("handshake:error:other", handshakeFailed("Other"))
  }

  private retryRefused(connection: OutboundConnection): void {
    const timer = setTimeout(() => {
      if (this.closed || this.outbound.get(connection.peer.id) !== connection) return
      try {
        connection.socket.disconnect(connection.endpoint)
      } catch {
        // Already disconnected by libzmq: connecting again is all that is needed.
      }
      connection.socket.connect(connection.endpoint)
    }, this.options.reconnectIntervalMaxMs)
    timer.unref()
  }

  // ---- close -----------------------------------------------------------------------------------------------

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    const outboxes = [
      ...[...this.outbound.values()].map((c) => c.outbox),
      ...this.inbound.outboxes(),
      ...this.topicOutboxes.values(),
    ]
    await Promise.all(outboxes.map((outbox) => outbox.close()))
    for (const connection of this.outbound.values()) connection.socket.close()
    this.outbound.clear()
    this.outboundByEndpoint.clear()
    for (const name of this.inprocNames) EndpointGuards.inprocUnbound(name)
    for (const connection of this.outbound.values()) connection.cancelWait?.()
    this.routerSocket?.close()
    this.publisherSocket?.close()
    this.subscriberSocket?.close()
    await Promise.all([...this.boundEndpoints, ...this.publisherEndpoints].map((e) => EndpointGuards.waitReleased(e)))
    this.receivedBuffer.end()
    this.publishedBuffer.end()
    this.emit({ _tag: "Closed" })
    PubSub.endUnsafe(this.eventHub, Exit.void)
  }
}

const fromPromise = <A>(endpoint: string, reason: "BindFailed" | "ConnectFailed", run: () => Promise<A>) =>
  Effect.tryPromise({
    try: run,
    catch: (cause) =>
      TransportError.is(cause)
        ? cause
        : new TransportError({
            reason,
            message: `${reason === "BindFailed" ? "cannot bind" : "cannot connect"} ${endpoint}: ${SocketOptions.errorCode(cause) ?? String(cause)}`,
            endpoint,
            cause,
          }),
  })

/**
 * Builds a ZeroMQ transport; its sockets close when the scope closes.
 * Fails with `InvalidOptions` when an option is out of range.
 *
 * @since 0.1.0
 */
export const make = (
  options: TransportOptions.TransportOptions = {},
): Effect.Effect<TransportShape, TransportError, Scope.Scope> =>
  Effect.gen(function* () {
    const resolved = yield* TransportOptions.resolve(options)
    // DEALER/ROUTER input never pauses (see `deliver`): the consumer's queue plus the receive high-water mark, and
    // a byte budget.
    const receivedBuffer = new ReceiveBuffer<Received>(
      RECEIVE_QUEUE_CAPACITY + resolved.receiveHighWaterMark,
      "refuse",
      {
        maxBytes: resolved.maxReceivedBytes,
        bytesOf: receivedBytes,
      },
    )
    const publishedBuffer = new ReceiveBuffer<Published>(RECEIVE_QUEUE_CAPACITY, "refuse")
    const eventHub = yield* PubSub.sliding<Take.Take<TransportEvent>>({ capacity: EVENT_BUFFER, replay: EVENT_REPLAY })
    const impl = new ZmqTransportImpl(resolved, receivedBuffer, publishedBuffer, eventHub)
    const curve = resolved.curve
    if (curve !== undefined && impl.zapDomain !== undefined) {
      // Registered before any socket exists and released after they close: a CURVE server never runs unguarded.
      yield* ZapHandler.register(impl.zapDomain, (key) => impl.allowedClientKeys.has(key))
    }
    yield* Effect.addFinalizer(() => Effect.promise(() => impl.close()))
    const guard = <A>(effect: Effect.Effect<A, TransportError>) =>
      Effect.suspend(() => (impl.closed ? Effect.fail(closedError()) : effect))
    const shape: TransportShape = {
      bind: (endpoint) =>
        guard(
          Effect.flatMap(Endpoint.validate(endpoint), () =>
            fromPromise(endpoint, "BindFailed", () => impl.bind(endpoint)),
          ),
        ),
      endpoints: () => [...impl.boundEndpoints],
      publicKey: impl.options.curve?.publicKey,
      connect: (endpoint, connectOptions) =>
        guard(
          Effect.flatMap(Endpoint.validate(endpoint), () =>
            Effect.try({
              try: () => impl.connect(endpoint, connectOptions),
              catch: (cause) =>
                TransportError.is(cause)
                  ? cause
                  : new TransportError({ reason: "ConnectFailed", message: String(cause), endpoint, cause }),
            }),
          ),
        ),
      disconnect: (peer) => Effect.sync(() => impl.disconnect(peer)),
      send: (peer, payload) =>
        Effect.suspend(() => {
          const error = impl.offer(peer, payload)
          return error === undefined ? Effect.void : Effect.fail(error)
        }),
      offer: (peer, payload, more) => impl.offer(peer, payload, more),
      received: receivedBuffer.stream(),
      pollReceived: () => receivedBuffer.poll(),
      awaitReceived: () => receivedBuffer.wait(),
      events: Stream.fromPubSubTake(eventHub),
      bindPublisher: (endpoint) =>
        guard(
          Effect.flatMap(Endpoint.validate(endpoint), () =>
            fromPromise(endpoint, "BindFailed", () => impl.bindPublisher(endpoint)),
          ),
        ),
      publish: (topic, payload) =>
        Effect.suspend(() => {
          const error = impl.publish(topic, payload)
          return error === undefined ? Effect.void : Effect.fail(error)
        }),
      connectSubscriber: (endpoint, connectOptions) =>
        guard(
          Effect.flatMap(Endpoint.validate(endpoint), () =>
            Effect.try({
              try: () => impl.connectSubscriber(endpoint, connectOptions),
              catch: (cause) =>
                TransportError.is(cause)
                  ? cause
                  : new TransportError({ reason: "ConnectFailed", message: String(cause), endpoint, cause }),
            }),
          ),
        ),
      subscribe: (prefix) => guard(Effect.sync(() => impl.subscribe(prefix))),
      unsubscribe: (prefix) => guard(Effect.sync(() => impl.unsubscribe(prefix))),
      published: publishedBuffer.stream(),
      metrics: () => ({ ...impl.metrics }),
      close: Effect.promise(() => impl.close()),
    }
    return shape
  })

/**
 * The ZeroMQ transport as a layer; sockets close when the layer is released.
 *
 * @since 0.1.0
 */
export const layer = (options: TransportOptions.TransportOptions = {}): Layer.Layer<Transport, TransportError> =>
  Layer.effect(Transport, make(options))
