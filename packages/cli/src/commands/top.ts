/**
 * `zactor top`: live rates per node, refreshed every `--interval`: calls served and sent per second,
 * failures, retries, dead letters, latency percentiles over the last interval, requests in flight, queued
 * messages (transport queues and actor mailboxes), reconnects and bytes in/out. Each node's admin service gives a metrics snapshot; rates are the
 * difference of two snapshots. With `--json` it prints one report (two snapshots `--interval` apart) and
 * exits; `--iterations` bounds the number of reports either way.
 */
import { Metrics } from "@zactor/core"
import { Effect, Option } from "effect"
import { Command, Flag } from "effect/cli"
import * as Flags from "../internal/flags.ts"
import * as Output from "../internal/output.ts"
import * as Session from "../internal/session.ts"

/** One node's activity over one interval. */
export interface Row {
  readonly node: string
  readonly endpoint: string
  /** Requests whose handler started, per second. */
  readonly servedPerSecond: number
  /** Calls this node sent, per second. */
  readonly sentPerSecond: number
  /** FAILUREs sent and received (local deadlines included), per second. */
  readonly errorsPerSecond: number
  readonly retriesPerSecond: number
  readonly deadLettersPerSecond: number
  /** Serve latency over the interval (or call latency for a node that only calls), in ms. */
  readonly p50Ms: number | null
  readonly p99Ms: number | null
  readonly inflight: number
  readonly outstanding: number
  readonly queued: number
  /** Messages waiting in the node's actor mailboxes, and in the deepest one. */
  readonly mailboxQueued: number
  readonly mailboxMax: number
  /** The deepest actor mailboxes (at most five), deepest first. */
  readonly deepestMailboxes: ReadonlyArray<Metrics.MailboxDepth>
  /** Reconnects since the node started, and in this interval. */
  readonly reconnects: number
  readonly reconnectsInInterval: number
  readonly bytesInPerSecond: number
  readonly bytesOutPerSecond: number
  /** The failures of the interval by code. */
  readonly errorsByCode: Readonly<Record<string, number>>
}

const sum = (counts: Readonly<Record<string, number>>): number =>
  Object.values(counts).reduce((total, value) => total + value, 0)

const delta = (later: Readonly<Record<string, number>>, earlier: Readonly<Record<string, number>>, key: string) =>
  Math.max(0, (later[key] ?? 0) - (earlier[key] ?? 0))

const codes = (later: Metrics.Snapshot, earlier: Metrics.Snapshot): Record<string, number> => {
  const out: Record<string, number> = {}
  for (const side of ["call", "serve"] as const) {
    for (const code of Object.keys(later.errors[side])) {
      const change = delta(later.errors[side], earlier.errors[side], code)
      if (change > 0) out[code] = (out[code] ?? 0) + change
    }
  }
  return out
}

/** The activity between two snapshots of one node. */
export const rowOf = (endpoint: string, earlier: Metrics.Snapshot, later: Metrics.Snapshot): Row => {
  const seconds = Math.max(0.001, (later.at - earlier.at) / 1000)
  const perSecond = (value: number) => value / seconds
  const serve = Metrics.difference(later.latency.serve, earlier.latency.serve)
  const call = Metrics.difference(later.latency.call, earlier.latency.call)
  const latency = serve.count > 0 ? serve : call
  const byCode = codes(later, earlier)
  return {
    node: later.node,
    endpoint,
    servedPerSecond: perSecond(delta(later.counters, earlier.counters, "requestsServed")),
    sentPerSecond: perSecond(delta(later.counters, earlier.counters, "callsStarted")),
    errorsPerSecond: perSecond(sum(byCode)),
    retriesPerSecond: perSecond(delta(later.counters, earlier.counters, "retried")),
    deadLettersPerSecond: perSecond(delta(later.counters, earlier.counters, "deadLettered")),
    p50Ms: Metrics.quantile(latency, 0.5) ?? null,
    p99Ms: Metrics.quantile(latency, 0.99) ?? null,
    inflight: later.gauges.inflight ?? 0,
    outstanding: later.gauges.outstanding ?? 0,
    queued: later.gauges.queued ?? 0,
    mailboxQueued: later.gauges.mailboxQueued ?? 0,
    mailboxMax: later.gauges.mailboxMax ?? 0,
    deepestMailboxes: later.mailboxes,
    reconnects: later.transport.reconnects ?? 0,
    reconnectsInInterval: delta(later.transport, earlier.transport, "reconnects"),
    bytesInPerSecond: perSecond(delta(later.transport, earlier.transport, "bytesReceived")),
    bytesOutPerSecond: perSecond(delta(later.transport, earlier.transport, "bytesSent")),
    errorsByCode: byCode,
  }
}

