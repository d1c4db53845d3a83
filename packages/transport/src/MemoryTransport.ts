/**
 * The in-process implementation of the Transport contract, for tests of upper layers: no sockets, no ports, the
 * same observable behaviour as `ZmqTransport`. Transports find each other through a `MemoryNetwork` (the
 * process-global one unless told otherwise), and payloads cross as real batch frames (`BatchFrame`), so byte
 * counts, size limits and copies behave as they do over ZeroMQ.
 *
 * What it mirrors: endpoint validation and `BindFailed` for an address in use; `connect` returning a peer at once
 * and linking when the endpoint is bound (now or after a re-bind, i.e. reconnects); one bounded outbound queue per
 * peer whose payloads leave together at the end of the event-loop turn (one `Received` per batch); `SendFailed`
 * after `sendTimeout` while unlinked; `Overloaded` and `MessageTooLarge`; inbound peers announced by `PeerSeen` on
 * their first batch; monitor-like events (`Listening`, `Accepted`, `Connected`, `Disconnected`, `HandshakeFailed`)
 * with the same peer information ZeroMQ's monitor gives (none for inbound connections); XPUB-style subscription
 * reports; CURVE admission by key (no encryption: keys are compared, not proven).
 *
 * What it does not do: heartbeats, reconnect backoff (`ConnectRetried` is never emitted; a refused handshake is
 * not retried until the endpoint is bound again), high-water marks on the receive side (`received` is unbounded),
 * or malformed input (memory peers always send well-formed frames).
 * Timers use the Effect `Clock`, so `TestClock` drives `sendTimeout`.
 *
 * @since 0.1.0
 */
import { Clock, type Context, Duration, Effect, Exit, type Fiber, Layer, PubSub, type Scope, Stream } from "effect"
import type * as Take from "effect/Take"
import * as BatchFrame from "./BatchFrame.ts"
import * as Endpoint from "./Endpoint.ts"
import { ReceiveBuffer } from "./internal/receiveBuffer.ts"
import * as MemoryNetwork from "./MemoryNetwork.ts"
import * as Peer from "./Peer.ts"
import { type ConnectOptions, type Published, type Received, Transport, type TransportShape } from "./Transport.ts"
import { TransportError } from "./TransportError.ts"
import type { RejectReason, SendFailureReason, TransportEvent } from "./TransportEvent.ts"
import * as TransportMetrics from "./TransportMetrics.ts"
import * as TransportOptions from "./TransportOptions.ts"

/**
 * Options of a memory transport: the transport options plus the network to live on.
 *
 * @since 0.1.0
 */
export interface MemoryTransportOptions extends TransportOptions.TransportOptions {
  /** The network to bind and connect on. Default: `MemoryNetwork.Current` (the process-global network). */
  readonly network?: MemoryNetwork.MemoryNetwork | undefined
}

/** How many events a slow `events` subscriber may lag before the oldest are dropped (as in ZmqTransport). */
const EVENT_BUFFER = 4096

/** A live link to another transport; `alive` turns false once either side closes it. */
interface Link {
  readonly remote: MemoryNetwork.LinkEnd
  alive: boolean
}

/** One destination of `send`: an outbound peer (we connected) or an inbound one (it connected to us). */
interface Conn {
  readonly peer: Peer.Peer
  /** Remote endpoint for outbound peers, local bound endpoint for inbound ones. */
  readonly endpoint: string
  readonly dialer: MemoryNetwork.Dialer | undefined
  link: Link | undefined
  /** Payloads of this turn, not yet cut into batches. */
  turn: Array<Uint8Array>
  /** Batches waiting for a link, oldest first. */
  pending: Array<{ readonly frame: Uint8Array; readonly count: number; readonly bytes: number }>
  queuedMessages: number
  queuedBytes: number
  /** Fires `sendTimeout` after the queue got stuck behind a missing link. */
  timer: Fiber.Fiber<void> | undefined
  connectedBefore: boolean
  /** Inbound only: whether `PeerSeen` was emitted. */
  seen: boolean
  /** Inbound only: the connection is gone; the next flush reports its payloads `Unreachable`. */
  gone: boolean
}

