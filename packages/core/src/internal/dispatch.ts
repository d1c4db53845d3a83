/**
 * The serving side of a node: routes REQUEST and TELL envelopes to the handlers registered for their target,
 * enforces the deadline carried on the wire (expired work is not started, running work is interrupted at the
 * deadline), interrupts a handler when its caller sends CANCEL, and answers every request with exactly one
 * REPLY or FAILURE, including for unknown targets and invalid payloads, so callers never wait for a timeout.
 */

import type { Peer, TransportShape } from "@zactor/transport"
import { Cause, Effect, type Exit, type Fiber } from "effect"
import type { CallContext } from "../CallContext.ts"
import type * as Contract from "../Contract.ts"
import type { DeadLetter, DeadLetterReason } from "../DeadLetter.ts"
import { type Outcome as DedupeOutcome, type DedupeStoreShape, OUTCOME_UNKNOWN } from "../DedupeStore.ts"
import * as Envelope from "../Envelope.ts"
import { RpcError } from "../RpcError.ts"
import type { NodeMetrics } from "./nodeMetrics.ts"
import { timerDelay } from "./remotes.ts"

/** A served method with its handler, services already provided. */
export interface ServedMethod {
  readonly path: string
  readonly method: Contract.Method
  /**
   * Starts the handler in its own fiber, with the services it was served with. Streaming handlers send their
   * elements to `sink` (given for ServerStream methods only) and succeed when the stream is done.
   */
  readonly fork: (payload: unknown, context: CallContext, sink: StreamSink | undefined) => Fiber.Fiber<unknown, unknown>
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

/** A request being served. */
interface Inflight {
  fiber: Fiber.Fiber<unknown, unknown> | undefined
  timer: ReturnType<typeof setTimeout> | undefined
  cancelled: boolean
  /** Why the handler was interrupted, when it was: kept in the outcome a duplicate of a keyed call gets. */
  stoppedBy: string | undefined
  /** Stream elements the caller still accepts. */
  credit: number
  /** Wakes a streaming handler waiting for credit. */
  wake: (() => void) | undefined
}

const EMPTY_HEADERS: Envelope.Headers = Object.freeze({})

/** Routes inbound calls to handlers and sends their outcomes back. */
export class Dispatcher {
  private readonly addresses = new Map<string, Map<string, ServedMethod>>()
  private readonly resolvers = new Map<string, Resolver>()
  private readonly inflight = new Map<string, Inflight>()
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

