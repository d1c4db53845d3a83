/**
 * The serving side of a node: routes REQUEST and TELL envelopes to the handlers registered for their target,
 * enforces the deadline carried on the wire (expired work is not started, running work is interrupted at the
 * deadline), interrupts a handler when its caller sends CANCEL, and answers every request with exactly one
 * REPLY or FAILURE, including for unknown targets and invalid payloads, so callers never wait for a timeout.
 */

import type { Peer, TransportShape } from "@zactor/transport"
import { Cause, Effect, Exit, type Fiber } from "effect"
import type { CallContext, Caller } from "../CallContext.ts"
import type * as Contract from "../Contract.ts"
import type { DeadLetter, DeadLetterReason } from "../DeadLetter.ts"
import { type Outcome as DedupeOutcome, type DedupeStoreShape, OUTCOME_UNKNOWN } from "../DedupeStore.ts"
import * as Envelope from "../Envelope.ts"
import { RpcError } from "../RpcError.ts"
import { type DeadlineEntry, DeadlineQueue } from "./deadlines.ts"
import * as Histogram from "./histogram.ts"
import { countBy, type RuntimeMetrics as NodeMetrics } from "./nodeMetrics.ts"
import { ServedCall } from "./trace.ts"

/** A served method with its handler, services already provided. */
export interface ServedMethod {
  readonly path: string
  readonly method: Contract.Method
  /**
   * Starts the handler in its own fiber, with the services it was served with, or returns its outcome when it
   * had one at once without a fiber (a handler answering `Effect.succeed(...)`). Streaming handlers send their
   * elements to `sink` (given for ServerStream methods only) and succeed when the stream is done.
   */
  readonly fork: (
    payload: unknown,
    context: CallContext,
    sink: StreamSink | undefined,
  ) => Fiber.Fiber<unknown, unknown> | Exit.Exit<unknown, unknown>
}

/**
 * Where a streaming handler's elements go: `emit` waits for the caller's credit, then sends one ITEM.
 */
export interface StreamSink {
  readonly emit: (wire: unknown) => Effect.Effect<void>
}

/** Default credit when a streaming REQUEST carries none. */
const DEFAULT_CREDIT = 16

/**
 * Resolves the addresses of a family served with one registration (a node's actors): the methods serving
 * `address` now, or `undefined` when it is not served. Lets a node host millions of addresses without a
 * registration each.
 */
export type Resolver = (address: string) => ReadonlyMap<string, ServedMethod> | undefined

/**
 * A request whose handler is still running after it started (most finish as they start and are answered at
 * once, with none of this): what answering it needs, and its entry in the in-flight table and deadline queue.
 */
class Inflight implements DeadlineEntry {
  deadlineAt = 0
  deadlinePrev: DeadlineEntry | undefined = undefined
  deadlineNext: DeadlineEntry | undefined = undefined
  deadlineList: DeadlineEntry["deadlineList"] = undefined
  fiber: Fiber.Fiber<unknown, unknown> | undefined = undefined
  cancelled = false
  /** Why the handler was interrupted, when it was: kept in the outcome a duplicate of a keyed call gets. */
  stoppedBy: string | undefined = undefined
  /** Wakes a streaming handler waiting for credit. */
  wake: (() => void) | undefined = undefined
  /** Stream elements the caller still accepts. */
  credit: number
  readonly peer: Peer.Peer
  readonly id: number
  readonly target: string
  readonly timeoutMs: number
  readonly attempt: number
  readonly served: ServedMethod
  readonly context: CallContext
  /** `target` NUL idempotency key, for calls that carry one. */
  readonly dedupeKey: string | undefined
  /** `performance.now()` at arrival, for the serve latency histogram. */
  readonly started: number