/** The publisher's view of one connected subscriber. */
interface SubscriberLink {
  readonly link: Link
  readonly endpoint: string
  readonly prefixes: Set<string>
}

/** The subscriber's connection to one publisher endpoint. */
interface PublisherConn {
  readonly endpoint: string
  readonly dialer: MemoryNetwork.Dialer
  link: Link | undefined
}

const closedError = (): TransportError => new TransportError({ reason: "Closed", message: "transport is closed" })

const tooLarge = (length: number, max: number, peer?: Peer.PeerId): TransportError =>
  new TransportError({
    reason: "MessageTooLarge",
    message: `payload of ${length} bytes exceeds maxMessageBytes ${max}`,
    peer,
  })

/** Cuts payloads into batches the way the ZeroMQ outbox does: by count, and by bytes unless a batch is empty. */
const cutBatches = (
  payloads: ReadonlyArray<Uint8Array>,
  options: TransportOptions.ResolvedTransportOptions,
  onBatch: (start: number, count: number, bytes: number) => void,
): void => {
  let start = 0
  while (start < payloads.length) {
    let count = 0
    let bytes = 0
    while (start + count < payloads.length && count < options.maxBatchMessages) {
      const length = payloads[start + count]!.length
      if (count > 0 && bytes + length > options.maxBatchBytes) break
      bytes += length
      count++
    }
    onBatch(start, count, bytes)
    start += count
  }
}

class MemoryTransportImpl {
  readonly metrics = TransportMetrics.make()
  readonly boundEndpoints: Array<string> = []
  closed = false
  private readonly peers = new Map<Peer.PeerId, Conn>()
  private readonly outboundByEndpoint = new Map<string, Conn>()
  private readonly listeners: Array<MemoryNetwork.Listener> = []
  private readonly dirty = new Set<Conn>()
  private flushScheduled = false
  private nextOutbound = 0
  // Publisher side.
  private readonly subscribers = new Set<SubscriberLink>()
  private readonly topicCounts = new Map<string, number>()
  private publications = new Map<string, { payloads: Array<Uint8Array>; bytes: number }>()
  // Subscriber side.
  private readonly subscriptions = new Map<string, number>()
  private readonly publishers = new Map<string, PublisherConn>()

  readonly options: TransportOptions.ResolvedTransportOptions
  private readonly registry: MemoryNetwork.Registry
  private readonly clock: Clock.Clock
  private readonly context: Context.Context<never>
  private readonly receivedBuffer: ReceiveBuffer<Received>
  private readonly publishedBuffer: ReceiveBuffer<Published>
  private readonly eventHub: PubSub.PubSub<Take.Take<TransportEvent>>

  constructor(
    options: TransportOptions.ResolvedTransportOptions,
    registry: MemoryNetwork.Registry,
    clock: Clock.Clock,
    context: Context.Context<never>,
    queues: {
      readonly received: ReceiveBuffer<Received>
      readonly published: ReceiveBuffer<Published>
      readonly events: PubSub.PubSub<Take.Take<TransportEvent>>
    },
  ) {
    this.options = options
    this.registry = registry
    this.clock = clock
    this.context = context
    this.receivedBuffer = queues.received
    this.publishedBuffer = queues.published
    this.eventHub = queues.events
  }

  emit(event: TransportEvent): void {
    PubSub.publishUnsafe(this.eventHub, [event])
  }

  // ---- admission (CURVE emulation) -------------------------------------------------------------------------

  /** Decides a hello the way a CURVE server with a fail-closed ZAP handler would; reports refusals here. */
  private admit(hello: MemoryNetwork.Hello, endpoint: string): MemoryNetwork.Admission | string | undefined {
    const curve = this.options.curve
    let refusal: { reason: "Auth" | "Protocol"; detail: string } | undefined
    if (curve === undefined) {
      if (hello.clientPublicKey !== undefined) {
        refusal = { reason: "Protocol", detail: "mechanism mismatch: CURVE client, plaintext server" }
      }
    } else if (hello.clientPublicKey === undefined) {
      refusal = { reason: "Protocol", detail: "mechanism mismatch: plaintext client, CURVE server" }
    } else if (hello.serverPublicKey !== curve.publicKey) {
      refusal = { reason: "Protocol", detail: "the client expects a different server key" }
    } else if (!(curve.allowedClientKeys ?? []).includes(hello.clientPublicKey)) {
      refusal = { reason: "Auth", detail: "client key not in allowedClientKeys" }
    }
    if (refusal === undefined) return hello.clientPublicKey
    this.handshakeFailed(undefined, endpoint, refusal.reason, refusal.detail)
    return { _tag: "Refused", ...refusal }
  }

