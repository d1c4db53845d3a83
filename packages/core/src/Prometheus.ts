/**
 * Node metrics in the Prometheus text exposition format (version 0.0.4), and a small HTTP endpoint that
 * serves them (`node:http`; off unless `NodeOptions.metricsHttp` is set). Every sample carries the node id
 * as label `node`, so the snapshots of several nodes of one process render into one page.
 *
 * Counters end in `_total`, latencies are histograms in seconds (`_bucket{le}`, `_sum`, `_count`), as
 * Prometheus conventions ask. Counters a node gains later (from modules this file does not know) are still
 * exported, under a name derived from their key.
 *
 * @since 0.1.0
 */
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { Effect, type Scope } from "effect"
import type * as Metrics from "./Metrics.ts"
import { RpcError } from "./RpcError.ts"

/** The content type of the text format. @since 0.1.0 */
export const CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

/** Names and help of known counters, by snapshot key. */
const counterNames: Record<string, readonly [name: string, help: string]> = {
  callsStarted: ["zactor_calls_started_total", "Calls this node sent."],
  callsSucceeded: ["zactor_calls_succeeded_total", "Calls this node sent that succeeded."],
  callsFailed: ["zactor_calls_failed_total", "Calls this node sent that got a FAILURE."],
  callsTimedOut: ["zactor_calls_timed_out_total", "Calls this node sent whose deadline passed."],
  callsCancelled: ["zactor_calls_cancelled_total", "Calls this node sent that its caller cancelled."],
  requestsServed: ["zactor_requests_served_total", "Requests whose handler this node started."],
  requestsRejected: ["zactor_requests_rejected_total", "Requests refused before a handler ran."],
  requestsExpired: ["zactor_requests_expired_total", "Requests dropped because their deadline passed."],
  requestsCancelled: ["zactor_requests_cancelled_total", "Handlers interrupted by their caller's CANCEL."],
  requestsAbandoned: ["zactor_requests_abandoned_total", "Handlers stopped because their caller fell silent."],
  tellsReceived: ["zactor_tells_received_total", "One-way messages received."],
  tellsDropped: ["zactor_tells_dropped_total", "One-way messages dropped."],
  malformed: ["zactor_malformed_total", "Payloads that were not valid envelopes."],
  unknownCorrelation: ["zactor_unknown_correlation_total", "Answers for no pending call (late or duplicate)."],
  incompatiblePeers: ["zactor_incompatible_peers_total", "Peers refused for their protocol version."],
  defects: ["zactor_dispatch_defects_total", "Unexpected exceptions while dispatching (bugs)."],
  sent: ["zactor_sent_total", "Call attempts (retries included) and tells this node sent."],
  acked: ["zactor_acks_received_total", "ACKs received for at-least-once calls."],
  retried: ["zactor_retries_total", "Attempts after the first, of retried calls."],
  deduplicated: ["zactor_dedupe_hits_total", "Requests answered from the dedupe window."],
  deadLettered: ["zactor_dead_letters_all_total", "Messages given up on, all reasons."],
}

const transportNames: Record<string, readonly [name: string, help: string, type: "counter" | "gauge"]> = {
  messagesSent: ["zactor_transport_messages_sent_total", "Payloads accepted for sending.", "counter"],
  messagesReceived: ["zactor_transport_messages_received_total", "Payloads received.", "counter"],
  batchesSent: ["zactor_transport_batches_sent_total", "ZeroMQ messages written (batches).", "counter"],
  batchesReceived: ["zactor_transport_batches_received_total", "ZeroMQ messages read (batches).", "counter"],
  bytesSent: ["zactor_transport_bytes_sent_total", "Bytes written, framing included.", "counter"],
  bytesReceived: ["zactor_transport_bytes_received_total", "Bytes read, framing included.", "counter"],
  overloaded: ["zactor_transport_overloaded_total", "Sends refused because a peer queue was full.", "counter"],
  sendFailed: ["zactor_transport_send_failed_total", "Queued payloads dropped (timeout, peer gone).", "counter"],
  rejected: ["zactor_transport_rejected_total", "Inbound messages rejected.", "counter"],
  authFailures: ["zactor_transport_auth_failures_total", "CURVE handshakes refused.", "counter"],
  reconnects: ["zactor_transport_reconnects_total", "Outbound connections re-established.", "counter"],
  disconnects: ["zactor_transport_disconnects_total", "Connections lost.", "counter"],
  queuedMessages: ["zactor_transport_queued_messages", "Payloads waiting in outbound queues.", "gauge"],
}

