/**
 * Typed topics: PUB/SUB events that say what they lost. A topic is a name and a codec (an Effect Schema, a
 * protobuf-es message schema, or any `BodyCodec`); any node publishes typed events on it and any node subscribes,
 * receiving a stream of events interleaved with notices: gaps (how many events were missed and why), publisher
 * restarts, publisher liveness, and snapshot boundaries.
 *
 * Every event carries its publisher's id (the node id), epoch (a number that changes when the publisher restarts)
 * and sequence number (1, 2, 3... per topic and epoch), and publishers send heartbeats carrying the last sequence
 * number, so a subscriber can account for every event published after its subscription took effect: received,
 * or reported missed. The runtime that does this lives in `Topics.ts` and `internal/topic*.ts`; the wire format
 * is in docs/PROTOCOL.md (section 7) and the design in docs/TOPICS.md.
 *
 * This module holds the declarations only: topics, the messages a subscription emits, options (and the one function
 * that applies their defaults) and the error.
 *
 * @since 0.1.0
 */
import { Context, Data, Duration, Effect } from "effect"
import * as Contract from "./Contract.ts"

// ---- topics ------------------------------------------------------------------------------------------------

/**
 * A declared topic: its name on the wire, the codec of its events, how an event's key is derived, and whether
 * publishers keep a last-value cache per key for late joiners.
 *
 * @since 0.1.0
 */
export interface Topic<A> {
  readonly _tag: "Topic"
  /** The topic's name on the wire; stable, `[A-Za-z_][A-Za-z0-9_.-]*`. */
  readonly name: string
  /** Validates and encodes events on publish, decodes and validates them on receipt. */
  readonly codec: Contract.BodyCodec<A>
  /** The key of an event (for key filters and the last-value cache); `undefined` when events have none. */
  readonly key: ((value: A) => string) | undefined
  /** The publishers' last-value cache, or `undefined` for none. */
  readonly lastValueCache: { readonly maxKeys: number } | undefined
}

/**
 * Settings of a topic besides its codec.
 *
 * @since 0.1.0
 */
export interface TopicSettings<A> {
  /** Derives the key of an event, e.g. `(quote) => quote.symbol`. Default: events have no key. */
  readonly key?: ((value: A) => string) | undefined
  /**
   * Keep the latest event per key on each publisher, so a new or recovering subscriber starts from a snapshot of
   * the current values (the zguide's Clone pattern). `true` caps the cache at 100,000 keys; past the cap the least
   * recently updated key is evicted (counted as `cacheEvictions`). Default: no cache.
   */
  readonly lastValueCache?: boolean | { readonly maxKeys?: number | undefined } | undefined
}

const namePattern = /^[A-Za-z_][A-Za-z0-9_.-]*$/
const DEFAULT_MAX_KEYS = 100_000

/**
 * Declares a topic from an Effect Schema. Throws on an invalid name or cache size (a programming error, caught at
 * module load).
 *
 * @example
 * ```ts
 * const Prices = Topic.make("prices", {
 *   schema: Schema.Struct({ symbol: Schema.String, price: Schema.Number }),
 *   key: (quote) => quote.symbol,
 *   lastValueCache: true,
 * })
 * ```
 *
 * @since 0.1.0
 */
export const make = <A>(name: string, spec: { readonly schema: Contract.WireSchema<A> } & TopicSettings<A>): Topic<A> =>
  fromCodec(name, { ...spec, codec: Contract.schemaCodec(spec.schema) })

/**
 * Declares a topic from any codec (`fromProtobuf` builds one for a protobuf-es message). Throws like `make`.
 *
 * @since 0.1.0
 */
export const fromCodec = <A>(
  name: string,
  spec: { readonly codec: Contract.BodyCodec<A> } & TopicSettings<A>,
): Topic<A> => {
  if (!namePattern.test(name)) throw new Error(`topic name "${name}" must match ${namePattern}`)
  const cache = spec.lastValueCache
  const maxKeys = cache === true ? DEFAULT_MAX_KEYS : cache ? (cache.maxKeys ?? DEFAULT_MAX_KEYS) : 0
  if (cache && (!Number.isInteger(maxKeys) || maxKeys < 1)) throw new Error(`topic "${name}": maxKeys must be >= 1`)
  return {
    _tag: "Topic",
    name,
    codec: spec.codec,
    key: spec.key,
    lastValueCache: cache ? { maxKeys } : undefined,
  }
}

/**
 * The message type of a protobuf-es v2 schema, read from its generated type (`GenMessage<T>` gives `T`); a schema
 * without one (a `DescMessage` from a registry at run time) gives protobuf-es's untyped message.
 *
 * @since 0.1.0
 */