  /** Same counting rule as ZmqTransport: auth errors, and protocol errors on a side that has CURVE on. */
  private handshakeFailed(
    peer: Peer.PeerId | undefined,
    endpoint: string,
    reason: "Auth" | "Protocol",
    detail: string,
  ) {
    if (reason === "Auth" || this.options.curve !== undefined) this.metrics.authFailures++
    this.emit({ _tag: "HandshakeFailed", peer, endpoint, reason, detail })
  }

  /** Runs a dialer's side of the handshake; returns the link, or undefined when refused. */
  private dial(
    listener: MemoryNetwork.Listener,
    serverPublicKey: string | undefined,
    peer: Peer.PeerId | undefined,
    endpoint: string,
    end: (link: () => Link | undefined) => MemoryNetwork.LinkEnd,
  ): Link | undefined {
    let link: Link | undefined
    const admission = listener.accept({
      clientPublicKey: this.options.curve?.publicKey,
      serverPublicKey: this.options.curve === undefined ? undefined : serverPublicKey,
      end: end(() => link),
    })
    if (admission._tag === "Refused") {
      this.handshakeFailed(peer, endpoint, admission.reason, admission.detail)
      return undefined
    }
    link = { remote: admission.end, alive: true }
    return link
  }

  // ---- inbound (ROUTER) ------------------------------------------------------------------------------------

  bind(endpoint: Endpoint.Endpoint): TransportError | string {
    const listener = this.registry.bind(endpoint, "router", (resolved) => (hello) => this.acceptPeer(hello, resolved))
    if (typeof listener === "string") {
      return new TransportError({ reason: "BindFailed", message: listener, endpoint: endpoint.raw })
    }
    this.listeners.push(listener)
    this.boundEndpoints.push(listener.endpoint)
    this.emit({ _tag: "Listening", endpoint: listener.endpoint })
    return listener.endpoint
  }

  private acceptPeer(hello: MemoryNetwork.Hello, endpoint: string): MemoryNetwork.Admission {
    const admitted = this.admit(hello, endpoint)
    if (typeof admitted === "object") return admitted
    const id = Peer.makeId("inbound", `m${this.registry.nextLinkId()}`)
    const conn = this.makeConn({ id, direction: "inbound", publicKey: admitted }, endpoint, undefined)
    const link: Link = { remote: hello.end, alive: true }
    conn.link = link
    this.peers.set(id, conn)
    this.emit({ _tag: "Accepted", endpoint })
    return {
      _tag: "Accepted",
      end: {
        receive: (message) => link.alive && message._tag === "Batch" && this.receiveBatch(conn, message.frame),
        closed: () => {
          if (!link.alive) return
          link.alive = false
          this.inboundGone(conn)
        },
      },
    }
  }

  private inboundGone(conn: Conn): void {
    conn.link = undefined
    conn.gone = true
    this.metrics.disconnects++
    // ZeroMQ's monitor does not say which inbound peer left, so neither do we.
    this.emit({ _tag: "Disconnected", peer: undefined, endpoint: conn.endpoint })
    if (conn.queuedMessages > 0) this.forget(conn, "Unreachable")
  }

  // ---- outbound (DEALER per peer) --------------------------------------------------------------------------