  constructor(
    peer: Peer.Peer,
    id: number,
    timeoutMs: number,
    attempt: number,
    credit: number,
    served: ServedMethod,
    context: CallContext,
    dedupeKey: string | undefined,
    started: number,
  ) {
    this.peer = peer
    this.id = id
    this.target = context.method
    this.timeoutMs = timeoutMs
    this.attempt = attempt
    this.credit = credit
    this.served = served
    this.context = context
    this.dedupeKey = dedupeKey
    this.started = started
  }

  /** Interrupts the handler; its answer is not sent, and `why` is kept for a keyed call's duplicates. */
  stop(why: string): void {
    this.cancelled = true
    this.stoppedBy = why
    this.fiber?.interruptUnsafe()
  }
}

const EMPTY_HEADERS: Envelope.Headers = Object.freeze({})

/** Most peers whose `Caller` is kept for reuse. */
const MAX_CALLERS = 4096

/** Routes inbound calls to handlers and sends their outcomes back. */
export class Dispatcher {
  private readonly addresses = new Map<string, Map<string, ServedMethod>>()
  private readonly resolvers = new Map<string, Resolver>()
  /** Full targets (`address/method`) of registered addresses already resolved: one lookup per request. */
  private readonly resolved = new Map<string, ServedMethod>()
  /** Requests being served, by peer, then by correlation id (numbers: no key string per request). */
  private readonly inflight = new Map<Peer.PeerId, Map<number, Inflight>>()
  private inflightTotal = 0
  private readonly deadlines = new DeadlineQueue<Inflight>((entry) => this.expire(entry))
  /** The last `Caller` made per peer, reused while the peer's node id and key stay the same. */
  private readonly callers = new Map<Peer.PeerId, Caller>()
  private readonly transport: TransportShape
  private readonly metrics: NodeMetrics
  private readonly maxConcurrentCalls: number

  private readonly dedupe: DedupeStoreShape
  private readonly deadLetter: (letter: DeadLetter) => void

  constructor(
    transport: TransportShape,
    metrics: NodeMetrics,
    maxConcurrentCalls: number,
    dedupe: DedupeStoreShape,
    deadLetter: (letter: DeadLetter) => void,
  ) {
    this.transport = transport
    this.metrics = metrics
    this.maxConcurrentCalls = maxConcurrentCalls
    this.dedupe = dedupe
    this.deadLetter = deadLetter
  }

  /**
   * Set by the node while it drains: new requests are refused `unavailable` (retry-safe callers try another
   * instance), except to the addresses listed (the admin service, so that operators can still look in).
   */
  draining: { readonly exempt: ReadonlySet<string> } | undefined = undefined

  /** Set by the node: told when a handler dies with a defect (a bug), to log it. */
  onDefect: ((context: CallContext, cause: Cause.Cause<unknown>) => void) | undefined = undefined

  /** Registers the methods of one address (a service name, or `@actor`); returns the unregister function. */
  register(address: string, methods: Map<string, ServedMethod>): () => void {
    if (this.addresses.has(address)) throw new Error(`"${address}" is already served on this node`)
    this.addresses.set(address, methods)
    this.resolved.clear()
    return () => {
      if (this.addresses.get(address) === methods) this.addresses.delete(address)
      this.resolved.clear()
    }
  }

  /**
   * Serves every address starting with `prefix` that is not registered with `register` through `resolver`;
   * returns the unregister function. Family members are not listed by `served`.
   */
  registerResolver(prefix: string, resolver: Resolver): () => void {
    if (this.resolvers.has(prefix)) throw new Error(`addresses "${prefix}*" are already served on this node`)
    this.resolvers.set(prefix, resolver)
    return () => {
      if (this.resolvers.get(prefix) === resolver) this.resolvers.delete(prefix)
    }
  }

  /** The addresses served, for HELLO. */
  served(): Array<string> {
    return [...this.addresses.keys()]
  }

  /** Whether an address (a service, or `@actor` of a family) is served now: death watches of actors ask this. */
  serves(address: string): boolean {
    return this.addresses.has(address) || this.resolveFamily(address) !== undefined
  }

