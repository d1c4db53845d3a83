/**
 * Construction options of a transport, their production defaults, and the one function that applies them.
 * Defaults differ from libzmq's on purpose: libzmq has no heartbeats and a 30 s handshake timeout, so a frozen
 * or partitioned peer would go unnoticed for ~15 minutes (TCP retransmission).
 *
 * @since 0.1.0
 */
import { Duration, Effect } from "effect"
import { TransportError } from "./TransportError.ts"

/**
 * CURVE settings of this transport. With `curve` set, the ROUTER is a CURVE server that admits only the
 * listed client keys (fail closed), and outbound connections are CURVE clients that must name the server key.
 *
 * @since 0.1.0
 */
export interface CurveOptions {
  /** This transport's Z85 public key (40 characters). */
  readonly publicKey: string
  /** This transport's Z85 secret key (40 characters). */
  readonly secretKey: string
  /**
   * Z85 public keys of clients allowed to connect to this transport's bound endpoints. An empty list admits
   * nobody. Default: empty.
   */
  readonly allowedClientKeys?: ReadonlyArray<string> | undefined
  /**
   * Z85 public keys of the servers (and publishers) this transport may connect to. Unset: any key the caller
   * names, as read from configuration or a discovery record. Set, a connection to any other key is refused
   * (`Untrusted`, counted in `authFailures`): a forged registry record cannot draw calls to a key of its own.
   */
  readonly allowedServerKeys?: ReadonlyArray<string> | undefined
}

/**
 * Options of a transport. Every field is optional; `defaults` holds the values used when a field is absent.
 *
 * @since 0.1.0
 */
export interface TransportOptions {
  /**
   * ZMTP heartbeat (PING) interval of the ROUTER and DEALERs (PUB/SUB sockets run without, see docs/TRANSPORT.md).
   * Default 250 ms. Must match on both ends: lower means faster detection.
   */
  readonly heartbeatInterval?: Duration.Input | undefined
  /**
   * How long without any traffic after a PING before the connection is declared dead. Default 1 s, which
   * detects a frozen peer or a partition in 1.0-1.5 s. Raise it on lossy links.
   */
  readonly heartbeatTimeout?: Duration.Input | undefined
  /** Time-to-live announced to the peer in PINGs, so it times us out the same way. Default 1 s. */
  readonly heartbeatTtl?: Duration.Input | undefined
  /** First reconnect delay after a connection drops. Default 100 ms. */
  readonly reconnectInterval?: Duration.Input | undefined
  /** Cap of the exponentially growing reconnect delay. Default 5 s. */
  readonly reconnectIntervalMax?: Duration.Input | undefined
  /** TCP connect timeout. Default 2 s. */
  readonly connectTimeout?: Duration.Input | undefined
  /** Time allowed for the ZMTP (and CURVE) handshake; a silent connection is dropped after it. Default 2 s. */
  readonly handshakeInterval?: Duration.Input | undefined
  /** ZeroMQ send high-water mark, in ZeroMQ messages (each may carry a batch). Default 1000. */
  readonly sendHighWaterMark?: number | undefined
  /**
   * Received ZeroMQ messages (batches) that may wait beyond the consumer's queue (1,024 batches). For DEALER/ROUTER
   * input the transport applies it itself and drops beyond it (`InputRejected` `Overloaded`): libzmq's own limit
   * is off there, because libzmq 4.3.5 aborts the process when a connection whose input it stopped fails a
   * heartbeat. For SUB input it is libzmq's limit. Default 1000.
   */
  readonly receiveHighWaterMark?: number | undefined
  /**
   * Most bytes of received DEALER/ROUTER batches (all peers together) waiting for the consumer; beyond it they are
   * dropped like batches past `receiveHighWaterMark` (`InputRejected` `Overloaded`). The batch count alone would
   * let a stalled node hold 2,024 batches of up to `maxFrameBytes` each. Default 64 MiB.
   */
  readonly maxReceivedBytes?: number | undefined
  /** How long close() lets already-sent messages drain. Default 500 ms. */
  readonly linger?: Duration.Input | undefined
  /** Largest application payload accepted for send or on receive, in bytes. Default 4 MiB. */
  readonly maxMessageBytes?: number | undefined
  /** Largest ZeroMQ message (a whole batch, all frames) accepted from a peer, in bytes. Default 8 MiB. */
  readonly maxFrameBytes?: number | undefined
  /**
   * Most payloads coalesced into one ZeroMQ message. Default 64: large enough to divide the per-message cost
   * by up to 64, small enough that a burst leaves as several batches the peer can start on while the rest
   * is in flight (measured: 7.6x bare calls/s at 256 in flight with 64 or 128, 3.3x with 512).
   */
  readonly maxBatchMessages?: number | undefined
  /**
   * Payloads queued for a peer in one event-loop turn that leave at once, without waiting for the turn to end,
   * when the transport's input has run dry (its peers wait for answers; under load this stays off and writes are
   * gathered into full batches instead): a peer waiting for a burst of answers starts on the first ones while
   * the rest are produced. Default 0 (off): on the benchmark machine one more ZeroMQ message each way per burst
   * cost more than the overlap gained (32 calls in flight: typed RPC 9-10 instead of 12-14 CPU µs per call, and
   * as many calls/s or more; docs/TRANSPORT.md). Worth trying where a ZeroMQ message is cheaper.
   */
  readonly earlyBatchMessages?: number | undefined
  /** Byte budget of one batch; a single larger payload travels alone. Default 256 KiB. */
  readonly maxBatchBytes?: number | undefined
  /** Most payloads waiting in one peer's outbound queue before `send` fails with `Overloaded`. Default 10,000. */
  readonly maxQueuedMessages?: number | undefined
  /** Most bytes waiting in one peer's outbound queue before `send` fails with `Overloaded`. Default 64 MiB. */
  readonly maxQueuedBytes?: number | undefined
  /**
   * How long a queued batch may wait for a peer that is not connected or whose high-water mark is reached,
   * before it is dropped and reported as a `SendFailed` event. Default 5 s.
   */
  readonly sendTimeout?: Duration.Input | undefined
  /** CURVE encryption and key-based admission. Default: off (plain ZMTP). */
  readonly curve?: CurveOptions | undefined
}