  connect(endpoint: Endpoint.Endpoint, options: ConnectOptions | undefined): TransportError | Peer.Peer {
    const existing = this.outboundByEndpoint.get(endpoint.raw)
    if (existing !== undefined) return existing.peer
    const serverPublicKey = this.checkServerKey(endpoint, options)
    if (typeof serverPublicKey === "object") return serverPublicKey
    const id = Peer.makeId("outbound", `${this.nextOutbound++}:${endpoint.raw}`)
    const dialer: MemoryNetwork.Dialer = {
      kind: "router",
      endpoint,
      attach: (listener) => this.attachOutbound(conn, listener),
    }
    const conn = this.makeConn({ id, direction: "outbound", publicKey: serverPublicKey }, endpoint.raw, dialer)
    this.peers.set(id, conn)
    this.outboundByEndpoint.set(endpoint.raw, conn)
    this.registry.dial(dialer)
    return conn.peer
  }

  /** The server key for a CURVE connection (validated), `undefined` without CURVE, or the error. */
  private checkServerKey(endpoint: Endpoint.Endpoint, options: ConnectOptions | undefined) {
    if (Endpoint.isWildcard(endpoint)) {
      return new TransportError({
        reason: "ConnectFailed",
        message: `cannot connect to a wildcard port: ${endpoint.raw}`,
        endpoint: endpoint.raw,
      })
    }
    if (this.options.curve === undefined) return undefined
    const checked = TransportOptions.checkServerKey(
      this.options.curve,
      options?.serverPublicKey,
      endpoint.raw,
      "connect",
    )
    if (typeof checked !== "string" && checked.reason === "Untrusted") this.metrics.authFailures++
    return checked
  }

  private attachOutbound(conn: Conn, listener: MemoryNetwork.Listener): void {
    if (this.closed || conn.link !== undefined || this.peers.get(conn.peer.id) !== conn) return
    const link = this.dial(listener, conn.peer.publicKey, conn.peer.id, conn.endpoint, (current) => ({
      receive: (message) =>
        current()?.alive === true && message._tag === "Batch" && this.receiveBatch(conn, message.frame),
      closed: () => {
        const link = current()
        if (link === undefined || !link.alive) return
        link.alive = false
        conn.link = undefined
        this.metrics.disconnects++
        this.emit({ _tag: "Disconnected", peer: conn.peer.id, endpoint: conn.endpoint })
        this.armTimer(conn)
      },
    }))
    if (link === undefined) return
    conn.link = link
    if (conn.connectedBefore) this.metrics.reconnects++
    conn.connectedBefore = true
    this.emit({ _tag: "Connected", peer: conn.peer.id, endpoint: conn.endpoint })
    this.stopTimer(conn)
    const pending = conn.pending
    conn.pending = []
    for (const batch of pending) this.write(conn, link, batch)
  }

  disconnect(id: Peer.PeerId): void {
    const conn = this.peers.get(id)
    // Like a ROUTER, which cannot drop one inbound peer, `disconnect` only closes outbound connections.
    if (conn === undefined || conn.dialer === undefined) return
    this.outboundByEndpoint.delete(conn.endpoint)
    this.registry.hangUp(conn.dialer)
    this.closeLink(conn.link)
    conn.link = undefined
    this.forget(conn, "Closed")
  }

  // ---- sending ---------------------------------------------------------------------------------------------

  // `more` (TransportShape.offer) is not taken: in memory a message costs no system call, so waiting for more
  // would only add latency.
  offer(id: Peer.PeerId, payload: Uint8Array): TransportError | undefined {
    if (this.closed) return closedError()
    if (payload.length > this.options.maxMessageBytes) return tooLarge(payload.length, this.options.maxMessageBytes, id)
    const conn = this.peers.get(id)
    if (conn === undefined) {
      return new TransportError({ reason: "PeerUnknown", message: `no connection to peer ${id}`, peer: id })
    }
    if (
      conn.queuedMessages >= this.options.maxQueuedMessages ||
      conn.queuedBytes + payload.length > this.options.maxQueuedBytes
    ) {
      this.metrics.overloaded++
      return new TransportError({
        reason: "Overloaded",
        message: `outbound queue of ${id} is full (${conn.queuedMessages} payloads queued)`,
        peer: id,
      })
    }
    conn.turn.push(payload)
    conn.queuedMessages++
    conn.queuedBytes += payload.length
    this.metrics.queuedMessages++
    this.metrics.messagesSent++
    this.dirty.add(conn)
    this.scheduleFlush()
    return undefined
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return
    this.flushScheduled = true
    // Everything offered in this turn leaves together, never from inside `send` itself.
    queueMicrotask(() => {
      this.flushScheduled = false
      if (!this.closed) this.flush()
    })
  }

