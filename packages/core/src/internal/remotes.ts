/**
 * The calling side of a node: one `Remote` per outbound connection, with its pending calls keyed by
 * correlation id. A call is an `Effect.callback` that writes one REQUEST and is resumed by the REPLY or
 * FAILURE with its id, by its deadline, by the connection dying, or cancelled by interruption (which sends
 * CANCEL so the callee stops working on it).
 *
 * Hot path: one envelope encode, one transport offer, one timer and one map entry per call; no fiber.
 */

import type { Peer, TransportError, TransportShape } from "@zactor/transport"
import { Cause, Effect, Queue, Stream } from "effect"
import type * as Contract from "../Contract.ts"
import * as Envelope from "../Envelope.ts"
import { isCode, RemoteDefect, RpcError } from "../RpcError.ts"
import type { NodeMetrics } from "./nodeMetrics.ts"

/** A call waiting for its outcome. */
interface PendingCall {
  readonly path: string
  readonly method: Contract.Method
  readonly resume: (effect: Effect.Effect<unknown, unknown>) => void
  readonly timer: ReturnType<typeof setTimeout>
  /** For streaming calls: receives ITEM/END; unary calls leave it undefined. */
  readonly onItem: ((body: unknown) => void) | undefined
  readonly onEnd: (() => void) | undefined
  /** At-least-once attempts: called when the callee's ACK arrives. */
  readonly onAck?: (() => void) | undefined
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
  private readonly pending = new Map<number, PendingCall>()
  private nextId = 1
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

  /** Why a new call cannot be sent now, if it cannot. */
  refusal(path: string): RpcError | undefined {
    if (this.incompatible !== undefined) return this.incompatible
    if (this.down) {
      return new RpcError({ code: "unavailable", message: `${path}: ${this.endpoint} is not connected`, method: path })
    }
    return undefined
  }

  /** Calls waiting for an outcome. */
  get outstanding(): number {
    return this.pending.size
  }

  /** Allocates a correlation id. Ids start at 1: id 0 names the connection itself in FAILURE. */
  allocateId(): number {
    const id = this.nextId
    this.nextId = id >= 0x7fff_ffff ? 1 : id + 1
    return id
  }

  add(id: number, call: PendingCall): void {
    this.pending.set(id, call)
  }

  /** Removes and returns a pending call (undefined if it already completed). */
  take(id: number): PendingCall | undefined {
    const call = this.pending.get(id)
    if (call !== undefined) {
      this.pending.delete(id)
      clearTimeout(call.timer)
    }
    return call
  }

  peek(id: number): PendingCall | undefined {
    return this.pending.get(id)
  }

