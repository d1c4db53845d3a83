/**
 * A node's topics: publishing typed events on its XPUB socket and subscribing through its SUB socket, with gap
 * detection, heartbeats, last-value caches and slow-subscriber policies (see `Topic.ts` for the vocabulary and
 * docs/TOPICS.md for the design). Every node has one, as `node.topics`.
 *
 * It owns the node's PUB/SUB side of the transport: the XPUB is bound on the first `publisher` call, the SUB
 * connects to publishers as subscriptions find them (through the node's `Discovery` and its connections, never a
 * configured endpoint), and one loop reads everything published to this node and hands it to each topic's feed.
 * Publishing nodes serve a small control contract per topic (`topic:<name>`: describe, snapshot) through the
 * node's ordinary RPC, which is also how discovery lists them.
 *
 * Not here: what travels on the wire (internal/topicWire.ts), gap accounting (internal/gapTracker.ts), the
 * subscriber state machine (internal/topicSubscriber.ts, internal/topicFeed.ts), buffering policies
 * (internal/subscriptionBuffer.ts), the publisher (internal/topicPublisher.ts).
 *
 * @since 0.1.0
 */
import type { TransportError, TransportShape } from "@zactor/transport"
import { Cause, Duration, Effect, Exit, FiberSet, Option, Scope, Semaphore, Stream } from "effect"
import type * as Arr from "effect/Array"
import type * as Pull from "effect/Pull"
import type { Target } from "./CallContext.ts"
import * as Discovery from "./Discovery.ts"
import * as KeyFilter from "./internal/keyFilter.ts"
import { SubscriptionBuffer } from "./internal/subscriptionBuffer.ts"
import { addressOf, type Description, type SnapshotRequest, TopicControl } from "./internal/topicControl.ts"
import { type FeedCounters, TopicFeed } from "./internal/topicFeed.ts"
import { type PublisherCounters, TopicPublisher } from "./internal/topicPublisher.ts"
import { type Snapshot, type SubscriberCounters, Subscription } from "./internal/topicSubscriber.ts"
import * as TopicWire from "./internal/topicWire.ts"
import type { AddressOptions, Client, Handlers, RemoteNode } from "./Node.ts"
import * as Topic from "./Topic.ts"

// ---- models ------------------------------------------------------------------------------------------------

/**
 * Counters of a node's topics, all since the node started.
 *
 * @since 0.1.0
 */
export interface TopicsMetrics {
  /** Events published by this node. */
  readonly eventsPublished: number
  /** EVENTS envelopes (batches of events) handed to the transport. */
  readonly batchesPublished: number
  readonly heartbeatsSent: number
  /** Events published but refused by the transport (queue full): subscribers see them as a `Lost` gap. */
  readonly publishDropped: number
  readonly snapshotsServed: number
  /** Keys evicted from full last-value caches. */
  readonly cacheEvictions: number
  /** Events that arrived on this node's SUB socket (each counted once, whatever the number of subscriptions). */
  readonly eventsReceived: number
  readonly heartbeatsReceived: number
  /** PUB/SUB payloads that were not valid topic envelopes. */
  readonly malformed: number
  /** Times a publisher was reported down (silent, left or closed). */
  readonly publishersDown: number
  /** Events queued to subscriptions (snapshot entries included). */
  readonly eventsDelivered: number
  /** Gap notices for events missed before reaching a subscription (`Lost`, `Restarted`, `Invalid`). */
  readonly gaps: number
  /** Events those gaps reported missing (`Lost` and `Restarted`). */
  readonly missed: number
  readonly restarts: number
  /** Events that failed the topic's codec. */
  readonly invalid: number
  /** Events received again (duplicates, stragglers) or covered by a snapshot, not delivered twice. */
  readonly skipped: number
  /** Events dropped or discarded by slow-subscriber policies. */
  readonly dropped: number
  readonly resyncs: number
  readonly snapshotsFetched: number
  readonly snapshotFailures: number
  /** Topics this node publishes now. */
  readonly publishing: number
  /** Subscriptions open now. */
  readonly subscriptions: number
}

/**
 * The topics of a node.
 *
 * @since 0.1.0
 */