export type ProtobufMessageOf<S> = S extends { readonly $codegenv2: { readonly a: infer A } }
  ? A
  : { readonly $typeName: string }

/**
 * Declares a topic whose events are messages of a protobuf-es schema (`XxxSchema` from protoc-gen-es): each event
 * travels as the message's binary encoding. A publisher refuses anything but a message of that schema (made with
 * `create`) with `InvalidEvent`; a subscriber reports bytes that do not parse as an `Invalid` gap. Throws like
 * `make`.
 *
 * @example
 * ```ts
 * import * as protobuf from "@bufbuild/protobuf"
 * import { QuoteSchema } from "./gen/quotes_pb.js"
 *
 * const Quotes = Topic.fromProtobuf("quotes", { schema: QuoteSchema, protobuf, key: (quote) => quote.symbol })
 * ```
 *
 * @since 0.1.0
 */
export const fromProtobuf = <S extends { readonly typeName: string }>(
  name: string,
  spec: {
    readonly schema: S
    readonly protobuf: Contract.ProtobufRuntime<S, ProtobufMessageOf<S>>
  } & TopicSettings<ProtobufMessageOf<S>>,
): Topic<ProtobufMessageOf<S>> =>
  fromCodec(name, {
    codec: Contract.protobufCodec(spec.schema, spec.protobuf),
    key: spec.key,
    lastValueCache: spec.lastValueCache,
  })

// ---- what a subscription emits -----------------------------------------------------------------------------

/**
 * One event. `fromSnapshot` events come from a publisher's last-value cache (the latest event per key when the
 * subscription synchronised); `seq` is then the sequence number of the event that set the value.
 *
 * @since 0.1.0
 */
export interface Event<A> {
  readonly _tag: "Event"
  /** The publisher's id: its node id. */
  readonly publisher: string
  /** The publisher's epoch: changes when it restarts. */
  readonly epoch: number
  /** Sequence number, 1-based, per topic and epoch. */
  readonly seq: number
  readonly key: string | undefined
  readonly value: A
  readonly fromSnapshot: boolean
}

/**
 * Why events were missed.
 * - `Lost`: published but never received (the publisher's high-water mark for this subscriber, a dropped
 *   connection, a frozen process); found from the next event's or heartbeat's sequence number.
 * - `Restarted`: the publisher restarted (new epoch); `missed` counts the new epoch's events published before this
 *   subscriber received its first one. What the previous epoch published after its last heartbeat that reached us
 *   cannot be known (see docs/TOPICS.md).
 * - `Dropped`: received, then dropped by this subscription's slow-subscriber policy (`drop-oldest`/`drop-newest`).
 * - `Resync`: discarded by the `disconnect-and-resync` policy (the buffer overflowed).
 * - `Invalid`: received but failed the topic's codec.
 *
 * @since 0.1.0
 */
export type GapReason = "Lost" | "Restarted" | "Dropped" | "Resync" | "Invalid"

/**
 * Events of one publisher that this subscription will never see. With key filters, `missed` counts events of
 * every key for `Lost` and `Restarted` (their keys are unknown), and of matching keys otherwise.
 *
 * @since 0.1.0
 */
export interface Gap {
  readonly _tag: "Gap"
  readonly publisher: string
  /** The epoch the loss was found in (the new one for `Restarted`). */
  readonly epoch: number
  readonly missed: number
  readonly reason: GapReason
  /** For `Restarted`: the epoch before the restart. */
  readonly previousEpoch: number | undefined
}

/**
 * A publisher is heard from: the first time, or again after `PublisherDown`.
 *
 * @since 0.1.0
 */
export interface PublisherUp {
  readonly _tag: "PublisherUp"
  readonly publisher: string
  readonly epoch: number
}

/**
 * A publisher went away: `Silent` (no event or heartbeat for `missedHeartbeats` of its heartbeat intervals: it
 * crashed, froze, or is cut off), `Left` (discovery no longer lists it), or `Closed` (it stopped publishing and
 * said so). Events published after this, if it comes back, follow a `PublisherUp`.
 *
 * @since 0.1.0
 */
export interface PublisherDown {
  readonly _tag: "PublisherDown"
  readonly publisher: string
  readonly epoch: number
  readonly reason: "Silent" | "Left" | "Closed"
}

/**
 * The end of a snapshot: the `fromSnapshot` events before it are the publisher's values as of `seq`; live events
 * after it continue from `seq + 1`, with no duplicate and no hole across the boundary.
 *
 * @since 0.1.0
 */
export interface Synced {
  readonly _tag: "Synced"
  readonly publisher: string
  readonly epoch: number
  readonly seq: number
  /** How many snapshot entries were emitted. */
  readonly entries: number
}