  /** Requests being served now. */
  get inflightCount(): number {
    return this.inflightTotal
  }

  private resolve(target: string): ServedMethod | string {
    const known = this.resolved.get(target)
    if (known !== undefined) return known
    const slash = target.lastIndexOf("/")
    if (slash <= 0) return `target "${target}" is not of the form address/method`
    const address = target.slice(0, slash)
    const registered = this.addresses.get(address)
    const methods = registered ?? this.resolveFamily(address)
    if (methods === undefined) return `no service or actor "${address}" on this node`
    const served = methods.get(target.slice(slash + 1))
    if (served === undefined) return `"${address}" has no method "${target.slice(slash + 1)}"`
    // Only registered addresses are remembered (bounded by what is served); family members come and go.
    if (registered !== undefined) this.resolved.set(target, served)
    return served
  }

  private resolveFamily(address: string): ReadonlyMap<string, ServedMethod> | undefined {
    // A handful of prefixes at most (actors use one), so a scan is cheaper than anything smarter.
    for (const [prefix, resolver] of this.resolvers) {
      if (address.startsWith(prefix)) return resolver(address)
    }
    return undefined
  }

  onRequest(peer: Peer.Peer, callerNodeId: string | undefined, envelope: Envelope.Request): void {
    const [, , id, target, body, timeoutMs, headers] = envelope
    const attempt = typeof headers?.at === "number" ? headers.at : 1
    // At-least-once callers ask for an ACK: receipt, not outcome. An answer sent in this turn (a refusal, a stored
    // outcome, a handler that finished at once) acknowledges receipt by itself and goes in the same batch, so
    // only calls left waiting get an ACK, ahead of their answer: one envelope less each way for quick handlers.
    const ack = headers?.ak === 1
    const served = this.resolve(target)
    if (typeof served === "string") return this.refuse(peer, id, "not_found", served, target, "unroutable", attempt)
    if (timeoutMs === 0) {
      if (ack) this.sendAck(peer, id)
      this.expired(target, attempt, "arrived expired")
      return
    }
    if (this.inflightTotal >= this.maxConcurrentCalls) {
      const message = `node is serving ${this.inflightTotal} calls, its limit`
      return this.refuse(peer, id, "overloaded", message, target, "over-limit", attempt)
    }
    const decoded = served.method.payload.decode(body)
    if (decoded._tag === "Failure") {
      const field = decoded.failure.path.length > 0 ? ` at ${decoded.failure.path.join(".")}` : ""
      const message = `${target}: invalid payload${field}: ${decoded.failure.message}`
      return this.refuse(peer, id, "invalid_argument", message, target, "rejected", attempt)
    }
    let calls = this.inflight.get(peer.id)
    if (calls?.has(id) === true) {
      return this.refuse(peer, id, "invalid_argument", `duplicate correlation id ${id}`, target, "rejected", attempt)
    }
    // Idempotency keys: run the handler once per key inside the window, answer duplicates from the store.
    const idempotencyKey = served.method._tag === "Unary" && typeof headers?.ik === "string" ? headers.ik : undefined
    const dedupeKey = idempotencyKey === undefined ? undefined : `${target}\u0000${idempotencyKey}`
    if (dedupeKey !== undefined && this.deduplicated(peer, id, target, body, dedupeKey, ack, attempt)) return
    // Draining: a key this node knows was answered above (sending it elsewhere could run it twice); new work is
    // refused, not dead-lettered: the caller is told at once and, if the call is safe to repeat, sends it on.
    if (this.draining !== undefined && !this.draining.exempt.has(target.slice(0, target.lastIndexOf("/")))) {
      if (dedupeKey !== undefined) this.dedupe.abandon(dedupeKey)
      this.metrics.requestsRejected++
      return this.sendFailure(peer, id, "unavailable", `${target}: the node is draining before it stops`, null)
    }
    const context = this.contextFor(peer, callerNodeId, target, Date.now() + timeoutMs, headers, id)
    this.metrics.requestsServed++
    const started = performance.now()
    let request: Inflight | undefined
    let sink: StreamSink | undefined
    if (served.method._tag === "ServerStream") {
      // A stream's sink needs its entry (credit) from the start.
      const initialCredit = headers?.cr
      const credit = typeof initialCredit === "number" && initialCredit > 0 ? initialCredit : DEFAULT_CREDIT
      request = new Inflight(peer, id, timeoutMs, attempt, credit, served, context, dedupeKey, started)
      calls = this.track(calls, request)
      sink = this.sinkFor(peer, id, request)
    }
    const fiber = served.fork(decoded.success, context, sink)
    // Most handlers finish as they start (the fiber runs synchronously until it first waits, or there was no
    // fiber): answer at once, with no in-flight entry, deadline, observer or ACK (the answer, in this same batch,
    // acknowledges receipt).
    if (Exit.isExit(fiber)) {
      if (request !== undefined) this.untrack(request)
      return this.finish(peer, id, served, context, dedupeKey, started, request, fiber)
    }
    const done = fiber.pollUnsafe()
    if (done !== undefined) {
      if (request !== undefined) this.untrack(request)
      return this.finish(peer, id, served, context, dedupeKey, started, request, done)
    }
    if (request === undefined) {
      request = new Inflight(peer, id, timeoutMs, attempt, DEFAULT_CREDIT, served, context, dedupeKey, started)
      this.track(calls, request)
    }
    this.watch(request, fiber)
    if (ack && this.inflight.get(peer.id)?.get(id) === request) this.sendAck(peer, id)
  }