  /** Fails every pending call, e.g. when the connection died. */
  failAll(error: RpcError): void {
    const calls = [...this.pending.values()]
    this.pending.clear()
    for (const call of calls) {
      clearTimeout(call.timer)
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
}

/** Node timers overflow past 2^31-1 ms (and then fire at once): longer deadlines wait the maximum. */
export const timerDelay = (ms: number): number => Math.min(ms, 0x7fff_ffff)

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

/** Everything a call needs from the node. */
export interface CallEnvironment {
  readonly transport: TransportShape
  readonly metrics: NodeMetrics
  readonly defaultTimeoutMs: number
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
    const decoded = method.error.decode(errorBody)
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
 * Sends one unary call on `remote` and waits for its outcome.
 */
export const call = (
  env: CallEnvironment,
  remote: Remote,
  path: string,
  method: Contract.Method,
  payload: unknown,
  timeoutMs: number,
  headers: Envelope.Headers | null,
  ackTimeoutMs?: number,
): Effect.Effect<unknown, unknown> =>
  Effect.callback<unknown, unknown>((resume) => {
    const refusal = remote.refusal(path)
    if (refusal !== undefined) return resume(Effect.fail(refusal))
    const encoded = method.payload.encode(payload)
    if (encoded._tag === "Failure") {
      return resume(
        Effect.fail(
          new RpcError({
            code: "invalid_argument",
            message: `${path}: payload ${encoded.failure.message}`,
            method: path,
            path: encoded.failure.path,
          }),
        ),
      )
    }
    const id = remote.allocateId()
    const bytes = Envelope.encode([
      Envelope.PROTOCOL_VERSION,
      Envelope.Kind.Request,
      id,
      path,
      encoded.success,
      timeoutMs,
      headers,
    ])
    const refused = env.transport.offer(remote.peer.id, bytes)
    if (refused !== undefined) return resume(Effect.fail(fromTransportError(refused, path)))
    env.metrics.callsStarted++
    const timer = setTimeout(() => {
      if (remote.take(id) === undefined) return
      env.metrics.callsTimedOut++
      sendCancel(env.transport, remote.peer.id, id)
      resume(
        Effect.fail(
          new RpcError({
            code: "deadline_exceeded",
            message: `${path}: no reply within ${timeoutMs} ms`,
            method: path,
          }),
        ),
      )
    }, timerDelay(timeoutMs))
    // At-least-once: no ACK in time means the request (or the connection) was probably lost; the attempt
    // fails as retryable and the caller decides whether to send it again.
    const ackTimer =
      ackTimeoutMs === undefined || ackTimeoutMs >= timeoutMs
        ? undefined
        : setTimeout(() => {
            if (remote.take(id) === undefined) return
            resume(
              Effect.fail(
                new RpcError({
                  code: "unavailable",
                  message: `${path}: no ACK within ${ackTimeoutMs} ms`,
                  method: path,
                  lostAck: true,
                }),
              ),
            )
          }, ackTimeoutMs)
    const onAck =
      ackTimer === undefined
        ? undefined
        : () => {
            env.metrics.acked++
            clearTimeout(ackTimer)
          }
    const finish =
      ackTimer === undefined
        ? resume
        : (effect: Effect.Effect<unknown, unknown>) => {
            clearTimeout(ackTimer)
            resume(effect)
          }
    remote.add(id, { path, method, resume: finish, timer, onItem: undefined, onEnd: undefined, onAck })
    return Effect.sync(() => {
      // Interrupted by the caller: tell the callee to stop.
      if (remote.take(id) !== undefined) {
        env.metrics.callsCancelled++
        sendCancel(env.transport, remote.peer.id, id)
      }
    })
  })

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
      if (encoded._tag === "Failure") {
        return yield* Effect.fail(
          new RpcError({
            code: "invalid_argument",
            message: `${path}: payload ${encoded.failure.message}`,
            method: path,
            path: encoded.failure.path,
          }),
        )
      }
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
        { ...headers, cr: credit },
      ])
      const refused = env.transport.offer(remote.peer.id, bytes)
      if (refused !== undefined) return yield* Effect.fail(fromTransportError(refused, path))
      env.metrics.callsStarted++
      const fail = (error: unknown) => Queue.failCauseUnsafe(queue, Cause.fail(error))
      const timer = setTimeout(() => {
        if (remote.take(id) === undefined) return
        env.metrics.callsTimedOut++
        sendCancel(env.transport, remote.peer.id, id)
        fail(
          new RpcError({
            code: "deadline_exceeded",
            message: `${path}: stream not done within ${timeoutMs} ms`,
            method: path,
          }),
        )
      }, timerDelay(timeoutMs))
      remote.add(id, {
        path,
        method,
        timer,
        resume: (effect) => {
          // FAILURE, a lost connection, or an incompatible peer: the stream fails with that error.
          Effect.runFork(Effect.catch(effect, (error) => Effect.sync(() => fail(error))))
        },
        onItem: (body) => {
          const element = method.element.decode(body)
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
        },
        onEnd: () => {
          env.metrics.callsSucceeded++
          Queue.endUnsafe(queue)
        },
      })
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
  const call = remote.peek(id)
  if (call?.onAck === undefined) metrics.unknownCorrelation++
  else call.onAck()
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
  else call.onEnd()
}

/** Best effort: a lost CANCEL only means the callee finishes work nobody waits for. */
export const sendCancel = (transport: TransportShape, peer: Peer.PeerId, id: number): void => {
  transport.offer(peer, Envelope.encode([Envelope.PROTOCOL_VERSION, Envelope.Kind.Cancel, id]))
}

/** Completes a pending call from a REPLY. */
export const onReply = (remote: Remote, id: number, body: unknown, metrics: NodeMetrics): void => {
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
  const decoded = call.method._tag === "Unary" ? call.method.success.decode(body) : undefined
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
  call.resume(Effect.fail(failureToError(call.method, call.path, code, message, errorBody)))
}