  private flush(): void {
    for (const conn of this.dirty) this.flushConn(conn)
    this.dirty.clear()
    this.flushPublications()
  }

  private flushConn(conn: Conn): void {
    if (conn.gone) {
      this.forget(conn, "Unreachable")
      return
    }
    const payloads = conn.turn
    if (payloads.length === 0) return
    conn.turn = []
    cutBatches(payloads, this.options, (start, count, bytes) => {
      // Encoding copies, as a socket write does: the caller may reuse its buffers once the turn is over.
      const batch = { frame: BatchFrame.encode(payloads, start, count, bytes, undefined), count, bytes }
      if (conn.link?.alive === true && conn.pending.length === 0) this.write(conn, conn.link, batch)
      else conn.pending.push(batch)
    })
    this.armTimer(conn)
  }

  private write(conn: Conn, link: Link, batch: Conn["pending"][number]): void {
    conn.queuedMessages -= batch.count
    conn.queuedBytes -= batch.bytes
    this.metrics.queuedMessages -= batch.count
    this.metrics.batchesSent++
    this.metrics.bytesSent += batch.frame.length
    link.remote.receive({ _tag: "Batch", frame: batch.frame })
  }

  /** Starts the send timeout when batches wait for a link; like the zmq outbox, it then drops everything. */
  private armTimer(conn: Conn): void {
    if (conn.timer !== undefined || conn.pending.length === 0 || this.closed) return
    conn.timer = Effect.runForkWith(this.context)(
      Effect.andThen(
        this.clock.sleep(Duration.millis(this.options.sendTimeoutMs)),
        Effect.sync(() => {
          conn.timer = undefined
          if (conn.link?.alive !== true) this.dropQueued(conn, "Timeout")
        }),
      ),
    )
  }

  private stopTimer(conn: Conn): void {
    conn.timer?.interruptUnsafe()
    conn.timer = undefined
  }

  private dropQueued(conn: Conn, reason: SendFailureReason): void {
    this.stopTimer(conn)
    const dropped = conn.queuedMessages
    conn.turn = []
    conn.pending = []
    conn.queuedMessages = 0
    conn.queuedBytes = 0
    if (dropped === 0) return
    this.metrics.queuedMessages -= dropped
    this.metrics.sendFailed += dropped
    this.emit({ _tag: "SendFailed", peer: conn.peer.id, messages: dropped, reason })
  }

  private forget(conn: Conn, reason: SendFailureReason): void {
    if (this.peers.get(conn.peer.id) === conn) this.peers.delete(conn.peer.id)
    this.dirty.delete(conn)
    this.dropQueued(conn, reason)
  }

  private makeConn(peer: Peer.Peer, endpoint: string, dialer: MemoryNetwork.Dialer | undefined): Conn {
    return {
      peer,
      endpoint,
      dialer,
      link: undefined,
      turn: [],
      pending: [],
      queuedMessages: 0,
      queuedBytes: 0,
      timer: undefined,
      connectedBefore: false,
      seen: false,
      gone: false,
    }
  }

  private closeLink(link: Link | undefined): void {
    if (link === undefined || !link.alive) return
    link.alive = false
    link.remote.closed()
  }

  // ---- receiving -------------------------------------------------------------------------------------------

  private receiveBatch(conn: Conn, frame: Uint8Array): boolean {
    if (conn.peer.direction === "inbound" && !conn.seen) {
      conn.seen = true
      this.emit({ _tag: "PeerSeen", peer: conn.peer.id, publicKey: conn.peer.publicKey })
    }
    const batch = this.decode(frame, conn.peer.id)
    if (batch === undefined) return false
    this.metrics.messagesReceived += batch.payloads.length
    return this.receivedBuffer.offer({ peer: conn.peer, payloads: batch.payloads })
  }