  /** A handler still running: answered when it ends, or interrupted at its deadline. */
  private watch(running: Inflight, fiber: Fiber.Fiber<unknown, unknown>): void {
    // Its own method, so that the closure's context is allocated here, not on every request's fast path.
    running.fiber = fiber
    this.deadlines.add(running, running.timeoutMs, running.started)
    fiber.addObserver((exit) => {
      this.untrack(running)
      this.finish(
        running.peer,
        running.id,
        running.served,
        running.context,
        running.dedupeKey,
        running.started,
        running,
        exit,
        // Other calls of this caller still running will answer soon: let this answer wait for them (Outbox).
        this.inflight.has(running.peer.id),
      )
    })
  }

  /**
   * Answers a request whose handler finished (unless it was cancelled: `running` says, for one that did not
   * finish at once), and stores the outcome of keyed calls.
   */
  private finish(
    peer: Peer.Peer,
    id: number,
    served: ServedMethod,
    context: CallContext,
    dedupeKey: string | undefined,
    started: number,
    running: Inflight | undefined,
    exit: Exit.Exit<unknown, unknown>,
    more = false,
  ): void {
    Histogram.observe(this.metrics.serveLatency, performance.now() - started)
    const target = context.method
    if (exit._tag === "Success" && dedupeKey === undefined && served.method._tag === "Unary") {
      // The common case, without building an outcome to store.
      const encoded = served.method.success.encode(exit.value)
      if (encoded._tag === "Success") {
        if (running === undefined || !running.cancelled) this.sendReply(peer, id, encoded.success, more)
        return
      }
    }
    if (exit._tag === "Failure" && this.onDefect !== undefined && exit.cause.reasons.some(Cause.isDieReason)) {
      this.onDefect(context, exit.cause)
    }
    const outcome = this.outcomeOf(target, served, exit)
    if (dedupeKey !== undefined && outcome !== undefined) {
      // Once a keyed handler has started, its outcome is kept whatever it is, so that no duplicate runs it
      // again: an interrupted handler (cancelled, stopped at its deadline, node closing) may have had its
      // effect (Effect reports an interrupted fiber as interrupted even when it finished an uninterruptible
      // region), so its duplicates are told the outcome is unknown instead.
      const interrupted = exit._tag === "Failure" && Cause.hasInterruptsOnly(exit.cause)
      this.dedupe.complete(dedupeKey, interrupted ? unknownOutcome(target, running?.stoppedBy) : outcome)
    }
    if (running === undefined || !running.cancelled) this.sendOutcome(peer, id, outcome, more)
  }