/** A table of rows for people. */
export const render = (rows: ReadonlyArray<Row>, silent: ReadonlyArray<string>): string => {
  const table = Output.table(
    [
      "NODE",
      "SERVED",
      "SENT",
      "ERRORS",
      "RETRIES",
      "DEAD",
      "P50",
      "P99",
      "INFLIGHT",
      "QUEUED",
      "MAILBOX",
      "RECONN",
      "IN",
      "OUT",
    ],
    rows.map((row) => [
      row.node,
      Output.rate(row.servedPerSecond),
      Output.rate(row.sentPerSecond),
      Output.rate(row.errorsPerSecond),
      Output.rate(row.retriesPerSecond),
      Output.rate(row.deadLettersPerSecond),
      Output.ms(row.p50Ms),
      Output.ms(row.p99Ms),
      String(row.inflight + row.outstanding),
      String(row.queued),
      row.mailboxQueued > 0 ? `${row.mailboxQueued} (max ${row.mailboxMax})` : "0",
      row.reconnectsInInterval > 0 ? `${row.reconnects} (+${row.reconnectsInInterval})` : String(row.reconnects),
      Output.bytesRate(row.bytesInPerSecond),
      Output.bytesRate(row.bytesOutPerSecond),
    ]),
  )
  const errors = rows
    .filter((row) => Object.keys(row.errorsByCode).length > 0)
    .map(
      (row) =>
        `  ${row.node}: ${Object.entries(row.errorsByCode)
          .map(([code, count]) => `${code} ${count}`)
          .join(", ")}`,
    )
  const backlogs = rows
    .filter((row) => row.deepestMailboxes.length > 0)
    .map((row) => `  ${row.node}: ${row.deepestMailboxes.map(({ actor, depth }) => `${actor} ${depth}`).join(", ")}`)
  const notes = silent.length > 0 ? [`no answer: ${silent.join(", ")}`] : []
  return [
    table,
    ...(errors.length > 0 ? ["errors in the interval:", ...errors] : []),
    ...(backlogs.length > 0 ? ["deepest actor mailboxes:", ...backlogs] : []),
    ...notes,
  ].join("\n")
}

/** The `top` command. */
export const command = Command.make(
  "top",
  {
    interval: Flag.String("interval").pipe(
      Flag.withDescription("Time between refreshes, and over which rates are measured (default 1s)"),
      Flag.withDefault("1s"),
    ),
    iterations: Flag.Int("iterations").pipe(
      Flag.withAlias("n"),
      Flag.withDescription("Reports to print before exiting (default: until interrupted; 1 with --json)"),
      Flag.optional,
    ),
    json: Flags.json,
    ...Flags.connection,
  },
  (flags) =>
    Output.guard(
      "top",
      flags.json,
      Effect.scoped(
        Effect.gen(function* () {
          const interval = Flags.parseDuration(flags.interval, "interval")
          if (typeof interval === "string") return yield* Effect.fail(Output.usage(interval))
          const iterations = Option.getOrElse(flags.iterations, () => (flags.json ? 1 : Number.POSITIVE_INFINITY))
          if (iterations < 1) return yield* Effect.fail(Output.usage("--iterations must be at least 1"))
          const session = yield* Session.open(flags)
          const clear = !flags.json && process.stdout.isTTY === true
          const previous = new Map<string, { readonly snapshot: Metrics.Snapshot; readonly endpoint: string }>()
          const sample = Effect.gen(function* () {
            const members = yield* session.members
            return yield* Effect.forEach(
              members,
              (member) =>
                Effect.map(Effect.option(session.metrics(member.endpoint)), (snapshot) => ({ member, snapshot })),
              { concurrency: 16 },
            )
          })
          const collect = (samples: Effect.Success<typeof sample>) => {
            const rows: Array<Row> = []
            const silent: Array<string> = []
            for (const { member, snapshot } of samples) {
              if (Option.isNone(snapshot)) {
                silent.push(member.nodeId)
                continue
              }
              const before = previous.get(member.endpoint)
              if (before !== undefined) rows.push(rowOf(member.endpoint, before.snapshot, snapshot.value))
              previous.set(member.endpoint, { snapshot: snapshot.value, endpoint: member.endpoint })
            }
            return { rows: rows.sort((a, b) => a.node.localeCompare(b.node)), silent }
          }
          collect(yield* sample)
          for (let report = 1; report <= iterations; report++) {
            yield* Effect.sleep(interval)
            const { rows, silent } = collect(yield* sample)
            if (flags.json) {
              yield* Output.line(
                JSON.stringify({ at: Date.now(), intervalMs: interval, nodes: rows, noAnswer: silent }),
              )
              continue
            }
            const header = `zactor top: ${rows.length} node(s) via ${session.source}, rates over ${Output.ms(interval)}, ${new Date().toLocaleTimeString()}`
            const body = rows.length === 0 && silent.length === 0 ? "no members found" : render(rows, silent)
            yield* Output.line(`${clear ? "\u001b[H\u001b[2J" : report > 1 ? "\n" : ""}${header}\n${body}`)
          }
        }),
      ),
    ),
).pipe(
  Command.withDescription(
    "Watch live rates per node: calls, failures, retries, latency percentiles, queues and actor mailboxes, reconnects, bytes. --json prints one report and exits.",
  ),
)