  private decode(frame: Uint8Array, peer: Peer.PeerId | undefined): BatchFrame.Batch | undefined {
    this.metrics.batchesReceived++
    this.metrics.bytesReceived += frame.length
    const batch: BatchFrame.Batch | BatchFrame.Rejection =
      frame.length > this.options.maxFrameBytes
        ? { reject: "TooLarge", detail: `message of ${frame.length} bytes exceeds maxFrameBytes` }
        : BatchFrame.decode(frame, this.options.maxMessageBytes)
    if (!BatchFrame.isRejection(batch)) return batch
    this.reject(peer, batch.reject, batch.detail)
    return undefined
  }

  private reject(peer: Peer.PeerId | undefined, reason: RejectReason, detail: string): void {
    this.metrics.rejected++
    this.emit({ _tag: "InputRejected", peer, reason, detail })
  }

  // ---- publish (XPUB) --------------------------------------------------------------------------------------

  bindPublisher(endpoint: Endpoint.Endpoint): TransportError | string {
    const listener = this.registry.bind(
      endpoint,
      "publisher",
      (resolved) => (hello) => this.acceptSubscriber(hello, resolved),
    )
    if (typeof listener === "string") {
      return new TransportError({ reason: "BindFailed", message: listener, endpoint: endpoint.raw })
    }
    this.listeners.push(listener)
    this.emit({ _tag: "Listening", endpoint: listener.endpoint })
    return listener.endpoint
  }

  private acceptSubscriber(hello: MemoryNetwork.Hello, endpoint: string): MemoryNetwork.Admission {
    const admitted = this.admit(hello, endpoint)
    if (typeof admitted === "object") return admitted
    const subscriber: SubscriberLink = { link: { remote: hello.end, alive: true }, endpoint, prefixes: new Set() }
    this.subscribers.add(subscriber)
    this.emit({ _tag: "Accepted", endpoint })
    return {
      _tag: "Accepted",
      end: {
        receive: (message) => {
          if (!subscriber.link.alive || message._tag !== "Subscription") return false
          const has = subscriber.prefixes.has(message.prefix)
          if (message.subscribed && !has) subscriber.prefixes.add(message.prefix)
          else if (!message.subscribed && has) subscriber.prefixes.delete(message.prefix)
          else return true
          this.countTopic(message.prefix, message.subscribed ? 1 : -1)
          return true
        },
        closed: () => {
          if (!subscriber.link.alive) return
          subscriber.link.alive = false
          this.subscriberGone(subscriber)
        },
      },
    }
  }

  private subscriberGone(subscriber: SubscriberLink): void {
    this.subscribers.delete(subscriber)
    for (const prefix of subscriber.prefixes) this.countTopic(prefix, -1)
    this.metrics.disconnects++
    this.emit({ _tag: "Disconnected", peer: undefined, endpoint: subscriber.endpoint })
  }

  /** XPUB without verbose mode: a prefix is reported when its first subscriber arrives and its last one leaves. */
  private countTopic(prefix: string, delta: 1 | -1): void {
    const before = this.topicCounts.get(prefix) ?? 0
    const after = before + delta
    if (after === 0) this.topicCounts.delete(prefix)
    else this.topicCounts.set(prefix, after)
    if (before === 0 || after === 0) this.emit({ _tag: "SubscriptionChanged", topic: prefix, subscribed: after > 0 })
  }

  publish(topic: string, payload: Uint8Array): TransportError | undefined {
    if (this.closed) return closedError()
    if (payload.length > this.options.maxMessageBytes) return tooLarge(payload.length, this.options.maxMessageBytes)
    let queued = this.publications.get(topic)
    if (queued === undefined) {
      queued = { payloads: [], bytes: 0 }
      this.publications.set(topic, queued)
    }
    if (
      queued.payloads.length >= this.options.maxQueuedMessages ||
      queued.bytes + payload.length > this.options.maxQueuedBytes
    ) {
      this.metrics.overloaded++
      return new TransportError({ reason: "Overloaded", message: `publish queue of topic "${topic}" is full` })
    }
    queued.payloads.push(payload)
    queued.bytes += payload.length
    this.metrics.queuedMessages++
    this.metrics.messagesSent++
    this.scheduleFlush()
    return undefined
  }