  /**
   * Idempotency keys: runs the handler once per key inside the window and answers duplicates from the store.
   * True when the request was answered (or will be) without running its handler.
   */
  private deduplicated(
    peer: Peer.Peer,
    id: number,
    target: string,
    body: unknown,
    dedupeKey: string,
    ack: boolean,
    attempt: number,
  ): boolean {
    const begun = this.dedupe.begin(dedupeKey, Envelope.fingerprint(body))
    switch (begun._tag) {
      case "Done":
        this.metrics.deduplicated++
        this.sendOutcome(peer, id, begun.outcome)
        return true
      case "Running":
        this.metrics.deduplicated++
        if (ack) this.sendAck(peer, id)
        void begun.wait.then((outcome) =>
          outcome === undefined
            ? this.sendFailure(peer, id, "unavailable", `${target}: the first attempt did not finish; try again`, null)
            : this.sendOutcome(peer, id, outcome),
        )
        return true
      case "Conflict":
        this.refuse(
          peer,
          id,
          "idempotency_conflict",
          `${target}: idempotency key "${dedupeKey.slice(target.length + 1)}" was used with a different payload`,
          target,
          "rejected",
          attempt,
        )
        return true
      case "New":
        return false
    }
  }

  /** Records a request as being served; returns the peer's map. */
  private track(calls: Map<number, Inflight> | undefined, entry: Inflight): Map<number, Inflight> {
    let map = calls
    if (map === undefined) {
      map = new Map()
      this.inflight.set(entry.peer.id, map)
    }
    map.set(entry.id, entry)
    this.inflightTotal++
    return map
  }

  /** Forgets a request (it finished, or the node closes); a no-op when already forgotten. */
  private untrack(entry: Inflight): void {
    this.deadlines.remove(entry)
    const calls = this.inflight.get(entry.peer.id)
    if (calls?.get(entry.id) !== entry) return
    calls.delete(entry.id)
    this.inflightTotal--
    if (calls.size === 0) this.inflight.delete(entry.peer.id)
  }

  /** A request's deadline passed while its handler ran: the caller has given up by now. */
  private expire(entry: Inflight): void {
    if (this.inflight.get(entry.peer.id)?.get(entry.id) !== entry) return
    // Stop the work and answer for callers that still listen.
    this.expired(entry.target, entry.attempt, "deadline passed while running")
    entry.stop("its deadline passed")
    this.sendFailure(
      entry.peer,
      entry.id,
      "deadline_exceeded",
      `${entry.target}: deadline of ${entry.timeoutMs} ms passed on the server`,
      null,
    )
  }

  /** Counts and dead-letters a request dropped for its deadline. */
  private expired(target: string, attempt: number, detail: string): void {
    this.metrics.requestsExpired++
    this.deadLetter({ reason: "expired", target, direction: "inbound", attempt, count: 1, detail, at: Date.now() })
  }

  /** The context a handler sees; the caller part is shared by the calls of one peer. */
  private contextFor(
    peer: Peer.Peer,
    callerNodeId: string | undefined,
    target: string,
    deadline: number,
    headers: Envelope.Headers | null,
    id: number,
  ): CallContext {
    let caller = this.callers.get(peer.id)
    if (caller === undefined || caller.nodeId !== callerNodeId || caller.publicKey !== peer.publicKey) {
      caller = { peerId: peer.id, nodeId: callerNodeId, publicKey: peer.publicKey }
      // Bounded like the transport's inbound peers: forget them all rather than track each one's end.
      if (this.callers.size >= MAX_CALLERS) this.callers.clear()
      this.callers.set(peer.id, caller)
    }
    return new ServedCall(target, caller, deadline, headers ?? EMPTY_HEADERS, id)
  }