const gaugeNames: Record<string, readonly [name: string, help: string]> = {
  inflight: ["zactor_requests_inflight", "Requests being served now."],
  outstanding: ["zactor_calls_outstanding", "Calls sent waiting for an outcome."],
  queued: ["zactor_queued_messages", "Payloads waiting in the transport's outbound queues."],
  peers: ["zactor_peers", "Connections this node made."],
  mailboxQueued: ["zactor_actor_mailbox_queued_messages", "Messages waiting in the mailboxes of this node's actors."],
  mailboxMax: ["zactor_actor_mailbox_max_depth", "Messages waiting in this node's deepest actor mailbox."],
  mailboxBacklogged: ["zactor_actors_backlogged", "Actors of this node with a message waiting."],
}

/** `callsStarted` -> `calls_started`. */
const snake = (key: string): string =>
  key
    .replace(/([a-z0-9])([A-Z])/g, "$1_$2")
    .replace(/[^A-Za-z0-9_]/g, "_")
    .toLowerCase()

const escapeLabel = (value: string): string => value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"')

const labels = (pairs: ReadonlyArray<readonly [string, string]>): string =>
  `{${pairs.map(([key, value]) => `${key}="${escapeLabel(value)}"`).join(",")}}`

const number = (value: number): string =>
  Number.isNaN(value) ? "NaN" : value === Infinity ? "+Inf" : value === -Infinity ? "-Inf" : String(value)

/** Metric families in first-seen order, each with its samples: HELP and TYPE are written once per family. */
class Page {
  private readonly families = new Map<string, { help: string; type: string; lines: Array<string> }>()

  sample(
    name: string,
    help: string,
    type: string,
    pairs: ReadonlyArray<readonly [string, string]>,
    value: number,
    family = name,
  ) {
    let entry = this.families.get(family)
    if (entry === undefined) {
      entry = { help, type, lines: [] }
      this.families.set(family, entry)
    }
    entry.lines.push(`${name}${labels(pairs)} ${number(value)}`)
  }

  histogram(name: string, help: string, pairs: ReadonlyArray<readonly [string, string]>, h: Metrics.Histogram) {
    let cumulative = 0
    for (let i = 0; i < h.counts.length; i++) {
      cumulative += h.counts[i] ?? 0
      const bound = h.boundsMs[i]
      const le = bound === undefined ? "+Inf" : String(bound / 1000)
      this.sample(`${name}_bucket`, help, "histogram", [...pairs, ["le", le]], cumulative, name)
    }
    this.sample(`${name}_sum`, help, "histogram", pairs, h.sumMs / 1000, name)
    this.sample(`${name}_count`, help, "histogram", pairs, h.count, name)
  }

  render(): string {
    const out: Array<string> = []
    for (const [name, family] of this.families) {
      out.push(`# HELP ${name} ${family.help}`, `# TYPE ${name} ${family.type}`, ...family.lines)
    }
    return `${out.join("\n")}\n`
  }
}

/**
 * Renders snapshots (one per node) in the Prometheus text format.
 *
 * @since 0.1.0
 */
