// Helpers of the topic tests: nodes on a memory network, a collecting subscriber, a tiny in-test Discovery.

import { MemoryNetwork, MemoryTransport, Transport } from "@zactor/transport"
import { Effect, Queue, Schema, type Scope, Stream } from "effect"
import * as Discovery from "../src/Discovery.ts"
import * as Node from "../src/Node.ts"
import type { NodeOptions } from "../src/NodeOptions.ts"
import * as Topic from "../src/Topic.ts"

/** A keyed price topic with a last-value cache. */
export const Prices = Topic.make("prices", {
  schema: Schema.Struct({ symbol: Schema.String, price: Schema.Number }),
  key: (quote) => quote.symbol,
  lastValueCache: true,
})

/** An unkeyed counter topic without a cache. */
export const Ticks = Topic.make("ticks", { schema: Schema.Struct({ n: Schema.Number }) })

/** Topic settings fast enough for tests. */
export const fastTopics: Topic.TopicsOptions = { heartbeatInterval: 100, missedHeartbeats: 3, scanInterval: 50 }

/** A node on a memory network (no sockets), with fast topic settings unless told otherwise. */
export const memoryNode = (
  network: MemoryNetwork.MemoryNetwork,
  options: NodeOptions = {},
  topics: Topic.TopicsOptions = fastTopics,
): Effect.Effect<Node.NodeShape, unknown, Scope.Scope> =>
  Effect.flatMap(MemoryTransport.make({ network }), (transport) =>
    Node.make(options).pipe(
      Effect.provideService(Transport, transport),
      Effect.provideService(Topic.TopicsOptions, topics),
    ),
  )

/** A fresh memory network. */
export const network = () => MemoryNetwork.makeUnsafe()

/** Node "pub" publishing `topic`, and node "sub" connected to it, on a fresh memory network. */
export const publisherAndSubscriber = <A>(topic: Topic.Topic<A>) =>
  Effect.gen(function* () {
    const net = network()
    const pub = yield* memoryNode(net, { id: "pub" })
    const publisher = yield* pub.topics.publisher(topic)
    const sub = yield* memoryNode(net, { id: "sub" })
    yield* sub.connect(pub.endpoints()[0]!)
    return { pub, publisher, sub }
  })

/** Collects a subscription's messages into an array, in a fiber of the scope. */
export const collect = <A>(stream: Stream.Stream<Topic.Message<A>, Topic.TopicError>) =>
  Effect.gen(function* () {
    const messages: Array<Topic.Message<A>> = []
    yield* Stream.runForEach(stream, (message) => Effect.sync(() => messages.push(message))).pipe(Effect.forkScoped)
    return messages
  })

/** Waits (bounded) until a condition holds. */
export const waitFor = (condition: () => boolean, what: string, timeoutMs = 5000) =>
  Effect.promise(async () => {
    const until = Date.now() + timeoutMs
    while (!condition()) {
      if (Date.now() > until) throw new Error(`timed out waiting for ${what}`)
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
  })

/** Events of a message list. */
export const eventsOf = <A>(messages: ReadonlyArray<Topic.Message<A>>) => messages.filter(Topic.isEvent)

/** Gap notices of a message list. */
export const gapsOf = <A>(messages: ReadonlyArray<Topic.Message<A>>) => messages.filter(Topic.isGap)

/** Sum of `missed` over gap notices, optionally of some reasons only. */
export const missedOf = <A>(messages: ReadonlyArray<Topic.Message<A>>, reasons?: ReadonlyArray<Topic.GapReason>) =>
  gapsOf(messages)
    .filter((gap) => reasons === undefined || reasons.includes(gap.reason))
    .reduce((sum, gap) => sum + gap.missed, 0)

/**
 * A registry shared by the nodes of one test (core cannot use `@zactor/discovery`, which depends on it): register
 * adds a member until the scope closes, `leave` removes one as an expiry would, watch replays then follows.
 */
export const makeTestRegistry = () => {
  const members = new Map<string, Discovery.MemberRecord>()
  const watchers = new Set<(event: Discovery.MembershipEvent) => void>()
  const emit = (event: Discovery.MembershipEvent) => {
    for (const watcher of watchers) watcher(event)
  }
  const upsert = (record: Discovery.MemberRecord) => {
    const previous = members.get(record.nodeId)
    members.set(record.nodeId, record)
    emit(previous === undefined ? { _tag: "Joined", member: record } : { _tag: "Updated", member: record, previous })
  }
  const leave = (nodeId: string) => {
    const member = members.get(nodeId)
    if (member === undefined) return
    members.delete(nodeId)
    emit({ _tag: "Left", member, reason: "Expired" })
  }
  const discovery: Discovery.DiscoveryShape = {
    backend: "test",
    register: (record) =>
      Effect.acquireRelease(
        Effect.sync(() => {
          upsert(record)
          const registration: Discovery.Registration = { update: (next) => Effect.sync(() => upsert(next)) }
          return registration
        }),
        () => Effect.sync(() => leave(record.nodeId)),
      ),
    members: Effect.sync(() => [...members.values()]),
    resolve: (service) => Effect.sync(() => [...members.values()].filter((m) => Discovery.serves(m, service))),
    watch: Stream.callback<Discovery.MembershipEvent>((queue) =>
      Effect.acquireRelease(
        Effect.sync(() => {
          for (const member of members.values()) Queue.offerUnsafe(queue, { _tag: "Joined", member })
          const watcher = (event: Discovery.MembershipEvent) => {
            Queue.offerUnsafe(queue, event)
          }
          watchers.add(watcher)
          return watcher
        }),
        (watcher) => Effect.sync(() => watchers.delete(watcher)),
      ),
    ),
    stats: () => ({ members: members.size }),
  }
  return { discovery, leave }
}

/** A memory network whose nodes register in, and watch, one test registry: `node` starts one of them. */
export const registryNetwork = () => {
  const net = network()
  const registry = makeTestRegistry()
  const node = (options: NodeOptions, topics?: Topic.TopicsOptions) =>
    Effect.provideService(memoryNode(net, options, topics), Discovery.Discovery, registry.discovery)
  return { registry, node }
}