  onTell(peer: Peer.Peer, callerNodeId: string | undefined, envelope: Envelope.Tell): void {
    const [, , target, body, headers] = envelope
    const served = this.resolve(target)
    if (typeof served === "string") {
      this.metrics.tellsDropped++
      this.deadLetter({
        reason: "unroutable",
        target,
        direction: "inbound",
        attempt: 1,
        count: 1,
        detail: served,
        at: Date.now(),
      })
      return
    }
    const decoded = served.method.payload.decode(body)
    if (decoded._tag === "Failure") {
      this.metrics.tellsDropped++
      const detail = `invalid payload: ${decoded.failure.message}`
      this.deadLetter({
        reason: "rejected",
        target,
        direction: "inbound",
        attempt: 1,
        count: 1,
        detail,
        at: Date.now(),
      })
      return
    }
    this.metrics.tellsReceived++
    served.fork(
      decoded.success,
      this.contextFor(peer, callerNodeId, target, Number.POSITIVE_INFINITY, headers, 0),
      undefined,
    )
  }

  /** The sink of one streaming call: sends ITEMs while the caller has credit, waits for CREDIT otherwise. */
  private sinkFor(peer: Peer.Peer, id: number, entry: Inflight): StreamSink {
    const waitForCredit = Effect.callback<void>((resume) => {
      entry.wake = () => {
        entry.wake = undefined
        resume(Effect.void)
      }
      return Effect.sync(() => {
        entry.wake = undefined
      })
    })
    const send = (wire: unknown) =>
      Effect.sync(() => {
        entry.credit--
        this.offer(peer, [Envelope.PROTOCOL_VERSION, Envelope.Kind.Item, id, wire])
      })
    return {
      emit: (wire) => (entry.credit > 0 ? send(wire) : Effect.flatMap(waitForCredit, () => send(wire))),
    }
  }

  onCredit(peer: Peer.Peer, id: number, n: number): void {
    const entry = this.inflight.get(peer.id)?.get(id)
    if (entry === undefined) return
    entry.credit += n
    if (entry.credit > 0) entry.wake?.()
  }

  onCancel(peer: Peer.Peer, id: number): void {
    const entry = this.inflight.get(peer.id)?.get(id)
    if (entry === undefined) return
    this.metrics.requestsCancelled++
    entry.stop("its caller cancelled it")
  }

  /** Whether calls from `peer` are being served. */
  serving(peer: Peer.PeerId): boolean {
    return this.inflight.has(peer)
  }

  /**
   * The caller at `peer` fell silent past its heartbeat timeout (dead, frozen or cut off): its handlers are
   * interrupted as by a CANCEL, except keyed ones, which finish so that a retry finds their outcome in the
   * window. Returns how many were stopped.
   */
  callerSilent(peer: Peer.PeerId): number {
    const calls = this.inflight.get(peer)
    if (calls === undefined) return 0
    let stopped = 0
    // A copy: an interrupted handler may finish (and leave the map) at once.
    for (const entry of [...calls.values()]) {
      if (entry.cancelled || entry.dedupeKey !== undefined) continue
      entry.stop("its caller fell silent")
      stopped++
    }
    this.metrics.requestsAbandoned += stopped
    return stopped
  }

  /** Interrupts every handler, for shutdown. */
  interruptAll(): void {
    const entries = [...this.inflight.values()].flatMap((calls) => [...calls.values()])
    this.inflight.clear()
    this.inflightTotal = 0
    this.deadlines.clear()
    for (const entry of entries) {
      entry.stop("the node was closing")
    }
  }