/**
 * Anything but an event.
 *
 * @since 0.1.0
 */
export type Notice = Gap | PublisherUp | PublisherDown | Synced

/**
 * What a subscription's stream emits.
 *
 * @since 0.1.0
 */
export type Message<A> = Event<A> | Notice

/** Whether a message is an event. @since 0.1.0 */
export const isEvent = <A>(message: Message<A>): message is Event<A> => message._tag === "Event"

/** Whether a message is a gap notice. @since 0.1.0 */
export const isGap = <A>(message: Message<A>): message is Gap => message._tag === "Gap"

// ---- publishing --------------------------------------------------------------------------------------------

/**
 * A publisher of one topic on one node. Several `publisher` calls for one topic on one node share it (one sequence,
 * one cache); it stops when the last of their scopes closes, sending a final heartbeat (`PublisherDown` `Closed`).
 *
 * @since 0.1.0
 */
export interface Publisher<A> {
  readonly topic: Topic<A>
  /** The publisher id carried by its events: the node id. */
  readonly id: string
  /** This process's epoch. */
  readonly epoch: number
  /**
   * Publishes an event. Succeeds once it is queued; the events of one event-loop turn leave together. Fails with
   * `InvalidEvent` (the codec refused it) or `Overloaded`/`Closed`; never blocks on a slow subscriber.
   */
  readonly publish: (value: A) => Effect.Effect<void, TopicError>
  /** `publish` without an Effect, for hot loops: returns the error instead of failing. */
  readonly offer: (value: A) => TopicError | undefined
  /** The sequence number of the last event published (0 before the first). */
  readonly lastSeq: () => number
}

/**
 * Per-publisher settings.
 *
 * @since 0.1.0
 */
export interface PublisherOptions {
  /**
   * How often the publisher sends a heartbeat carrying its last sequence number, so subscribers tell "no events"
   * from "publisher gone" and find lost tails. Default: `TopicsOptions.heartbeatInterval` (500 ms). The first
   * `publisher` call for a topic on a node sets it.
   */
  readonly heartbeatInterval?: Duration.Input | undefined
}

// ---- subscribing -------------------------------------------------------------------------------------------

/**
 * What a subscription does when its consumer falls `bufferSize` events behind.
 * - `drop-oldest`: evict the oldest buffered events (the consumer sees the newest), reported as `Dropped`.
 * - `drop-newest`: refuse new events until there is room again, reported as `Dropped`.
 * - `disconnect-and-resync`: discard the whole backlog, and what arrives until the consumer asks for more,
 *   reported as `Resync`; then fetch a fresh snapshot when the subscription uses snapshots.
 *
 * @since 0.1.0
 */
export type SlowSubscriberPolicy = "drop-oldest" | "drop-newest" | "disconnect-and-resync"

/**
 * Per-subscription settings.
 *
 * @since 0.1.0
 */
export interface SubscribeOptions {
  /** Only events with one of these keys. Default: every key. */
  readonly keys?: ReadonlyArray<string> | undefined
  /** Only events whose key starts with this. Default: every key. Combined with `keys`, either may match. */
  readonly keyPrefix?: string | undefined
  /**
   * Start from each publisher's last-value cache (then live events, with no duplicate or hole at the boundary),
   * and again after it restarts. Default: true when the topic declares a cache.
   */
  readonly snapshot?: boolean | undefined
  /** What to do when the consumer is slow. Default `drop-oldest`. */
  readonly policy?: SlowSubscriberPolicy | undefined
  /** How many events may wait for the consumer (bounds memory). Default 10,000. */
  readonly bufferSize?: number | undefined
}

// ---- node-wide settings ------------------------------------------------------------------------------------

/**
 * How a node runs topics. Read from the context when the node is built (provide another value to change them).
 *
 * @since 0.1.0
 */
export interface TopicsOptions {
  /**
   * Endpoint the node's publisher socket (XPUB) binds when it first publishes. Default: the host of the node's
   * first bound endpoint with a free port (`tcp://127.0.0.1:*` for the default bind).
   */
  readonly publishEndpoint?: string | undefined
  /** Default heartbeat interval of publishers. Default 500 ms. */
  readonly heartbeatInterval?: Duration.Input | undefined
  /**
   * How many of a publisher's heartbeat intervals may pass in silence before subscribers report it
   * `PublisherDown` `Silent`. Default 3 (1.5 s at the default interval).
   */
  readonly missedHeartbeats?: number | undefined
  /** Most events in one wire batch (one transport payload). Default 256. */
  readonly maxBatchEvents?: number | undefined
  /** Deadline of the control calls to a publisher (describe, snapshot). Default 5 s. */
  readonly controlTimeout?: Duration.Input | undefined
  /** How often subscribers look for publishers among connected nodes (besides discovery's events). Default 250 ms. */
  readonly scanInterval?: Duration.Input | undefined
}

