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

  constructor(transport: TransportShape, metrics: NodeMetrics, maxConcurrentCalls: number) {
    this.transport = transport
    this.metrics = metrics
    this.maxConcurrentCalls = maxConcurrentCalls
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
    const served = this.resolve(target)
    if (typeof served === "string") return this.refuse(peer, id, "not_found", served)
    if (timeoutMs === 0) {
      this.metrics.requestsExpired++
      return
    }
    if (this.inflight.size >= this.maxConcurrentCalls) {
      return this.refuse(peer, id, "overloaded", `node is serving ${this.inflight.size} calls, its limit`)
    }
    const decoded = served.method.payload.decode(body)
    if (decoded._tag === "Failure") {
      const field = decoded.failure.path.length > 0 ? ` at ${decoded.failure.path.join(".")}` : ""
      return this.refuse(peer, id, "invalid_argument", `${target}: invalid payload${field}: ${decoded.failure.message}`)
    }
    const key = `${peer.id}#${id}`
    if (this.inflight.has(key)) return this.refuse(peer, id, "invalid_argument", `duplicate correlation id ${id}`)
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
      entry.cancelled = true
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
      if (!entry.cancelled) this.answer(peer, id, target, served, exit)
    })
  }

  onTell(peer: Peer.Peer, callerNodeId: string | undefined, envelope: Envelope.Tell): void {
    const [, , target, body, headers] = envelope
    const served = this.resolve(target)
    if (typeof served === "string") {
      this.metrics.tellsDropped++
      return
    }
    const decoded = served.method.payload.decode(body)
    if (decoded._tag === "Failure") {
      this.metrics.tellsDropped++
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
    entry.fiber?.interruptUnsafe()
  }

  /** Interrupts every handler, for shutdown. */
  interruptAll(): void {
    for (const entry of this.inflight.values()) {
      entry.cancelled = true
      clearTimeout(entry.timer)
      entry.fiber?.interruptUnsafe()
    }
    this.inflight.clear()
  }

  private answer(
    peer: Peer.Peer,
    id: number,
    path: string,
    served: ServedMethod,
    exit: Exit.Exit<unknown, unknown>,
  ): void {
    if (exit._tag === "Success" && served.method._tag === "ServerStream") {
      this.offer(peer, [Envelope.PROTOCOL_VERSION, Envelope.Kind.End, id])
      return
    }
    if (exit._tag === "Success") {
      const encoded = served.method._tag === "Unary" ? served.method.success.encode(exit.value) : undefined
      if (encoded === undefined || encoded._tag === "Failure") {
        return this.sendFailure(
          peer,
          id,
          "internal",
          `${path}: the handler's result does not match the contract${encoded === undefined ? "" : `: ${encoded.failure.message}`}`,
          null,
        )
      }
      this.offer(peer, [Envelope.PROTOCOL_VERSION, Envelope.Kind.Reply, id, encoded.success])
      return
    }
    const failure = exit.cause.reasons.find(Cause.isFailReason)
    if (failure !== undefined) {
      const error = failure.error
      const encoded = served.method.error.encode(error)
      if (encoded._tag === "Success") {
        return this.sendFailure(peer, id, "application", messageOf(error), encoded.success)
      }
      if (RpcError.is(error)) return this.sendFailure(peer, id, error.code, error.message, null)
      return this.sendFailure(peer, id, "internal", `${path}: undeclared error: ${messageOf(error)}`, null)
    }
    if (Cause.hasInterruptsOnly(exit.cause)) {
      return this.sendFailure(peer, id, "cancelled", `${path}: the handler was interrupted`, null)
    }
    const defect = exit.cause.reasons.find(Cause.isDieReason)
    this.sendFailure(peer, id, "internal", `${path}: the handler failed: ${messageOf(defect?.defect)}`, null)
  }

  private refuse(peer: Peer.Peer, id: number, code: RpcError["code"], message: string): void {
    this.metrics.requestsRejected++
    this.sendFailure(peer, id, code, message, null)
  }

  private sendFailure(peer: Peer.Peer, id: number, code: string, message: string, error: unknown): void {
    this.offer(peer, [Envelope.PROTOCOL_VERSION, Envelope.Kind.Failure, id, code, message, error])
  }

  private offer(peer: Peer.Peer, envelope: Envelope.Envelope): void {
    // A refused reply (peer gone, queue full) is already counted by the transport; the caller times out.
    this.transport.offer(peer.id, Envelope.encode(envelope))
  }
}

const messageOf = (error: unknown): string => {
  // Tagged errors without a message field have an empty message: their tag says more.
  if (error instanceof Error && error.message !== "") return error.message
  if (typeof error === "object" && error !== null && typeof (error as { _tag?: unknown })._tag === "string") {
    return (error as { _tag: string })._tag
  }
  return String(error)
}
