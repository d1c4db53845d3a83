/**
 * The calling side of a node: one `Remote` per outbound connection, with its pending calls keyed by
 * correlation id. A call is an `Effect.callback` that writes one REQUEST and is resumed by the REPLY or
 * FAILURE with its id, by its deadline, by the connection dying, or cancelled by interruption (which sends
 * CANCEL so the callee stops working on it).
 *
 * Hot path: one `Effect.callback` per call that routes, validates, encodes and sends synchronously when the
 * route is known (the usual case), one pending-call object that is also its own deadline entry (one timer per
 * distinct timeout and remote, see deadlines.ts), and one slot in the remote's pending-call table (pendingCalls.ts);
 * no fiber.
 */

import type { Peer, TransportError, TransportShape } from "@zactor/transport"
import { Cause, Effect, Queue, Stream } from "effect"
import * as CircuitBreaker from "../CircuitBreaker.ts"
import type * as Contract from "../Contract.ts"
import * as Envelope from "../Envelope.ts"
import type { Load, PeerState } from "../Liveness.ts"
import { isCode, RemoteDefect, RpcError } from "../RpcError.ts"
import * as CodecGuard from "./codecGuard.ts"
import { type DeadlineEntry, DeadlineQueue } from "./deadlines.ts"
import { Detector } from "./detector.ts"
import * as Histogram from "./histogram.ts"
import { countBy, type RuntimeMetrics as NodeMetrics } from "./nodeMetrics.ts"
import { PendingCalls } from "./pendingCalls.ts"
import { type TargetGuard, unguarded } from "./targetGuard.ts"
import { withTrace } from "./trace.ts"

export { timerDelay } from "./deadlines.ts"

type Resume = (effect: Effect.Effect<unknown, unknown>) => void

const ignoreOutcome: Resume = () => {}

/** A call waiting for its outcome; its own entry in the remote's deadline queue. */
class PendingCall implements DeadlineEntry {
  deadlineAt = 0
  deadlinePrev: DeadlineEntry | undefined = undefined
  deadlineNext: DeadlineEntry | undefined = undefined
  deadlineList: DeadlineEntry["deadlineList"] = undefined
  /** At-least-once attempts: the ACK deadline, while it runs. */
  ack: AckWatch | undefined = undefined
  /** For streaming calls: receives ITEM/END; unary calls leave them undefined. */
  onItem: ((body: unknown) => void) | undefined = undefined
  onEnd: (() => void) | undefined = undefined
  readonly id: number
  readonly path: string
  readonly method: Contract.Method
  /** Replaced by a no-op once a one-way call is settled by its ACK: the answer that may follow is dropped. */
  resume: Resume
  /** An at-least-once tell: the ACK (receipt) completes it, not the answer. */
  oneWay = false
  readonly env: CallEnvironment
  readonly timeoutMs: number
  /** `performance.now()` when sent, for the call latency histogram. */
  readonly started: number

  constructor(
    env: CallEnvironment,
    id: number,
    path: string,
    method: Contract.Method,
    timeoutMs: number,
    resume: Resume,
  ) {
    this.env = env
    this.id = id
    this.path = path
    this.method = method
    this.timeoutMs = timeoutMs
    this.resume = resume
    this.started = performance.now()
  }
}

/** The ACK deadline of an at-least-once attempt: no ACK in time fails the attempt as retryable. */
class AckWatch implements DeadlineEntry {
  deadlineAt = 0
  deadlinePrev: DeadlineEntry | undefined = undefined
  deadlineNext: DeadlineEntry | undefined = undefined
  deadlineList: DeadlineEntry["deadlineList"] = undefined
  readonly call: PendingCall
  readonly timeoutMs: number

  constructor(call: PendingCall, timeoutMs: number) {
    this.call = call
    this.timeoutMs = timeoutMs
  }
}

/** One outbound connection to a node. */
export class Remote {
  readonly peer: Peer.Peer
  readonly endpoint: string
  info: Envelope.NodeInfo | undefined = undefined
  /** Whether the transport connected this remote at least once (to tell reconnects apart). */
  connectedBefore = false
  /** Set when the peer refused our protocol version; every call then fails with it. */
  incompatible: RpcError | undefined = undefined
  private readonly pending = new PendingCalls<PendingCall>()
  private readonly deadlines = new DeadlineQueue<PendingCall>((call) => this.expire(call))
  private readonly ackDeadlines = new DeadlineQueue<AckWatch>((watch) => this.ackMissed(watch))
  private readonly welcomeWaiters = new Set<(outcome: RpcError | undefined) => void>()