  /** What a finished handler answers; `undefined` for a stream's normal end (END, not stored). */
  private outcomeOf(path: string, served: ServedMethod, exit: Exit.Exit<unknown, unknown>): DedupeOutcome | undefined {
    if (exit._tag === "Success" && served.method._tag === "ServerStream") return undefined
    if (exit._tag === "Success") {
      const encoded = served.method._tag === "Unary" ? served.method.success.encode(exit.value) : undefined
      if (encoded === undefined || encoded._tag === "Failure") {
        const detail = encoded === undefined ? "" : `: ${encoded.failure.message}`
        return failure("internal", `${path}: the handler's result does not match the contract${detail}`)
      }
      return { _tag: "Reply", body: encoded.success }
    }
    const failed = exit.cause.reasons.find(Cause.isFailReason)
    if (failed !== undefined) {
      const error = failed.error
      const encoded = served.method.error.encode(error)
      if (encoded._tag === "Success") {
        return { _tag: "Failure", code: "application", message: messageOf(error), error: encoded.success }
      }
      if (RpcError.is(error)) return failure(error.code, error.message)
      return failure("internal", `${path}: undeclared error: ${messageOf(error)}`)
    }
    if (Cause.hasInterruptsOnly(exit.cause)) return failure("cancelled", `${path}: the handler was interrupted`)
    const defect = exit.cause.reasons.find(Cause.isDieReason)
    return failure("internal", `${path}: the handler failed: ${messageOf(defect?.defect)}`)
  }

  /** `more`: other calls of this peer are still running (see `TransportShape.offer`). */
  private sendOutcome(peer: Peer.Peer, id: number, outcome: DedupeOutcome | undefined, more = false): void {
    if (outcome === undefined) this.offer(peer, [Envelope.PROTOCOL_VERSION, Envelope.Kind.End, id], more)
    else if (outcome._tag === "Reply") this.sendReply(peer, id, outcome.body, more)
    else this.sendFailure(peer, id, outcome.code, outcome.message, outcome.error, more)
  }

  private sendReply(peer: Peer.Peer, id: number, body: unknown, more = false): void {
    // A refused reply (peer gone, queue full) is already counted by the transport; the caller times out.
    this.transport.offer(peer.id, Envelope.encodeReply(id, body), more)
  }

  private refuse(
    peer: Peer.Peer,
    id: number,
    code: RpcError["code"],
    message: string,
    target: string,
    reason: DeadLetterReason,
    attempt: number,
  ): void {
    this.metrics.requestsRejected++
    this.deadLetter({ reason, target, direction: "inbound", attempt, count: 1, detail: message, at: Date.now() })
    this.sendFailure(peer, id, code, message, null)
  }

  private sendAck(peer: Peer.Peer, id: number): void {
    this.offer(peer, [Envelope.PROTOCOL_VERSION, Envelope.Kind.Ack, id])
  }

  private sendFailure(peer: Peer.Peer, id: number, code: string, message: string, error: unknown, more = false): void {
    countBy(this.metrics.serveErrors, code)
    this.offer(peer, [Envelope.PROTOCOL_VERSION, Envelope.Kind.Failure, id, code, message, error], more)
  }

  private offer(peer: Peer.Peer, envelope: Envelope.Envelope, more = false): void {
    // A refused reply (peer gone, queue full) is already counted by the transport; the caller times out.
    this.transport.offer(peer.id, Envelope.encode(envelope), more)
  }
}

const failure = (code: string, message: string): DedupeOutcome => ({ _tag: "Failure", code, message, error: null })

/** What the duplicates of a keyed call get when its handler was interrupted after it started. */
const unknownOutcome = (path: string, stoppedBy: string | undefined): DedupeOutcome =>
  failure(
    "internal",
    `${path}: ${OUTCOME_UNKNOWN}: the first attempt with this idempotency key was interrupted after its handler ` +
      `started (${stoppedBy ?? "interrupted"}), so its effect may or may not have happened; it is not run again`,
  )

const messageOf = (error: unknown): string => {
  // Tagged errors without a message field have an empty message: their tag says more.
  if (error instanceof Error && error.message !== "") return error.message
  if (typeof error === "object" && error !== null && typeof (error as { _tag?: unknown })._tag === "string") {
    return (error as { _tag: string })._tag
  }
  return String(error)
}
