/**
 * Builds a `Metrics.Snapshot` from a node's live counters, its transport and its connections.
 */
import type { TransportMetrics } from "@zactor/transport"
import type * as Metrics from "../Metrics.ts"
import { BOUNDS_MS, type Histogram } from "./histogram.ts"
import { counters, type RuntimeMetrics } from "./nodeMetrics.ts"
import type { Remote } from "./remotes.ts"

/** What the snapshot reads from a node. */
export interface Source {
  readonly id: string
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
    },
    latency: { call: histogram(source.metrics.callLatency), serve: histogram(source.metrics.serveLatency) },
    errors: { call: callErrors, serve: { ...source.metrics.serveErrors } },
    deadLetters: { ...source.metrics.deadLetters },
    peers,
  }
}