export interface TopicsShape {
  /**
   * A publisher of `topic` on this node until the scope closes. The first one binds the node's XPUB socket and
   * starts serving the topic's control contract (discovery then lists the node under `topic:<name>`). Fails with
   * `Unavailable` (the XPUB cannot be bound), `InvalidOptions` or `Closed`.
   */
  readonly publisher: <A>(
    topic: Topic.Topic<A>,
    options?: Topic.PublisherOptions,
  ) => Effect.Effect<Topic.Publisher<A>, Topic.TopicError, Scope.Scope>
  /**
   * Subscribes to `topic` on every node that publishes it, for as long as the stream is consumed: events and
   * notices in order per publisher. Fails with `InvalidOptions` or `Closed`; ends when the node closes.
   */
  readonly subscribe: <A>(
    topic: Topic.Topic<A>,
    options?: Topic.SubscribeOptions,
  ) => Stream.Stream<Topic.Message<A>, Topic.TopicError>
  /** A snapshot of the counters. */
  readonly metrics: () => TopicsMetrics
}

/**
 * What the topics of a node need from it.
 *
 * @since 0.1.0
 */
export interface TopicsHost {
  readonly id: string
  readonly transport: TransportShape
  readonly serve: (
    contract: TopicControl,
    handlers: Handlers<TopicControl>,
    options: AddressOptions,
  ) => Effect.Effect<void, never, Scope.Scope>
  readonly client: (contract: TopicControl, target: Target, options: AddressOptions) => Client<TopicControl>
  readonly remotes: () => ReadonlyArray<RemoteNode>
}

/** Where the XPUB binds by default: the host of the node's first endpoint, any port. */
const defaultPublishEndpoint = (endpoints: ReadonlyArray<string>): string => {
  const first = endpoints[0]
  if (first === undefined) return "tcp://127.0.0.1:*"
  const tcp = /^tcp:\/\/(.+):[^:]+$/.exec(first)
  if (tcp !== null) return `tcp://${tcp[1]}:*`
  if (first.startsWith("ipc://")) return `${first}.pub`
  if (first.startsWith("inproc://")) return `${first}.pub`
  return "tcp://127.0.0.1:*"
}

// ---- the runtime -------------------------------------------------------------------------------------------

type Counters = PublisherCounters & SubscriberCounters & FeedCounters & { dropped: number; resyncs: number }

interface Publishing {
  readonly state: TopicPublisher<unknown>
  readonly scope: Scope.Closeable
}

interface FeedEntry {
  readonly feed: TopicFeed
  readonly scope: Scope.Closeable
  refs: number
}

/** Most messages a subscription stream emits per pull. */
const MAX_CHUNK = 1024

/**
 * Builds a node's topics; everything stops when the scope closes (publishers send a closing heartbeat).
 * Reads `Topic.TopicsOptions` and the optional `Discovery` from the context. Fails with `InvalidOptions`.
 *
 * @since 0.1.0
 */