  private flushPublications(): void {
    const publications = this.publications
    if (publications.size === 0) return
    this.publications = new Map()
    for (const [topic, { payloads }] of publications) {
      this.metrics.queuedMessages -= payloads.length
      cutBatches(payloads, this.options, (start, count, bytes) => {
        const frame = BatchFrame.encode(payloads, start, count, bytes, undefined)
        this.metrics.batchesSent++
        this.metrics.bytesSent += frame.length
        for (const subscriber of this.subscribers) {
          if (!subscriber.link.alive || !matches(subscriber.prefixes, topic)) continue
          // A full subscriber buffer drops the batch, as XPUB does at its high-water mark; we count it.
          if (!subscriber.link.remote.receive({ _tag: "Publication", topic, frame })) this.metrics.sendFailed += count
        }
      })
    }
  }

  // ---- subscribe (SUB) -------------------------------------------------------------------------------------

  connectSubscriber(endpoint: Endpoint.Endpoint, options: ConnectOptions | undefined): TransportError | undefined {
    if (this.publishers.has(endpoint.raw)) return undefined
    const serverPublicKey = this.checkServerKey(endpoint, options)
    if (typeof serverPublicKey === "object") return serverPublicKey
    const dialer: MemoryNetwork.Dialer = {
      kind: "publisher",
      endpoint,
      attach: (listener) => this.attachSubscriber(conn, serverPublicKey, listener),
    }
    const conn: PublisherConn = { endpoint: endpoint.raw, dialer, link: undefined }
    this.publishers.set(endpoint.raw, conn)
    this.registry.dial(dialer)
    return undefined
  }

  private attachSubscriber(conn: PublisherConn, key: string | undefined, listener: MemoryNetwork.Listener): void {
    if (this.closed || conn.link !== undefined || this.publishers.get(conn.endpoint) !== conn) return
    const link = this.dial(listener, key, undefined, conn.endpoint, (current) => ({
      receive: (message) =>
        current()?.alive === true &&
        message._tag === "Publication" &&
        this.receivePublication(message.topic, message.frame),
      closed: () => {
        const link = current()
        if (link === undefined || !link.alive) return
        link.alive = false
        conn.link = undefined
        this.metrics.disconnects++
        this.emit({ _tag: "Disconnected", peer: undefined, endpoint: conn.endpoint })
      },
    }))
    if (link === undefined) return
    conn.link = link
    for (const prefix of this.subscriptions.keys()) {
      link.remote.receive({ _tag: "Subscription", prefix, subscribed: true })
    }
  }

  private receivePublication(topic: string, frame: Uint8Array): boolean {
    const batch = this.decode(frame, undefined)
    if (batch === undefined) return true
    if (!this.publishedBuffer.offer({ topic, payloads: batch.payloads })) return false
    this.metrics.messagesReceived += batch.payloads.length
    return true
  }

  /** SUB semantics: subscriptions are counted, and only the first and last of a prefix travel upstream. */
  changeSubscription(prefix: string, subscribed: boolean): TransportError | undefined {
    if (this.closed) return closedError()
    const before = this.subscriptions.get(prefix) ?? 0
    const after = subscribed ? before + 1 : Math.max(0, before - 1)
    if (after === 0) this.subscriptions.delete(prefix)
    else this.subscriptions.set(prefix, after)
    if ((before === 0) === (after === 0)) return undefined
    for (const conn of this.publishers.values()) {
      if (conn.link?.alive === true) conn.link.remote.receive({ _tag: "Subscription", prefix, subscribed })
    }
    return undefined
  }

  // ---- close -----------------------------------------------------------------------------------------------

  close(): void {
    if (this.closed) return
    this.closed = true
    // Linger: what this turn sent to linked peers still leaves; the rest is dropped and reported.
    this.flush()
    for (const conn of this.peers.values()) {
      this.dropQueued(conn, "Closed")
      if (conn.dialer !== undefined) this.registry.hangUp(conn.dialer)
      this.closeLink(conn.link)
    }
    this.peers.clear()
    this.outboundByEndpoint.clear()
    for (const listener of this.listeners) this.registry.unbind(listener)
    for (const subscriber of this.subscribers) this.closeLink(subscriber.link)
    this.subscribers.clear()
    for (const conn of this.publishers.values()) {
      this.registry.hangUp(conn.dialer)
      this.closeLink(conn.link)
    }
    this.publishers.clear()
    this.receivedBuffer.end()
    this.publishedBuffer.end()
    PubSub.endUnsafe(this.eventHub, Exit.void)
  }
}