/**
 * Options with every default applied and every duration in milliseconds.
 *
 * @since 0.1.0
 */
export interface ResolvedTransportOptions {
  readonly heartbeatIntervalMs: number
  readonly heartbeatTimeoutMs: number
  readonly heartbeatTtlMs: number
  readonly reconnectIntervalMs: number
  readonly reconnectIntervalMaxMs: number
  readonly connectTimeoutMs: number
  readonly handshakeIntervalMs: number
  readonly sendHighWaterMark: number
  readonly receiveHighWaterMark: number
  readonly maxReceivedBytes: number
  readonly lingerMs: number
  readonly maxMessageBytes: number
  readonly maxFrameBytes: number
  readonly maxBatchMessages: number
  readonly earlyBatchMessages: number
  readonly maxBatchBytes: number
  readonly maxQueuedMessages: number
  readonly maxQueuedBytes: number
  readonly sendTimeoutMs: number
  readonly curve: CurveOptions | undefined
}

/**
 * The production defaults.
 *
 * @since 0.1.0
 */
export const defaults: ResolvedTransportOptions = Object.freeze({
  heartbeatIntervalMs: 250,
  heartbeatTimeoutMs: 1000,
  heartbeatTtlMs: 1000,
  reconnectIntervalMs: 100,
  reconnectIntervalMaxMs: 5000,
  connectTimeoutMs: 2000,
  handshakeIntervalMs: 2000,
  sendHighWaterMark: 1000,
  receiveHighWaterMark: 1000,
  maxReceivedBytes: 64 * 1024 * 1024,
  lingerMs: 500,
  maxMessageBytes: 4 * 1024 * 1024,
  maxFrameBytes: 8 * 1024 * 1024,
  maxBatchMessages: 64,
  earlyBatchMessages: 0,
  maxBatchBytes: 256 * 1024,
  maxQueuedMessages: 10_000,
  maxQueuedBytes: 64 * 1024 * 1024,
  sendTimeoutMs: 5000,
  curve: undefined,
})

