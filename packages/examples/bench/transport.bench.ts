/**
 * `pnpm bench`: ZmqTransport against the reference use of zeromq.js, measured as in BENCHMARKS.md. For each
 * concurrency `c` and system, a server and a client run as two OS processes (client on CPU 0, server on CPU 1
 * with `taskset` when available) over loopback TCP; the client keeps `c` `add` calls outstanding. After a
 * warm-up, `rounds` rounds of `seconds` each are measured and the median of each metric reported, with the
 * ratio of zactor to bare measured in this same run (absolute numbers move between runs; ratios much less).
 *
 * Prints a table and the targets, and writes every round to `.bench/transport-<timestamp>.json` at the repo root.
 * A benchmark, not a test: it exits non-zero only when a run breaks, never because a target was missed.
 *
 * Flags: `--seconds N` (default 3), `--rounds N` (3), `--warmup N` seconds (1), `--concurrency 1,32,256`,
 * `--systems bare-zmq,zactor-transport`, `--quick` (1 round of 1 s after 0.5 s of warm-up).
 *
 * @since 0.1.0
 */
import { mkdirSync, writeFileSync } from "node:fs"
import { cpus, release } from "node:os"
import { resolve } from "node:path"
import { parseArgs } from "node:util"
import { canPin, formatNumber, formatRate, killRoles, median, Role, table } from "./harness.ts"

const systems = {
  "bare-zmq": { server: "bare-server.ts", client: "bare-client.ts" },
  "zactor-transport": { server: "zactor-server.ts", client: "zactor-client.ts" },
} as const
type System = keyof typeof systems
const reference: System = "bare-zmq"
const candidate: System = "zactor-transport"

const usage = `usage: pnpm bench [--seconds N] [--rounds N] [--warmup N] [--concurrency 1,32,256]
                  [--systems ${Object.keys(systems).join(",")}] [--quick]`

// pnpm forwards a literal "--" when it is written before the flags; it separates nothing here.
const { values: flags } = parseArgs({
  args: process.argv.slice(2).filter((arg) => arg !== "--"),
  options: {
    seconds: { type: "string" },
    rounds: { type: "string" },
    warmup: { type: "string" },
    concurrency: { type: "string" },
    systems: { type: "string" },
    quick: { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  },
})
if (flags.help) {
  console.log(usage)
  process.exit(0)
}

const positive = (name: string, text: string | undefined, fallback: number): number => {
  if (text === undefined) return fallback
  const value = Number(text)
  if (!Number.isFinite(value) || value <= 0) {
    console.error(`--${name} must be a positive number, got "${text}"\n${usage}`)
    process.exit(2)
  }
  return value
}

const seconds = positive("seconds", flags.seconds, flags.quick ? 1 : 3)
const rounds = Math.round(positive("rounds", flags.rounds, flags.quick ? 1 : 3))
const warmupSeconds = positive("warmup", flags.warmup, flags.quick ? 0.5 : 1)
const concurrencies = (flags.concurrency ?? "1,32,256").split(",").map((c) => Math.round(positive("concurrency", c, 1)))
const selected = (flags.systems ?? Object.keys(systems).join(",")).split(",").map((name) => {
  if (!(name in systems)) {
    console.error(`unknown system "${name}"\n${usage}`)
    process.exit(2)
  }
  return name as System
})
const pinned = canPin()

process.on("exit", killRoles)
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.once(signal, () => {
    killRoles()
    process.exit(130)
  })
}

interface RoundResult {
  readonly callsPerSecond: number
  readonly p50Us: number | undefined
  readonly p99Us: number | undefined
  readonly cpuUsPerCall: number
}

interface Result {
  readonly system: System
  readonly concurrency: number
  readonly rounds: ReadonlyArray<RoundResult>
  readonly callsPerSecond: number | undefined
  readonly p50Us: number | undefined
  readonly p99Us: number | undefined
  readonly cpuUsPerCall: number | undefined
  readonly serverMaxRssMiB: number
  readonly clientMaxRssMiB: number
}

const sleep = (ms: number): Promise<void> => new Promise((done) => setTimeout(done, ms))

/** Runs one system at one concurrency in fresh processes. */
const measure = async (system: System, concurrency: number): Promise<Result> => {
  const server = new Role(systems[system].server, [], pinned ? 1 : undefined)
  let client: Role | undefined
  try {
    const { endpoint } = await server.next("ready", 20_000)
    client = new Role(systems[system].client, [endpoint], pinned ? 0 : undefined)
    await client.next("ready", 20_000)
    client.send({ type: "start", concurrency })
    await sleep(warmupSeconds * 1000)
    const marks = async () => Promise.all([client!.mark(), server.mark()])
    await marks()
    const results: Array<RoundResult> = []
    let lastMarks = await marks()
    for (let round = 0; round < rounds; round++) {
      await sleep(seconds * 1000)
      lastMarks = await marks()
      const [clientMark, serverMark] = lastMarks
      const sample = clientMark.sample
      if (sample === undefined || sample.calls === 0) throw new Error(`${system} c=${concurrency}: no call completed`)
      results.push({
        callsPerSecond: (sample.calls * 1000) / sample.elapsedMs,
        p50Us: sample.p50Us,
        p99Us: sample.p99Us,
        cpuUsPerCall: (clientMark.cpuUs + serverMark.cpuUs) / sample.calls,
      })
    }
    return {
      system,
      concurrency,
      rounds: results,
      callsPerSecond: median(results.map((r) => r.callsPerSecond)),
      p50Us: median(results.map((r) => r.p50Us)),
      p99Us: median(results.map((r) => r.p99Us)),
      cpuUsPerCall: median(results.map((r) => r.cpuUsPerCall)),
      serverMaxRssMiB: lastMarks[1].maxRssKiB / 1024,
      clientMaxRssMiB: lastMarks[0].maxRssKiB / 1024,
    }
  } finally {
    await Promise.all([client?.stop(), server.stop()])
  }
}