  constructor(peer: Peer.Peer, endpoint: string) {
    this.peer = peer
    this.endpoint = endpoint
  }

  /**
   * Set while the connection is down after having been up: calls fail fast with `unavailable` (the caller
   * may retry, or route to another instance) instead of waiting in a queue for a peer that may not return.
   * Before the first connection calls are accepted: they leave as soon as it is up.
   */
  down = false

  /** Set when discovery says the node is leaving: no new calls are routed here; calls in flight finish. */
  retired = false

  /** Whether the peer answers (internal/liveness.ts): run by the node's liveness monitor. */
  readonly liveness = new Detector(performance.now())

  /** Circuit breaker and concurrency limit of this target; set by the node. */
  guard: TargetGuard = unguarded()

  /** Liveness state, for routing. */
  get state(): PeerState {
    return this.liveness.state
  }

  /** The load the peer last reported, for routing. */
  get load(): Load | undefined {
    return this.liveness.load
  }

  /** Whether a call would be let through now (breaker, concurrency limit), for routing. */
  get admissible(): boolean {
    return this.guard.admissible(this.pending.size)
  }

  /** Why a new call cannot be sent now, if it cannot. Takes a trial slot of a half-open circuit. */
  refusal(path: string): RpcError | undefined {
    if (this.incompatible !== undefined) return this.incompatible
    if (this.down) {
      return new RpcError({ code: "unavailable", message: `${path}: ${this.endpoint} is not connected`, method: path })
    }
    if (this.liveness.state === "dead") {
      return new RpcError({
        code: "unavailable",
        reason: "peer-dead",
        message: `${path}: ${this.endpoint} is declared dead (no sign of life)`,
        method: path,
      })
    }
    return this.guard.refusal(this.pending.size, this.info?.id ?? this.endpoint, path)
  }

  /** Calls waiting for an outcome. */
  get outstanding(): number {
    return this.pending.size
  }

  /** Allocates a correlation id (never 0: id 0 names the connection itself in FAILURE). */
  allocateId(): number {
    return this.pending.allocateId()
  }

  /** Registers a sent call with its deadline, and for at-least-once attempts its ACK deadline. */
  add(call: PendingCall, ackTimeoutMs?: number): void {
    this.pending.add(call)
    this.deadlines.add(call, call.timeoutMs, call.started)
    // An ACK deadline at or past the call's own would never fire first.
    if (ackTimeoutMs !== undefined && ackTimeoutMs < call.timeoutMs) {
      call.ack = new AckWatch(call, ackTimeoutMs)
      this.ackDeadlines.add(call.ack, ackTimeoutMs)
    }
  }

  /** Removes and returns a pending call (undefined if it already completed). */
  take(id: number): PendingCall | undefined {
    const call = this.pending.take(id)
    if (call !== undefined) this.settle(call)
    return call
  }

  peek(id: number): PendingCall | undefined {
    return this.pending.get(id)
  }

  /** Notes the ACK of an at-least-once attempt: its ACK deadline stops; the call, or undefined if none waited. */
  acknowledged(id: number): PendingCall | undefined {
    const watch = this.pending.get(id)?.ack
    if (watch === undefined) return undefined
    this.ackDeadlines.remove(watch)
    watch.call.ack = undefined
    return watch.call
  }

  /** Fails every pending call, e.g. when the connection died. */
  failAll(error: RpcError): void {
    const calls = this.pending.takeAll()
    for (const call of calls) {
      this.settle(call)
      call.resume(Effect.fail(error))
    }
  }

  /** Resolves once WELCOME arrives (undefined) or the peer refuses us (the error). */
  awaitWelcome(): Promise<RpcError | undefined> {
    if (this.info !== undefined) return Promise.resolve(undefined)
    if (this.incompatible !== undefined) return Promise.resolve(this.incompatible)
    return new Promise((resolve) => this.welcomeWaiters.add(resolve))
  }

  welcomed(info: Envelope.NodeInfo): void {
    this.info = info
    for (const wake of this.welcomeWaiters) wake(undefined)
    this.welcomeWaiters.clear()
  }

  refused(error: RpcError): void {
    this.incompatible = error
    for (const wake of this.welcomeWaiters) wake(error)
    this.welcomeWaiters.clear()
    this.failAll(error)
  }

  private settle(call: PendingCall): void {
    this.deadlines.remove(call)
    if (call.ack !== undefined) {
      this.ackDeadlines.remove(call.ack)
      call.ack = undefined
    }
  }