/**
 * The node-wide topic settings in context; a node reads them when it is built.
 *
 * @since 0.1.0
 */
export const TopicsOptions = Context.Reference<TopicsOptions>("@zactor/core/Topic/TopicsOptions", {
  defaultValue: () => ({}),
})

// ---- errors ------------------------------------------------------------------------------------------------

/**
 * Why a topic operation failed.
 * - `InvalidEvent`: the codec refused an event on publish.
 * - `InvalidOptions`: an option is out of range.
 * - `Overloaded`: the publish queue is full (the transport refused the batch).
 * - `Unavailable`: the publisher socket could not be bound.
 * - `Closed`: the node or publisher is closed.
 *
 * @since 0.1.0
 */
export type TopicErrorReason = "InvalidEvent" | "InvalidOptions" | "Overloaded" | "Unavailable" | "Closed"

/**
 * A failed topic operation, with a closed `reason`.
 *
 * @since 0.1.0
 */
export class TopicError extends Data.TaggedError("TopicError")<{
  readonly reason: TopicErrorReason
  readonly message: string
  readonly topic?: string | undefined
  readonly cause?: unknown
}> {
  /** Guard that works across duplicated installs, where `instanceof` would not. */
  static is(u: unknown): u is TopicError {
    return typeof u === "object" && u !== null && (u as { _tag?: unknown })._tag === "TopicError"
  }
}

// ---- resolving options -------------------------------------------------------------------------------------

/**
 * Topic options with defaults applied, durations in milliseconds.
 *
 * @since 0.1.0
 */
export interface ResolvedTopicsOptions {
  readonly publishEndpoint: string | undefined
  readonly heartbeatIntervalMs: number
  readonly missedHeartbeats: number
  readonly maxBatchEvents: number
  readonly controlTimeoutMs: number
  readonly scanIntervalMs: number
}

/**
 * The defaults of `TopicsOptions` and of subscriptions.
 *
 * @since 0.1.0
 */
export const defaults = Object.freeze({
  heartbeatIntervalMs: 500,
  missedHeartbeats: 3,
  maxBatchEvents: 256,
  controlTimeoutMs: 5000,
  scanIntervalMs: 250,
  bufferSize: 10_000,
  policy: "drop-oldest" as SlowSubscriberPolicy,
})

/**
 * A `TopicError` with reason `InvalidOptions`.
 *
 * @since 0.1.0
 */
export const invalidOptions = (message: string, topic?: string): TopicError =>
  new TopicError({ reason: "InvalidOptions", message, topic })

const millis = (name: string, input: Duration.Input | undefined, fallback: number, problems: Array<string>) => {
  if (input === undefined) return fallback
  const value = Duration.fromInput(input)
  const ms = value._tag === "None" ? Number.NaN : Duration.toMillis(value.value)
  if (!Number.isFinite(ms) || ms < 1) problems.push(`${name} must be a finite duration >= 1 ms`)
  return ms
}

/**
 * Applies the defaults and checks ranges: the only place they are applied. Fails with `InvalidOptions`.
 *
 * @since 0.1.0
 */
export const resolveOptions = (options: TopicsOptions = {}): Effect.Effect<ResolvedTopicsOptions, TopicError> =>
  Effect.suspend(() => {
    const problems: Array<string> = []
    const int = (name: string, input: number | undefined, fallback: number, min: number) => {
      if (input !== undefined && (!Number.isInteger(input) || input < min)) problems.push(`${name} must be >= ${min}`)
      return input ?? fallback
    }
    const resolved: ResolvedTopicsOptions = {
      publishEndpoint: options.publishEndpoint,
      heartbeatIntervalMs: millis(
        "heartbeatInterval",
        options.heartbeatInterval,
        defaults.heartbeatIntervalMs,
        problems,
      ),
      missedHeartbeats: int("missedHeartbeats", options.missedHeartbeats, defaults.missedHeartbeats, 1),
      maxBatchEvents: int("maxBatchEvents", options.maxBatchEvents, defaults.maxBatchEvents, 1),
      controlTimeoutMs: millis("controlTimeout", options.controlTimeout, defaults.controlTimeoutMs, problems),
      scanIntervalMs: millis("scanInterval", options.scanInterval, defaults.scanIntervalMs, problems),
    }
    return problems.length === 0
      ? Effect.succeed(resolved)
      : Effect.fail(invalidOptions(`invalid topics options: ${problems.join("; ")}`))
  })
