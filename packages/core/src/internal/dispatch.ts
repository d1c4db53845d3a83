/**
 * The serving side of a node: routes REQUEST and TELL envelopes to the handlers registered for their target,
 * enforces the deadline carried on the wire (expired work is not started, running work is interrupted at the
 * deadline), interrupts a handler when its caller sends CANCEL, and answers every request with exactly one
 * REPLY or FAILURE, including for unknown targets and invalid payloads, so callers never wait for a timeout.
 */

import type { Peer, TransportShape } from "@zactor/transport"
import { Cause, type Exit, type Fiber } from "effect"
import type { CallContext } from "../CallContext.ts"
import type * as Contract from "../Contract.ts"
import * as Envelope from "../Envelope.ts"
import { RpcError } from "../RpcError.ts"
import type { NodeMetrics } from "./nodeMetrics.ts"

/** A served method with its handler, services already provided. */
export interface ServedMethod {
  readonly path: string
  readonly method: Contract.Method
  /** Starts a unary handler (or a tell) in its own fiber, with the services it was served with. */
  readonly fork: (payload: unknown, context: CallContext) => Fiber.Fiber<unknown, unknown>
}

/** A request being served. */
interface Inflight {
  readonly fiber: Fiber.Fiber<unknown, unknown>
  readonly timer: ReturnType<typeof setTimeout>
  cancelled: boolean
}

const EMPTY_HEADERS: Envelope.Headers = Object.freeze({})

/** Routes inbound calls to handlers and sends their outcomes back. */
export class Dispatcher {
  private readonly addresses = new Map<string, Map<string, ServedMethod>>()
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
    const methods = this.addresses.get(address)
    if (methods === undefined) return `no service or actor "${address}" on this node`
    const served = methods.get(target.slice(slash + 1))
    return served ?? `"${address}" has no method "${target.slice(slash + 1)}"`
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
    const fiber = served.fork(decoded.success, context)
    const timer = setTimeout(() => {
      // The caller has given up by now; stop the work and answer for callers that still listen.
      const entry = this.inflight.get(key)
      if (entry === undefined) return
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
    }, timeoutMs)
    const entry: Inflight = { fiber, timer, cancelled: false }
    this.inflight.set(key, entry)
    fiber.addObserver((exit) => {
      clearTimeout(timer)
      this.inflight.delete(key)
      if (!entry.cancelled) this.answer(peer, id, served, exit)
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
    served.fork(decoded.success, context)
  }

  onCancel(peer: Peer.Peer, id: number): void {
    const entry = this.inflight.get(`${peer.id}#${id}`)
    if (entry === undefined) return
    this.metrics.requestsCancelled++
    entry.cancelled = true
    entry.fiber.interruptUnsafe()
  }

  /** Interrupts every handler, for shutdown. */
  interruptAll(): void {
    for (const entry of this.inflight.values()) {
      entry.cancelled = true
      clearTimeout(entry.timer)
      entry.fiber.interruptUnsafe()
    }
    this.inflight.clear()
  }

  private answer(peer: Peer.Peer, id: number, served: ServedMethod, exit: Exit.Exit<unknown, unknown>): void {
    if (exit._tag === "Success") {
      const encoded = served.method._tag === "Unary" ? served.method.success.encode(exit.value) : undefined
      if (encoded === undefined || encoded._tag === "Failure") {
        return this.sendFailure(
          peer,
          id,
          "internal",
          `${served.path}: the handler's result does not match the contract${encoded === undefined ? "" : `: ${encoded.failure.message}`}`,
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
      return this.sendFailure(peer, id, "internal", `${served.path}: undeclared error: ${messageOf(error)}`, null)
    }
    if (Cause.hasInterruptsOnly(exit.cause)) {
      return this.sendFailure(peer, id, "cancelled", `${served.path}: the handler was interrupted`, null)
    }
    const defect = exit.cause.reasons.find(Cause.isDieReason)
    this.sendFailure(peer, id, "internal", `${served.path}: the handler failed: ${messageOf(defect?.defect)}`, null)
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
  if (error instanceof Error) return error.message
  if (typeof error === "object" && error !== null && typeof (error as { _tag?: unknown })._tag === "string") {
    return (error as { _tag: string })._tag
  }
  return String(error)
}