  /** The call's deadline passed: it fails, and the callee is told to stop. */
  private expire(call: PendingCall): void {
    if (this.pending.get(call.id) !== call) return
    this.pending.take(call.id)
    this.settle(call)
    const { env, path } = call
    env.metrics.callsTimedOut++
    this.guard.record(CircuitBreaker.Outcome.Failure)
    sendCancel(env.transport, this.peer.id, call.id)
    const what = call.onEnd === undefined ? "no reply" : "stream not done"
    call.resume(
      Effect.fail(
        new RpcError({
          code: "deadline_exceeded",
          message: `${path}: ${what} within ${call.timeoutMs} ms`,
          method: path,
        }),
      ),
    )
  }

  /**
   * At-least-once: no ACK in time means the request (or the connection) was probably lost; the attempt fails
   * as retryable and the caller decides whether to send it again.
   */
  private ackMissed(watch: AckWatch): void {
    const call = watch.call
    call.ack = undefined
    if (this.take(call.id) === undefined) return
    this.guard.record(CircuitBreaker.Outcome.Failure)
    call.resume(
      Effect.fail(
        new RpcError({
          code: "unavailable",
          message: `${call.path}: no ACK within ${watch.timeoutMs} ms`,
          method: call.path,
          lostAck: true,
        }),
      ),
    )
  }
}

/** Maps a transport refusal of a write to the framework's codes. */
export const fromTransportError = (error: TransportError, path: string): RpcError =>
  new RpcError({
    code:
      error.reason === "Overloaded"
        ? "overloaded"
        : error.reason === "MessageTooLarge"
          ? "invalid_argument"
          : "unavailable",
    message: error.message,
    method: path,
    cause: error,
  })

/** The error of a payload its contract's codec refused, naming the method and the field. */
export const invalidPayload = (path: string, issue: Contract.CodecIssue): RpcError =>
  new RpcError({
    code: "invalid_argument",
    message: `${path}: payload ${issue.message}`,
    method: path,
    path: issue.path,
  })

/** Everything a call needs from the node. */
export interface CallEnvironment {
  readonly transport: TransportShape
  readonly metrics: NodeMetrics
  readonly defaultTimeoutMs: number
}

/**
 * Where a call goes: `now()` picks the remote without waiting when it can (a connected endpoint, a live
 * instance of the service), which is the hot path; otherwise `effect` routes with waiting (connecting, or
 * waiting for discovery) or fails. Each run of a call routes afresh.
 */
export interface Route {
  readonly now: () => Remote | undefined
  readonly effect: Effect.Effect<Remote, RpcError>
}

/** Decodes an application error or a framework failure into the caller's error channel. */
export const failureToError = (
  method: Contract.Method,
  path: string,
  code: string,
  message: string,
  errorBody: unknown,
): unknown => {
  if (code === "application") {
    const decoded = CodecGuard.decode(method.error, errorBody)
    if (decoded._tag === "Success") return decoded.success
    const remoteTag =
      typeof errorBody === "object" && errorBody !== null && typeof (errorBody as { _tag?: unknown })._tag === "string"
        ? (errorBody as { _tag: string })._tag
        : undefined
    return new RemoteDefect({ method: path, remoteTag, message })
  }
  // A code this version does not know (from a newer peer) is reported as internal, message kept.
  return new RpcError({ code: isCode(code) ? code : "internal", message, method: path })
}

/**
 * Sends one unary call and waits for its outcome. `ackTimeoutMs` (at-least-once attempts) asks the callee for
 * an ACK and fails the attempt as retryable when none arrives in time; with `oneWay` (at-least-once tells) the
 * ACK completes the call.
 */
export const call = (
  env: CallEnvironment,
  route: Route,
  path: string,
  method: Contract.Method,
  payload: unknown,
  timeoutMs: number,
  headers: Envelope.Headers | null,
  ackTimeoutMs?: number,
  oneWay = false,
): Effect.Effect<unknown, unknown> =>
  Effect.callback<unknown, unknown>((resume) => {
    const remote = route.now()
    if (remote !== undefined)
      return send(env, remote, path, method, payload, timeoutMs, headers, ackTimeoutMs, resume, oneWay)
    // No route without waiting: connect or wait for one, then send from there.
    resume(
      Effect.flatMap(route.effect, (routed) =>
        Effect.callback<unknown, unknown>((resumeRouted) =>
          send(env, routed, path, method, payload, timeoutMs, headers, ackTimeoutMs, resumeRouted, oneWay),
        ),
      ),
    )
  })