const ratio = (value: number | undefined, base: number | undefined): number | undefined =>
  value === undefined || base === undefined || base === 0 ? undefined : value / base

const main = async (): Promise<void> => {
  const cpuModel = cpus()[0]?.model ?? "unknown CPU"
  console.log(
    `Transport benchmark: ${selected.join(" vs ")}, c = ${concurrencies.join(", ")}; ` +
      `${rounds} round(s) of ${seconds} s after ${warmupSeconds} s warm-up, median reported.\n` +
      `Node ${process.version}, ${cpus().length} x ${cpuModel}, Linux ${release()}; ` +
      (pinned ? "client pinned to CPU 0, server to CPU 1." : "processes not pinned (no taskset or a single CPU)."),
  )

  const results: Array<Result> = []
  for (const concurrency of concurrencies) {
    // Systems alternate per concurrency, so each ratio compares runs made minutes, not a whole run, apart.
    for (const system of selected) {
      process.stdout.write(`  ${system} c=${concurrency} ... `)
      const result = await measure(system, concurrency)
      results.push(result)
      console.log(`${formatRate(result.callsPerSecond)} calls/s, p50 ${formatNumber(result.p50Us)} µs`)
    }
  }

  const find = (system: System, concurrency: number) =>
    results.find((r) => r.system === system && r.concurrency === concurrency)
  const rows = results.map((r) => {
    const base = find(reference, r.concurrency)
    const callsRatio = ratio(r.callsPerSecond, base?.callsPerSecond)
    const p50Ratio = ratio(r.p50Us, base?.p50Us)
    return [
      r.system,
      String(r.concurrency),
      formatRate(r.callsPerSecond),
      formatNumber(r.p50Us),
      formatNumber(r.p99Us),
      formatNumber(r.cpuUsPerCall),
      callsRatio === undefined ? "-" : callsRatio.toFixed(2),
      p50Ratio === undefined ? "-" : p50Ratio.toFixed(2),
    ]
  })
  console.log(
    `\n${table(
      ["system", "c", "calls/s", "p50 µs", "p99 µs", "CPU µs/call", `calls/s ÷ ${reference}`, `p50 ÷ ${reference}`],
      rows,
    )}`,
  )

  const targets = [
    { concurrency: 32, metric: "calls/s", value: (r: Result) => r.callsPerSecond, atLeast: 2.5 },
    { concurrency: 256, metric: "calls/s", value: (r: Result) => r.callsPerSecond, atLeast: 5 },
    { concurrency: 1, metric: "p50", value: (r: Result) => r.p50Us, atMost: 1.1 },
  ]
  const targetResults = targets.flatMap((target) => {
    const base = find(reference, target.concurrency)
    const mine = find(candidate, target.concurrency)
    if (base === undefined || mine === undefined) return []
    const value = ratio(target.value(mine), target.value(base))
    const met =
      value !== undefined &&
      ("atLeast" in target ? value >= (target.atLeast ?? 0) : value <= (target.atMost ?? Number.POSITIVE_INFINITY))
    const bound = "atLeast" in target ? `>= ${target.atLeast}x` : `<= ${target.atMost}x`
    return [{ concurrency: target.concurrency, metric: target.metric, ratio: value, target: bound, met }]
  })
  if (targetResults.length > 0) {
    console.log(`\nTargets (${candidate} ÷ ${reference}, this run):`)
    for (const t of targetResults) {
      const shown = t.ratio === undefined ? "-" : `${t.ratio.toFixed(2)}x`
      console.log(
        `  c=${String(t.concurrency).padEnd(4)} ${t.metric.padEnd(8)} ${shown.padStart(6)}  target ${t.target.padEnd(8)} ${t.met ? "met" : "MISSED"}`,
      )
    }
  }

  const outDir = resolve(import.meta.dirname, "../../../.bench")
  mkdirSync(outDir, { recursive: true })
  const file = resolve(outDir, `transport-${new Date().toISOString().replace(/[:.]/g, "-")}.json`)
  const report = {
    date: new Date().toISOString(),
    node: process.version,
    cpu: cpuModel,
    cpus: cpus().length,
    kernel: release(),
    pinned,
    settings: { seconds, rounds, warmupSeconds, concurrencies, systems: selected },
    workload: 'request {id, method: "add", args: [1, 2]}, reply {id, result}, msgpackr, loopback TCP',
    results,
    targets: targetResults,
  }
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`)
  console.log(`\nWrote ${file}`)
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(`\nbenchmark failed: ${error instanceof Error ? error.message : String(error)}`)
    killRoles()
    process.exit(1)
  },
)