  /** Registers the methods of one address (a service name, or `@actor`); returns the unregister function. */
  register(address: string, methods: Map<string, ServedMethod>): () => void {
    if (this.addresses.has(address)) throw new Error(`"${address}" is already served on this node`)
    this.addresses.set(address, methods)
    return () => {
      if (this.addresses.get(address) === methods) this.addresses.delete(address)
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

  /** Requests being served now. */
  get inflightCount(): number {
    return this.inflight.size
  }

  private resolve(target: string): ServedMethod | string {
    const slash = target.lastIndexOf("/")
    if (slash <= 0) return `target "${target}" is not of the form address/method`
    const address = target.slice(0, slash)
    const methods = this.addresses.get(address) ?? this.resolveFamily(address)
    if (methods === undefined) return `no service or actor "${address}" on this node`
    const served = methods.get(target.slice(slash + 1))
    return served ?? `"${address}" has no method "${target.slice(slash + 1)}"`
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
      this.metrics.requestsExpired++
      this.deadLetter({
        reason: "expired",
        target,
        direction: "inbound",
        attempt,
        count: 1,
        detail: "arrived expired",
        at: Date.now(),
      })
      return
    }
    if (this.inflight.size >= this.maxConcurrentCalls) {
      const message = `node is serving ${this.inflight.size} calls, its limit`
      return this.refuse(peer, id, "overloaded", message, target, "over-limit", attempt)
    }
    const decoded = served.method.payload.decode(body)
    if (decoded._tag === "Failure") {
      const field = decoded.failure.path.length > 0 ? ` at ${decoded.failure.path.join(".")}` : ""
      const message = `${target}: invalid payload${field}: ${decoded.failure.message}`
      return this.refuse(peer, id, "invalid_argument", message, target, "rejected", attempt)
    }
    const key = `${peer.id}#${id}`
    if (this.inflight.has(key)) {
      return this.refuse(peer, id, "invalid_argument", `duplicate correlation id ${id}`, target, "rejected", attempt)
    }
    // Idempotency keys: run the handler once per key inside the window, answer duplicates from the store.
    const idempotencyKey = served.method._tag === "Unary" && typeof headers?.ik === "string" ? headers.ik : undefined
    const dedupeKey = idempotencyKey === undefined ? undefined : `${target}\u0000${idempotencyKey}`
    if (dedupeKey !== undefined) {
      const begun = this.dedupe.begin(dedupeKey, Envelope.fingerprint(body))
      switch (begun._tag) {
        case "Done":
          this.metrics.deduplicated++
          return this.sendOutcome(peer, id, begun.outcome)
        case "Running":
          this.metrics.deduplicated++
          if (ack) this.sendAck(peer, id)
          void begun.wait.then((outcome) =>
            outcome === undefined
              ? this.sendFailure(
                  peer,
                  id,
                  "unavailable",
                  `${target}: the first attempt did not finish; try again`,
                  null,
                )
              : this.sendOutcome(peer, id, outcome),
          )
          return
        case "Conflict":
          return this.refuse(
            peer,
            id,
            "idempotency_conflict",
            `${target}: idempotency key "${idempotencyKey}" was used with a different payload`,
            target,
            "rejected",
            attempt,
          )
        case "New":
          break
      }
    }
    const context: CallContext = {
      method: target,
      caller: { peerId: peer.id, nodeId: callerNodeId, publicKey: peer.publicKey },
      deadline: Date.now() + timeoutMs,
      headers: headers ?? EMPTY_HEADERS,
    }
    this.metrics.requestsServed++
    const initialCredit = headers?.cr
    const entry: Inflight = {
      fiber: undefined,
      timer: undefined,
      cancelled: false,
      stoppedBy: undefined,
      credit: typeof initialCredit === "number" && initialCredit > 0 ? initialCredit : DEFAULT_CREDIT,
      wake: undefined,
    }
    this.inflight.set(key, entry)
    const sink = served.method._tag === "ServerStream" ? this.sinkFor(peer, id, entry) : undefined
    const fiber = served.fork(decoded.success, context, sink)
    entry.fiber = fiber
    entry.timer = setTimeout(() => {
      // The caller has given up by now; stop the work and answer for callers that still listen.
      if (this.inflight.get(key) !== entry) return
      this.metrics.requestsExpired++
      this.deadLetter({
        reason: "expired",
        target,
        direction: "inbound",
        attempt,
        count: 1,
        detail: "deadline passed while running",
        at: Date.now(),
      })
      entry.cancelled = true
      entry.stoppedBy = "its deadline passed"
      fiber.interruptUnsafe()
      this.sendFailure(
        peer,
        id,
        "deadline_exceeded",
        `${target}: deadline of ${timeoutMs} ms passed on the server`,
        null,
      )
    }, timerDelay(timeoutMs))
    fiber.addObserver((exit) => {
      clearTimeout(entry.timer)
      this.inflight.delete(key)
      const outcome = this.outcomeOf(target, served, exit)
      if (dedupeKey !== undefined && outcome !== undefined) {
        // Once a keyed handler has started, its outcome is kept whatever it is, so that no duplicate runs it
        // again: an interrupted handler (cancelled, stopped at its deadline, node closing) may have had its
        // effect (Effect reports an interrupted fiber as interrupted even when it finished an uninterruptible
        // region), so its duplicates are told the outcome is unknown instead.
        const interrupted = exit._tag === "Failure" && Cause.hasInterruptsOnly(exit.cause)
        this.dedupe.complete(dedupeKey, interrupted ? unknownOutcome(target, entry.stoppedBy) : outcome)
      }
      if (!entry.cancelled) this.sendOutcome(peer, id, outcome)
    })
    if (ack && this.inflight.get(key) === entry) this.sendAck(peer, id)
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
    const context: CallContext = {
      method: target,
      caller: { peerId: peer.id, nodeId: callerNodeId, publicKey: peer.publicKey },
      deadline: Number.POSITIVE_INFINITY,
      headers: headers ?? EMPTY_HEADERS,
    }
    served.fork(decoded.success, context, undefined)
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
    const entry = this.inflight.get(`${peer.id}#${id}`)
    if (entry === undefined) return
    entry.credit += n
    if (entry.credit > 0) entry.wake?.()
  }

  onCancel(peer: Peer.Peer, id: number): void {
    const entry = this.inflight.get(`${peer.id}#${id}`)
    if (entry === undefined) return
    this.metrics.requestsCancelled++
    entry.cancelled = true
    entry.stoppedBy = "its caller cancelled it"
    entry.fiber?.interruptUnsafe()
  }

  /** Interrupts every handler, for shutdown. */
  interruptAll(): void {
    for (const entry of this.inflight.values()) {
      entry.cancelled = true
      entry.stoppedBy = "the node was closing"
      clearTimeout(entry.timer)
      entry.fiber?.interruptUnsafe()
    }
    this.inflight.clear()
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

  private sendOutcome(peer: Peer.Peer, id: number, outcome: DedupeOutcome | undefined): void {
    if (outcome === undefined) this.offer(peer, [Envelope.PROTOCOL_VERSION, Envelope.Kind.End, id])
    else if (outcome._tag === "Reply")
      this.offer(peer, [Envelope.PROTOCOL_VERSION, Envelope.Kind.Reply, id, outcome.body])
    else this.sendFailure(peer, id, outcome.code, outcome.message, outcome.error)
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

  private sendFailure(peer: Peer.Peer, id: number, code: string, message: string, error: unknown): void {
    this.offer(peer, [Envelope.PROTOCOL_VERSION, Envelope.Kind.Failure, id, code, message, error])
  }

  private offer(peer: Peer.Peer, envelope: Envelope.Envelope): void {
    // A refused reply (peer gone, queue full) is already counted by the transport; the caller times out.
    this.transport.offer(peer.id, Envelope.encode(envelope))
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
