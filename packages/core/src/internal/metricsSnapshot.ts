/**
 * Builds a `Metrics.Snapshot` from a node's live counters, its transport and its connections.
 */
import type { TransportMetrics } from "@zactor/transport"
import type * as Metrics from "../Metrics.ts"
import { BOUNDS_MS, type Histogram } from "./histogram.ts"
import { counters, type RuntimeMetrics } from "./nodeMetrics.ts"
import type { Remote } from "./remotes.ts"

/** The mailbox depths of a node's actors at one instant. */
export interface ActorQueues {
  /** Messages waiting in all of its actors' mailboxes (the one each busy actor is processing not included). */
  readonly queued: number
  /** The deepest mailbox. */
  readonly max: number
  /** Actors with at least one message waiting. */
  readonly backlogged: number
  /** The deepest mailboxes, deepest first, at most `DEEPEST_LISTED`. */
  readonly deepest: ReadonlyArray<Metrics.MailboxDepth>
}

/** How many of the deepest mailboxes a snapshot names: per-actor series stay bounded whatever the actor count. */
export const DEEPEST_LISTED = 5

const noQueues: ActorQueues = { queued: 0, max: 0, backlogged: 0, deepest: [] }

/** The actor runtime's reader of each node's mailboxes, registered with the node's first actor. */
const actorQueues = new WeakMap<object, () => ActorQueues>()

/** Registers how to read the mailboxes of the actors on `node` (the node's shape, `Source.node`). */
export const registerActorQueues = (node: object, read: () => ActorQueues): void => {
  actorQueues.set(node, read)
}

/** What the snapshot reads from a node. */
export interface Source {
  readonly id: string
  /** The node's shape, under which its actors' mailboxes are registered; `undefined` before it is built. */
  readonly node: object | undefined
  readonly startedAt: number
  readonly metrics: RuntimeMetrics
  readonly transport: TransportMetrics.TransportMetrics
  readonly inflight: number
  readonly remotes: Iterable<Remote>
}

const histogram = (h: Histogram): Metrics.Histogram => ({
  boundsMs: BOUNDS_MS,
  counts: h.counts.slice(),
  sumMs: h.sum,
  count: h.count,
})

/** Takes a snapshot now. */
export const take = (source: Source): Metrics.Snapshot => {
  const now = Date.now()
  const peers: Array<Metrics.Peer> = []
  let outstanding = 0
  for (const remote of source.remotes) {
    outstanding += remote.outstanding
    peers.push({
      endpoint: remote.endpoint,
      node: remote.info?.id ?? null,
      outstanding: remote.outstanding,
      connected: remote.connectedBefore && !remote.down,
      state: remote.state,
      rttMs: remote.liveness.rttMs ?? null,
    })
  }
  const callErrors = { ...source.metrics.callErrors }
  // Calls whose deadline passed locally got no FAILURE: count them under the code their caller saw.
  if (source.metrics.callsTimedOut > 0) {
    callErrors.deadline_exceeded = (callErrors.deadline_exceeded ?? 0) + source.metrics.callsTimedOut
  }
  const queues = (source.node === undefined ? undefined : actorQueues.get(source.node)?.()) ?? noQueues
  return {
    node: source.id,
    at: now,
    uptimeMs: now - source.startedAt,
    counters: { ...counters(source.metrics) },
    transport: { ...source.transport },
    gauges: {
      inflight: source.inflight,
      outstanding,
      queued: source.transport.queuedMessages,
      peers: peers.length,
      mailboxQueued: queues.queued,
      mailboxMax: queues.max,
      mailboxBacklogged: queues.backlogged,
    },
    mailboxes: queues.deepest,
    latency: { call: histogram(source.metrics.callLatency), serve: histogram(source.metrics.serveLatency) },
    errors: { call: callErrors, serve: { ...source.metrics.serveErrors } },
    deadLetters: { ...source.metrics.deadLetters },
    peers,
  }
}