/** Validates, encodes and sends one unary call on `remote`; returns its interruption handler. */
const send = (
  env: CallEnvironment,
  remote: Remote,
  path: string,
  method: Contract.Method,
  payload: unknown,
  timeoutMs: number,
  headers: Envelope.Headers | null,
  ackTimeoutMs: number | undefined,
  resume: Resume,
  oneWay: boolean,
): Effect.Effect<void> | undefined => {
  const refusal = remote.refusal(path)
  if (refusal !== undefined) return failNow(resume, refusal)
  const encoded = method.payload.encode(payload)
  if (encoded._tag === "Failure") return failNow(resume, invalidPayload(path, encoded.failure))
  const id = remote.allocateId()
  // The trace is read here, when the call runs: a handler's calls continue the trace of the call it serves.
  const bytes = Envelope.encodeRequest(id, path, encoded.success, timeoutMs, withTrace(headers))
  const refused = env.transport.offer(remote.peer.id, bytes)
  if (refused !== undefined) return failNow(resume, fromTransportError(refused, path))
  env.metrics.sent++
  env.metrics.callsStarted++
  const pending = new PendingCall(env, id, path, method, timeoutMs, resume)
  pending.oneWay = oneWay
  remote.add(pending, ackTimeoutMs)
  return Effect.sync(() => {
    // Interrupted by the caller: tell the callee to stop.
    if (remote.take(id) !== undefined) {
      env.metrics.callsCancelled++
      sendCancel(env.transport, remote.peer.id, id)
    }
  })
}

const failNow = (resume: Resume, error: unknown): undefined => {
  resume(Effect.fail(error))
  return undefined
}

/** Default number of stream elements a caller lets the callee send ahead of consumption. */
export const DEFAULT_STREAM_CREDIT = 64

/**
 * Sends one server-streaming call on `remote`. The callee may send `credit` elements ahead; the caller grants
 * more (CREDIT) as its consumer takes them, so a slow consumer bounds the memory on both sides. Ending the
 * consumption early (or interrupting it) sends CANCEL.
 */
export const callStream = (
  env: CallEnvironment,
  remote: Remote,
  path: string,
  method: Contract.ServerStream<unknown, unknown, unknown>,
  payload: unknown,
  timeoutMs: number,
  headers: Envelope.Headers | null,
  credit: number,
): Stream.Stream<unknown, unknown> =>
  Stream.unwrap(
    Effect.gen(function* () {
      const refusal = remote.refusal(path)
      if (refusal !== undefined) return yield* Effect.fail(refusal)
      const encoded = method.payload.encode(payload)
      if (encoded._tag === "Failure") return yield* Effect.fail(invalidPayload(path, encoded.failure))
      // The callee never sends more than the credit granted, so this bound is never hit by a correct peer.
      const queue = yield* Queue.bounded<unknown, unknown>(credit + 1)
      const id = remote.allocateId()
      const bytes = Envelope.encode([
        Envelope.PROTOCOL_VERSION,
        Envelope.Kind.Request,
        id,
        path,
        encoded.success,
        timeoutMs,
        { ...withTrace(headers), cr: credit },
      ])
      const refused = env.transport.offer(remote.peer.id, bytes)
      if (refused !== undefined) return yield* Effect.fail(fromTransportError(refused, path))
      env.metrics.sent++
      env.metrics.callsStarted++
      const fail = (error: unknown) => Queue.failCauseUnsafe(queue, Cause.fail(error))
      // FAILURE, the deadline, a lost connection, or an incompatible peer: the stream fails with that error.
      const pending = new PendingCall(env, id, path, method, timeoutMs, (effect) => {
        Effect.runFork(Effect.catch(effect, (error) => Effect.sync(() => fail(error))))
      })
      pending.onItem = (body) => {
        const element = CodecGuard.decode(method.element, body)
        if (element._tag === "Failure") {
          if (remote.take(id) !== undefined) sendCancel(env.transport, remote.peer.id, id)
          fail(
            new RpcError({
              code: "internal",
              message: `${path}: element does not match the contract: ${element.failure.message}`,
              method: path,
            }),
          )
        } else if (!Queue.offerUnsafe(queue, element.success)) {
          // More than the granted credit: a misbehaving callee. Stop it rather than buffer without bound.
          if (remote.take(id) !== undefined) sendCancel(env.transport, remote.peer.id, id)
          fail(
            new RpcError({
              code: "internal",
              message: `${path}: the callee exceeded its stream credit`,
              method: path,
            }),
          )
        }
      }
      pending.onEnd = () => {
        env.metrics.callsSucceeded++
        Queue.endUnsafe(queue)
      }
      remote.add(pending)
      yield* Effect.addFinalizer(() =>
        Effect.sync(() => {
          // Consumer stopped before the end (or was interrupted): tell the callee to stop producing.
          if (remote.take(id) !== undefined) {
            env.metrics.callsCancelled++
            sendCancel(env.transport, remote.peer.id, id)
          }
        }),
      )
      const threshold = Math.max(1, Math.floor(credit / 2))
      let consumed = 0
      return Stream.fromQueue(queue).pipe(
        Stream.tap(() =>
          Effect.sync(() => {
            consumed++
            if (consumed >= threshold) {
              env.transport.offer(
                remote.peer.id,
                Envelope.encode([Envelope.PROTOCOL_VERSION, Envelope.Kind.Credit, id, consumed]),
              )
              consumed = 0
            }
          }),
        ),
      )
    }),
  )