const matches = (prefixes: ReadonlySet<string>, topic: string): boolean => {
  for (const prefix of prefixes) if (topic.startsWith(prefix)) return true
  return false
}

/**
 * Builds a memory transport on `options.network` (default: `MemoryNetwork.Current`); it closes when the scope
 * closes. Fails with `InvalidOptions` when an option is out of range.
 *
 * @since 0.1.0
 */
export const make = (
  options: MemoryTransportOptions = {},
): Effect.Effect<TransportShape, TransportError, Scope.Scope> =>
  Effect.gen(function* () {
    const resolved = yield* TransportOptions.resolve(options)
    const network = options.network ?? (yield* MemoryNetwork.Current)
    const clock = yield* Clock.Clock
    const context = yield* Effect.context<never>()
    const receivedBuffer = new ReceiveBuffer<Received>(Number.POSITIVE_INFINITY, "refuse")
    // The subscriber's buffer: bounded in batches like a SUB's receive high-water mark; full means dropped.
    const publishedBuffer = new ReceiveBuffer<Published>(resolved.receiveHighWaterMark, "drop")
    const eventHub = yield* PubSub.sliding<Take.Take<TransportEvent>>(EVENT_BUFFER)
    const impl = new MemoryTransportImpl(resolved, MemoryNetwork.registry(network), clock, context, {
      received: receivedBuffer,
      published: publishedBuffer,
      events: eventHub,
    })
    yield* Effect.addFinalizer(() => Effect.sync(() => impl.close()))
    const open = <A>(endpoint: string, f: (endpoint: Endpoint.Endpoint) => TransportError | A) =>
      Effect.suspend(() => {
        if (impl.closed) return Effect.fail(closedError())
        return Effect.flatMap(Endpoint.validate(endpoint), (parsed) => {
          const result = f(parsed)
          return TransportError.is(result) ? Effect.fail(result) : Effect.succeed(result)
        })
      })
    const run = (f: () => TransportError | undefined) =>
      Effect.suspend(() => {
        const error = f()
        return error === undefined ? Effect.void : Effect.fail(error)
      })
    const shape: TransportShape = {
      bind: (endpoint) => open(endpoint, (parsed) => impl.bind(parsed)),
      endpoints: () => (impl.closed ? [] : [...impl.boundEndpoints]),
      publicKey: impl.options.curve?.publicKey,
      connect: (endpoint, connectOptions) => open(endpoint, (parsed) => impl.connect(parsed, connectOptions)),
      disconnect: (peer) => Effect.sync(() => impl.disconnect(peer)),
      send: (peer, payload) => run(() => impl.offer(peer, payload)),
      offer: (peer, payload) => impl.offer(peer, payload),
      received: receivedBuffer.stream(),
      pollReceived: () => receivedBuffer.poll(),
      awaitReceived: () => receivedBuffer.wait(),
      events: Stream.fromPubSubTake(eventHub),
      bindPublisher: (endpoint) => open(endpoint, (parsed) => impl.bindPublisher(parsed)),
      publish: (topic, payload) => run(() => impl.publish(topic, payload)),
      connectSubscriber: (endpoint, connectOptions) =>
        open(endpoint, (parsed) => impl.connectSubscriber(parsed, connectOptions)),
      subscribe: (prefix) => run(() => impl.changeSubscription(prefix, true)),
      unsubscribe: (prefix) => run(() => impl.changeSubscription(prefix, false)),
      published: publishedBuffer.stream(),
      metrics: () => ({ ...impl.metrics }),
      close: Effect.sync(() => impl.close()),
    }
    return shape
  })

/**
 * The memory transport as a layer; it closes when the layer is released.
 *
 * @since 0.1.0
 */
export const layer = (options: MemoryTransportOptions = {}): Layer.Layer<Transport, TransportError> =>
  Layer.effect(Transport, make(options))