export const make = (host: TopicsHost): Effect.Effect<TopicsShape, Topic.TopicError, Scope.Scope> =>
  Effect.gen(function* () {
    const options = yield* Topic.resolveOptions(yield* Topic.TopicsOptions)
    const discovery = Option.getOrUndefined(yield* Effect.serviceOption(Discovery.Discovery))
    const transport = host.transport
    // One epoch per process (its start time in ms): a restarted publisher counts from sequence 1 again under a new
    // epoch, which is how subscribers tell a restart from a jump.
    const epoch = Date.now()
    const counters: Counters = {
      eventsPublished: 0,
      batchesPublished: 0,
      heartbeatsSent: 0,
      publishDropped: 0,
      snapshotsServed: 0,
      cacheEvictions: 0,
      eventsReceived: 0,
      heartbeatsReceived: 0,
      malformed: 0,
      publishersDown: 0,
      eventsDelivered: 0,
      gaps: 0,
      missed: 0,
      restarts: 0,
      invalid: 0,
      skipped: 0,
      dropped: 0,
      resyncs: 0,
      snapshotsFetched: 0,
      snapshotFailures: 0,
    }
    const publishing = new Map<string, Publishing>()
    /** The last sequence number of topics this node stopped publishing, by name. */
    const stoppedAt = new Map<string, number>()
    const feeds = new Map<string, FeedEntry>()
    const buffers = new Set<SubscriptionBuffer<unknown>>()
    const subscribed = new Set<string>()
    const lock = yield* Semaphore.make(1)
    let xpubEndpoint: string | undefined
    let closed = false

    const closedError = (topic: string) => new Topic.TopicError({ reason: "Closed", message: "topics closed", topic })

    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        closed = true
        for (const buffer of buffers) buffer.end()
        for (const { state } of publishing.values()) state.close()
      }),
    )

    // Everything published to this node, handed to the topic's feed (a topic nobody here subscribes is ignored).
    yield* Stream.runForEach(transport.published, (published) =>
      Effect.sync(() => feeds.get(published.topic)?.feed.onPayloads(published.payloads)),
    ).pipe(Effect.forkScoped)

    // ---- publishing --------------------------------------------------------------------------------------------

    const send = (frame: string, payload: Uint8Array): TransportError | undefined => {
      const exit = Effect.runSyncExit(transport.publish(frame, payload))
      if (Exit.isSuccess(exit)) return undefined
      const failure = exit.cause.reasons.find(Cause.isFailReason)
      return failure?.error
    }
    const publisherHost = {
      nodeId: host.id,
      epoch,
      maxBatchEvents: options.maxBatchEvents,
      send,
      endpoint: () => xpubEndpoint ?? "",
      counters,
    }

    const bindPublisher = (topic: string) =>
      Effect.suspend(() => {
        if (xpubEndpoint !== undefined) return Effect.void
        const endpoint = options.publishEndpoint ?? defaultPublishEndpoint(transport.endpoints())
        return transport.bindPublisher(endpoint).pipe(
          Effect.tap((bound) =>
            Effect.sync(() => {
              xpubEndpoint = bound
            }),
          ),
          Effect.mapError(
            (error) =>
              new Topic.TopicError({
                reason: error.reason === "Closed" ? "Closed" : "Unavailable",
                message: `cannot bind the publisher socket at ${endpoint}: ${error.message}`,
                topic,
                cause: error,
              }),
          ),
        )
      })

    const startPublishing = (topic: Topic.Topic<unknown>, heartbeatIntervalMs: number) =>
      Effect.gen(function* () {
        const scope = yield* Scope.make()
        // Within one epoch sequence numbers never restart: a topic published again continues where it stopped.
        const state = new TopicPublisher(topic, publisherHost, heartbeatIntervalMs, stoppedAt.get(topic.name) ?? 0)
        yield* host
          .serve(
            TopicControl,
            {
              describe: ({ beat }) => Effect.sync(() => state.describe(beat)),
              snapshot: (request) => Stream.suspend(() => Stream.fromIterable(state.snapshot(request))),
            },
            { address: addressOf(topic.name) },
          )
          .pipe(Scope.provide(scope))
        yield* Effect.forever(
          Effect.andThen(
            Effect.sleep(Duration.millis(heartbeatIntervalMs)),
            Effect.sync(() => state.beat()),
          ),
        ).pipe(Effect.forkIn(scope))
        // A first heartbeat at once: subscribers already connected make contact (lastSeq 0) before any event.
        state.beat()
        const entry: Publishing = { state, scope }
        publishing.set(topic.name, entry)
        return entry
      })

    // Under the lock, like acquisition: a publisher acquired while the last one is released gets a fresh one.
    const release = (entry: Publishing) =>
      lock.withPermit(
        Effect.suspend(() => {
          entry.state.refs--
          if (entry.state.refs > 0) return Effect.void
          publishing.delete(entry.state.topic.name)
          stoppedAt.set(entry.state.topic.name, entry.state.lastSeq)
          entry.state.close()
          return Scope.close(entry.scope, Exit.void)
        }),
      )

    const publisher = <A>(topic: Topic.Topic<A>, publisherOptions?: Topic.PublisherOptions) =>
      Effect.gen(function* () {
        const interval =
          publisherOptions?.heartbeatInterval === undefined
            ? options.heartbeatIntervalMs
            : (yield* Topic.resolveOptions({ heartbeatInterval: publisherOptions.heartbeatInterval }))
                .heartbeatIntervalMs
        const entry = yield* lock.withPermit(
          Effect.gen(function* () {
            if (closed) return yield* Effect.fail(closedError(topic.name))
            yield* bindPublisher(topic.name)
            const entry =
              publishing.get(topic.name) ?? (yield* startPublishing(topic as Topic.Topic<unknown>, interval))
            entry.state.refs++
            return entry
          }),
        )
        yield* Effect.addFinalizer(() => release(entry))
        const state = entry.state as TopicPublisher<A>
        const handle: Topic.Publisher<A> = {
          topic,
          id: host.id,
          epoch,
          publish: (value) =>
            Effect.suspend(() => {
              const error = state.offer(value)
              return error === undefined ? Effect.void : Effect.fail(error)
            }),
          offer: (value) => state.offer(value),
          lastSeq: () => state.lastSeq,
        }
        return handle
      })

    // ---- control calls -----------------------------------------------------------------------------------------

    const controlOptions = { timeout: Duration.millis(options.controlTimeoutMs) }

    const describe = (topic: string, publisherId: string, beat: boolean): Effect.Effect<Description, unknown> => {
      if (publisherId === host.id) {
        const local = publishing.get(topic)
        return local === undefined
          ? Effect.fail(new Error(`this node does not publish ${topic}`))
          : Effect.sync(() => local.state.describe(beat))
      }
      return host
        .client(TopicControl, { node: publisherId }, { address: addressOf(topic) })
        .describe({ beat }, controlOptions)
    }

    const fetchSnapshot = (
      topic: string,
      publisherId: string,
      request: SnapshotRequest,
    ): Effect.Effect<Snapshot, unknown> => {
      const merge = (chunks: ReadonlyArray<{ epoch: number; seq: number; entries: Snapshot["entries"] }>) => {
        const first = chunks[0]
        if (first === undefined) return Effect.fail(new Error(`empty snapshot of ${topic} from ${publisherId}`))
        return Effect.succeed({ epoch: first.epoch, seq: first.seq, entries: chunks.flatMap((c) => c.entries) })
      }
      if (publisherId === host.id) {
        const local = publishing.get(topic)
        return local === undefined
          ? Effect.fail(new Error(`this node does not publish ${topic}`))
          : Effect.suspend(() => merge(local.state.snapshot(request)))
      }
      const client = host.client(TopicControl, { node: publisherId }, { address: addressOf(topic) })
      return Effect.flatMap(Stream.runCollect(client.snapshot(request, controlOptions)), merge)
    }

    /** A publisher's CURVE key: the one its node was connected (and authenticated) with, or this node's own. */
    const publicKeyOf = (publisherId: string): string | undefined =>
      publisherId === host.id
        ? transport.publicKey
        : host.remotes().find((remote) => remote.info?.id === publisherId)?.publicKey

    const connectSubscriber = (endpoint: string, publisherId: string) =>
      Effect.suspend(() => {
        if (subscribed.has(endpoint)) return Effect.void
        // Marked before connecting: a second connect to one endpoint would deliver everything twice.
        subscribed.add(endpoint)
        const serverPublicKey = publicKeyOf(publisherId)
        return transport
          .connectSubscriber(endpoint, serverPublicKey === undefined ? undefined : { serverPublicKey })
          .pipe(Effect.tapError(() => Effect.sync(() => subscribed.delete(endpoint))))
      })

    // ---- subscribing -------------------------------------------------------------------------------------------

    const acquireFeed = (topic: string) =>
      Effect.acquireRelease(
        lock.withPermit(
          Effect.gen(function* () {
            if (closed) return yield* Effect.fail(closedError(topic))
            const frame = TopicWire.frameOf(topic)
            let entry = feeds.get(frame)
            if (entry === undefined) {
              const address = addressOf(topic)
              const feed = new TopicFeed(topic, {
                address,
                describe: (publisherId, beat) => describe(topic, publisherId, beat),
                connect: connectSubscriber,
                candidates: () => {
                  const ids: Array<string> = []
                  for (const remote of host.remotes()) {
                    if (remote.info?.services.includes(address)) ids.push(remote.info.id)
                  }
                  if (publishing.has(topic)) ids.push(host.id)
                  return ids
                },
                discovery,
                scanIntervalMs: options.scanIntervalMs,
                missedHeartbeats: options.missedHeartbeats,
                counters,
              })
              yield* transport.subscribe(frame).pipe(Effect.mapError(() => closedError(topic)))
              const scope = yield* Scope.make()
              yield* feed.start().pipe(Scope.provide(scope))
              entry = { feed, scope, refs: 0 }
              feeds.set(frame, entry)
            }
            entry.refs++
            return entry
          }),
        ),
        (entry) =>
          lock.withPermit(
            Effect.suspend(() => {
              entry.refs--
              if (entry.refs > 0) return Effect.void
              const frame = TopicWire.frameOf(entry.feed.topicName)
              feeds.delete(frame)
              return Effect.andThen(Effect.ignore(transport.unsubscribe(frame)), Scope.close(entry.scope, Exit.void))
            }),
          ),
      )

    const subscribe = <A>(topic: Topic.Topic<A>, subscribeOptions: Topic.SubscribeOptions = {}) =>
      Stream.unwrap(
        Effect.gen(function* () {
          const bufferSize = subscribeOptions.bufferSize ?? Topic.defaults.bufferSize
          const policy = subscribeOptions.policy ?? Topic.defaults.policy
          if (!Number.isInteger(bufferSize) || bufferSize < 1) {
            return yield* Effect.fail(Topic.invalidOptions("bufferSize must be an integer >= 1", topic.name))
          }
          if (policy !== "drop-oldest" && policy !== "drop-newest" && policy !== "disconnect-and-resync") {
            return yield* Effect.fail(Topic.invalidOptions(`unknown policy "${String(policy)}"`, topic.name))
          }
          const { feed } = yield* acquireFeed(topic.name)
          const run = yield* FiberSet.makeRuntime<never, void, never>()
          let subscription: Subscription<A> | undefined
          const buffer = new SubscriptionBuffer<A>(bufferSize, policy, () => subscription?.onResync(), counters)
          subscription = new Subscription<A>(
            topic,
            {
              filter: KeyFilter.make(subscribeOptions.keys, subscribeOptions.keyPrefix),
              request: { keys: subscribeOptions.keys ?? null, keyPrefix: subscribeOptions.keyPrefix ?? null },
              snapshot: subscribeOptions.snapshot ?? topic.lastValueCache !== undefined,
              bufferSize,
            },
            buffer,
            {
              fetchSnapshot: (publisherId, request) => fetchSnapshot(topic.name, publisherId, request),
              knows: (publisherId) => feed.knows(publisherId),
              fork: (effect) => {
                run(effect)
              },
              counters,
            },
          )
          const erased = subscription as Subscription<unknown>
          buffers.add(buffer as SubscriptionBuffer<unknown>)
          feed.add(erased)
          yield* Effect.addFinalizer(() =>
            Effect.sync(() => {
              erased.close()
              feed.subscriptions.delete(erased)
              buffers.delete(buffer as SubscriptionBuffer<unknown>)
              buffer.end()
            }),
          )
          const pull: Pull.Pull<Arr.NonEmptyReadonlyArray<Topic.Message<A>>> = Effect.suspend(() => {
            const chunk = buffer.take(MAX_CHUNK)
            if (chunk !== undefined)
              return Effect.succeed(chunk as unknown as Arr.NonEmptyReadonlyArray<Topic.Message<A>>)
            if (buffer.isEnded) return Cause.done()
            return Effect.callback<Arr.NonEmptyReadonlyArray<Topic.Message<A>>, Cause.Done>((resume) => {
              buffer.wait(() => resume(pull))
              return Effect.sync(() => buffer.wait(undefined))
            })
          })
          return Stream.fromPull(Effect.succeed(pull))
        }),
      )

    const shape: TopicsShape = {
      publisher,
      subscribe,
      metrics: () => ({ ...counters, publishing: publishing.size, subscriptions: buffers.size }),
    }
    return shape
  })