/** Notes the ACK of an at-least-once attempt. */
export const onAck = (remote: Remote, id: number, metrics: NodeMetrics): void => {
  const call = remote.acknowledged(id)
  if (call === undefined) {
    metrics.unknownCorrelation++
    return
  }
  metrics.acked++
  if (call.oneWay) {
    // Received: a one-way call is done. It stays pending, so that its answer is recognised and dropped.
    const resume = call.resume
    call.resume = ignoreOutcome
    resume(Effect.void)
  }
}

/** Delivers one stream element (ITEM) to its pending call. */
export const onItem = (remote: Remote, id: number, body: unknown, metrics: NodeMetrics): void => {
  const call = remote.peek(id)
  if (call?.onItem === undefined) metrics.unknownCorrelation++
  else call.onItem(body)
}

/** Completes a stream (END). */
export const onEnd = (remote: Remote, id: number, metrics: NodeMetrics): void => {
  const call = remote.take(id)
  if (call?.onEnd === undefined) metrics.unknownCorrelation++
  else {
    remote.guard.record(CircuitBreaker.Outcome.Success)
    call.onEnd()
  }
}

/** Best effort: a lost CANCEL only means the callee finishes work nobody waits for. */
export const sendCancel = (transport: TransportShape, peer: Peer.PeerId, id: number): void => {
  transport.offer(peer, Envelope.encode([Envelope.PROTOCOL_VERSION, Envelope.Kind.Cancel, id]))
}

/** Completes a pending call from a REPLY; `now` is when its batch arrived (`performance.now()`). */
export const onReply = (remote: Remote, id: number, body: unknown, metrics: NodeMetrics, now: number): void => {
  const call = remote.take(id)
  if (call === undefined) {
    metrics.unknownCorrelation++
    return
  }
  if (call.onEnd !== undefined) {
    // A REPLY to a streaming call means an empty stream from a callee that answers it as unary: end it.
    call.onEnd()
    return
  }
  Histogram.observe(metrics.callLatency, now - call.started)
  remote.guard.record(CircuitBreaker.Outcome.Success)
  const decoded = call.method._tag === "Unary" ? CodecGuard.decode(call.method.success, body) : undefined
  if (decoded === undefined || decoded._tag === "Success") {
    metrics.callsSucceeded++
    call.resume(decoded === undefined ? Effect.void : Effect.succeed(decoded.success))
  } else {
    metrics.callsFailed++
    call.resume(
      Effect.fail(
        new RpcError({
          code: "internal",
          message: `${call.path}: reply does not match the contract: ${decoded.failure.message}`,
          method: call.path,
          path: decoded.failure.path,
        }),
      ),
    )
  }
}

/** Completes a pending call from a FAILURE. */
export const onFailure = (
  remote: Remote,
  id: number,
  code: string,
  message: string,
  errorBody: unknown,
  metrics: NodeMetrics,
): void => {
  const call = remote.take(id)
  if (call === undefined) {
    metrics.unknownCorrelation++
    return
  }
  metrics.callsFailed++
  countBy(metrics.callErrors, code)
  remote.guard.record(CircuitBreaker.classifyAnswer(code))
  if (call.onEnd === undefined) Histogram.observe(metrics.callLatency, performance.now() - call.started)
  call.resume(Effect.fail(failureToError(call.method, call.path, code, message, errorBody)))
}