const z85Key = /^[0-9a-zA-Z.\-:+=^!/*?&<>()[\]{}@%$#]{40}$/

/**
 * Merges options over `defaults` and range-checks them: the only place defaults are applied.
 * Fails with `TransportError` reason `InvalidOptions` naming the offending field.
 *
 * @since 0.1.0
 */
export const resolve = (options: TransportOptions = {}): Effect.Effect<ResolvedTransportOptions, TransportError> =>
  Effect.suspend(() => {
    const problems: Array<string> = []
    const ms = (name: string, input: Duration.Input | undefined, fallback: number, min = 0): number => {
      if (input === undefined) return fallback
      const value = Duration.fromInput(input)
      if (value._tag === "None") {
        problems.push(`${name} is not a duration`)
        return fallback
      }
      const millis = Duration.toMillis(value.value)
      if (!Number.isFinite(millis) || millis < min) problems.push(`${name} must be a finite duration >= ${min} ms`)
      return millis
    }
    const int = (name: string, input: number | undefined, fallback: number, min: number): number => {
      if (input === undefined) return fallback
      if (!Number.isInteger(input) || input < min) problems.push(`${name} must be an integer >= ${min}`)
      return input
    }
    const resolved: ResolvedTransportOptions = {
      heartbeatIntervalMs: ms("heartbeatInterval", options.heartbeatInterval, defaults.heartbeatIntervalMs, 1),
      heartbeatTimeoutMs: ms("heartbeatTimeout", options.heartbeatTimeout, defaults.heartbeatTimeoutMs, 1),
      heartbeatTtlMs: ms("heartbeatTtl", options.heartbeatTtl, defaults.heartbeatTtlMs, 100),
      reconnectIntervalMs: ms("reconnectInterval", options.reconnectInterval, defaults.reconnectIntervalMs, 1),
      reconnectIntervalMaxMs: ms(
        "reconnectIntervalMax",
        options.reconnectIntervalMax,
        defaults.reconnectIntervalMaxMs,
        0,
      ),
      connectTimeoutMs: ms("connectTimeout", options.connectTimeout, defaults.connectTimeoutMs, 1),
      handshakeIntervalMs: ms("handshakeInterval", options.handshakeInterval, defaults.handshakeIntervalMs, 1),
      sendHighWaterMark: int("sendHighWaterMark", options.sendHighWaterMark, defaults.sendHighWaterMark, 1),
      receiveHighWaterMark: int("receiveHighWaterMark", options.receiveHighWaterMark, defaults.receiveHighWaterMark, 1),
      maxReceivedBytes: int("maxReceivedBytes", options.maxReceivedBytes, defaults.maxReceivedBytes, 1),
      lingerMs: ms("linger", options.linger, defaults.lingerMs, 0),
      maxMessageBytes: int("maxMessageBytes", options.maxMessageBytes, defaults.maxMessageBytes, 1),
      maxFrameBytes: int("maxFrameBytes", options.maxFrameBytes, defaults.maxFrameBytes, 64),
      maxBatchMessages: int("maxBatchMessages", options.maxBatchMessages, defaults.maxBatchMessages, 1),
      earlyBatchMessages: int("earlyBatchMessages", options.earlyBatchMessages, defaults.earlyBatchMessages, 0),
      maxBatchBytes: int("maxBatchBytes", options.maxBatchBytes, defaults.maxBatchBytes, 1),
      maxQueuedMessages: int("maxQueuedMessages", options.maxQueuedMessages, defaults.maxQueuedMessages, 1),
      maxQueuedBytes: int("maxQueuedBytes", options.maxQueuedBytes, defaults.maxQueuedBytes, 1),
      sendTimeoutMs: ms("sendTimeout", options.sendTimeout, defaults.sendTimeoutMs, 0),
      curve: options.curve,
    }
    if (resolved.heartbeatTimeoutMs < resolved.heartbeatIntervalMs) {
      problems.push("heartbeatTimeout must be >= heartbeatInterval")
    }
    if (resolved.maxFrameBytes < resolved.maxMessageBytes) {
      problems.push("maxFrameBytes must be >= maxMessageBytes (a batch of one must fit in a frame)")
    }
    const curve = resolved.curve
    if (curve !== undefined) {
      if (!z85Key.test(curve.publicKey)) problems.push("curve.publicKey must be a 40-character Z85 key")
      if (!z85Key.test(curve.secretKey)) problems.push("curve.secretKey must be a 40-character Z85 key")
      for (const key of curve.allowedClientKeys ?? []) {
        if (!z85Key.test(key)) problems.push(`curve.allowedClientKeys has an invalid key "${key}"`)
      }
      for (const key of curve.allowedServerKeys ?? []) {
        if (!z85Key.test(key)) problems.push(`curve.allowedServerKeys has an invalid key "${key}"`)
      }
    }
    return problems.length === 0
      ? Effect.succeed(resolved)
      : Effect.fail(new TransportError({ reason: "InvalidOptions", message: problems.join("; ") }))
  })

/**
 * The server key a CURVE transport is to connect with, checked: a missing or malformed key is `InvalidOptions`,
 * a key outside `allowedServerKeys` (when set) `Untrusted`. `what` names the operation in the message.
 *
 * @since 0.1.0
 */
export const checkServerKey = (
  curve: CurveOptions,
  key: string | undefined,
  endpoint: string,
  what: string,
): string | TransportError => {
  if (key === undefined || !z85Key.test(key)) {
    return new TransportError({
      reason: "InvalidOptions",
      message: `this transport uses CURVE: ${what} needs the server's Z85 public key (serverPublicKey)`,
      endpoint,
    })
  }
  if (curve.allowedServerKeys !== undefined && !curve.allowedServerKeys.includes(key)) {
    return new TransportError({
      reason: "Untrusted",
      message: `${endpoint}: server key ${key} is not among curve.allowedServerKeys`,
      endpoint,
    })
  }
  return key
}

/**
 * Whether a string is a syntactically valid Z85-encoded 32-byte key.
 *
 * @since 0.1.0
 */
export const isZ85Key = (key: string): boolean => z85Key.test(key)