export const render = (snapshots: ReadonlyArray<Metrics.Snapshot>): string => {
  const page = new Page()
  for (const snapshot of snapshots) {
    const node: ReadonlyArray<readonly [string, string]> = [["node", snapshot.node]]
    page.sample("zactor_uptime_seconds", "How long the node has run.", "gauge", node, snapshot.uptimeMs / 1000)
    for (const [key, value] of Object.entries(snapshot.counters)) {
      const [name, help] = counterNames[key] ?? [`zactor_${snake(key)}_total`, `Node counter ${key}.`]
      page.sample(name, help, "counter", node, value)
    }
    for (const [code, value] of Object.entries(snapshot.errors.call)) {
      page.sample(
        "zactor_call_errors_total",
        "Failures of calls this node sent, by code.",
        "counter",
        [...node, ["code", code]],
        value,
      )
    }
    for (const [code, value] of Object.entries(snapshot.errors.serve)) {
      page.sample(
        "zactor_serve_errors_total",
        "Failures this node answered, by code.",
        "counter",
        [...node, ["code", code]],
        value,
      )
    }
    for (const [reason, value] of Object.entries(snapshot.deadLetters)) {
      page.sample(
        "zactor_dead_letters_total",
        "Messages given up on, by reason.",
        "counter",
        [...node, ["reason", reason]],
        value,
      )
    }
    page.histogram("zactor_call_duration_seconds", "Round trip of calls this node sent.", node, snapshot.latency.call)
    page.histogram(
      "zactor_serve_duration_seconds",
      "Time from a request's arrival to its answer.",
      node,
      snapshot.latency.serve,
    )
    for (const [key, value] of Object.entries(snapshot.gauges)) {
      const [name, help] = gaugeNames[key] ?? [`zactor_${snake(key)}`, `Node gauge ${key}.`]
      page.sample(name, help, "gauge", node, value)
    }
    for (const [key, value] of Object.entries(snapshot.transport)) {
      const [name, help, type] = transportNames[key] ?? [
        `zactor_transport_${snake(key)}_total`,
        `Transport counter ${key}.`,
        "counter",
      ]
      page.sample(name, help, type, node, value)
    }
    // Only the few deepest (see `Metrics.Snapshot.mailboxes`): one series per actor would grow with the actors.
    for (const { actor, depth } of snapshot.mailboxes) {
      page.sample(
        "zactor_actor_mailbox_depth",
        "Messages waiting in each of the five deepest actor mailboxes of this node.",
        "gauge",
        [...node, ["actor", actor]],
        depth,
      )
    }
    for (const peer of snapshot.peers) {
      if (peer.rttMs === null) continue
      page.sample(
        "zactor_peer_rtt_seconds",
        "Last app-level ping round trip to a peer.",
        "gauge",
        [...node, ["peer", peer.node ?? peer.endpoint]],
        peer.rttMs / 1000,
      )
    }
  }
  return page.render()
}

/**
 * Where the metrics endpoint listens.
 *
 * @since 0.1.0
 */
export interface HttpOptions {
  /** TCP port; 0 picks a free one (see the returned URL). Default 9464. */
  readonly port?: number | undefined
  /** Address to listen on. Default `127.0.0.1` (use `0.0.0.0` to let a remote Prometheus scrape). */
  readonly host?: string | undefined
  /** Path of the page. Default `/metrics`. */
  readonly path?: string | undefined
}

/** The defaults of `HttpOptions`. @since 0.1.0 */
export const httpDefaults = Object.freeze({ port: 9464, host: "127.0.0.1", path: "/metrics" })

/**
 * Serves `render(snapshots())` over HTTP until the scope closes; returns the page's URL. Other paths answer
 * 404, other methods 405. Fails `unavailable` when the port cannot be bound.
 *
 * @since 0.1.0
 */
export const serve = (
  options: HttpOptions,
  snapshots: () => ReadonlyArray<Metrics.Snapshot>,
): Effect.Effect<string, RpcError, Scope.Scope> => {
  const port = options.port ?? httpDefaults.port
  const host = options.host ?? httpDefaults.host
  const path = options.path ?? httpDefaults.path
  return Effect.acquireRelease(
    Effect.callback<http.Server, RpcError>((resume) => {
      const server = http.createServer((request, response) => {
        const url = (request.url ?? "/").split("?")[0]
        if (url !== path) {
          response.writeHead(404, { "content-type": "text/plain" }).end("not found\n")
        } else if (request.method !== "GET" && request.method !== "HEAD") {
          response.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain" }).end("method not allowed\n")
        } else {
          const body = render(snapshots())
          response.writeHead(200, { "content-type": CONTENT_TYPE, "content-length": Buffer.byteLength(body) })
          response.end(request.method === "HEAD" ? undefined : body)
        }
      })
      const onError = (error: Error) =>
        resume(
          Effect.fail(
            new RpcError({
              code: "unavailable",
              message: `cannot serve metrics on ${host}:${port}: ${error.message}`,
              cause: error,
            }),
          ),
        )
      server.once("error", onError)
      server.listen(port, host, () => {
        server.off("error", onError)
        // A scrape must never keep the process alive.
        server.unref()
        resume(Effect.succeed(server))
      })
    }),
    (server) =>
      Effect.callback<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      }),
  ).pipe(
    Effect.map((server) => {
      const address = server.address() as AddressInfo
      const shown = address.family === "IPv6" ? `[${address.address}]` : address.address
      return `http://${shown}:${address.port}${path}`
    }),
  )
}
