/**
 * `pnpm bench:topics`: zactor topics against the plain use of zeromq.js PUB/SUB (one ZeroMQ message per event,
 * msgpackr), one publisher process and 1 or 8 subscriber processes over loopback TCP, in the same run.
 *
 * For each subscriber count and system, fresh processes: the publisher (pinned to CPU 0 when `taskset` is there)
 * and the subscribers (sharing CPU 1). After a warm-up trickle that every subscriber must receive (so none is a
 * slow joiner), the publisher publishes as fast as it can, a burst of 1,000 events per event-loop turn; after
 * `--warmup` seconds, `--rounds` windows of `--seconds` each are measured and the medians reported:
 * - delivered/s per subscriber (median over subscribers) and in total: the throughput;
 * - published/s: what the publisher pushed (PUB/SUB has no flow control: beyond what subscribers take, the
 *   publisher's high-water mark drops: bare zeromq.js silently, zactor as `Lost` gaps);
 * - loss: 1 - delivered / published per subscriber;
 * - unreported (run): after the rounds the publisher stops and the subscribers get up to 20 s to work off their
 *   backlog; then, over the whole measured run, the events neither delivered nor reported missed by a gap notice
 *   (bare zeromq.js reports nothing, so all its losses count);
 * - CPU µs per delivered event, over all processes.
 *
 * Flags: `--seconds N` (default 3), `--rounds N` (3), `--warmup N` (1), `--subscribers 1,8`,
 * `--systems bare-zmq,zactor-topics`, `--quick` (1 round of 1 s after 0.5 s). Writes `.bench/topics-<time>.json`.
 *
 * @since 0.1.0
 */
import { type ChildProcess, fork } from "node:child_process"
import { mkdirSync, writeFileSync } from "node:fs"
import { cpus, release } from "node:os"
import { resolve } from "node:path"
import { parseArgs } from "node:util"
import { canPin, formatNumber, formatRate, median, table } from "./harness.ts"

const systems = { "bare-zmq": "bare", "zactor-topics": "zactor" } as const
type System = keyof typeof systems
const reference: System = "bare-zmq"
const candidate: System = "zactor-topics"

const usage = `usage: pnpm bench:topics [--seconds N] [--rounds N] [--warmup N] [--subscribers 1,8]
                         [--systems ${Object.keys(systems).join(",")}] [--quick]`

const { values: flags } = parseArgs({
  args: process.argv.slice(2).filter((arg) => arg !== "--"),
  options: {
    seconds: { type: "string" },
    rounds: { type: "string" },
    warmup: { type: "string" },
    subscribers: { type: "string" },
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
const subscriberCounts = (flags.subscribers ?? "1,8").split(",").map((n) => Math.round(positive("subscribers", n, 1)))
const selected = (flags.systems ?? Object.keys(systems).join(",")).split(",").map((name) => {
  if (!(name in systems)) {
    console.error(`unknown system "${name}"\n${usage}`)
    process.exit(2)
  }
  return name as System
})
const pinned = canPin()

// ---- role processes ----------------------------------------------------------------------------------------

interface Mark {
  readonly type: "mark"
  readonly at: number
  readonly count: number
  readonly missed?: number
  readonly refused?: number
  readonly cpuUs: number
}
type Report = { readonly type: "ready"; readonly endpoint?: string } | { readonly type: "receiving" } | Mark

const running = new Set<ChildProcess>()
const killAll = () => {
  for (const child of running)
    if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, "SIGKILL")
}
process.on("exit", killAll)
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.once(signal, () => {
    killAll()
    process.exit(130)
  })
}

class RoleProcess {
  private readonly child: ChildProcess
  private readonly waiting = new Map<string, (report: Report) => void>()
  private readonly seen = new Set<string>()

  constructor(role: string, args: ReadonlyArray<string>, cpu: number | undefined) {
    const script = resolve(import.meta.dirname, "topics-role.ts")
    const execArgv = ["--conditions=@zactor/source", "--import", "tsx"]
    this.child =
      cpu === undefined
        ? fork(script, [role, ...args], { execArgv, stdio: ["ignore", "inherit", "inherit", "ipc"] })
        : fork(script, [role, ...args], {
            execPath: "taskset",
            execArgv: ["-c", String(cpu), process.execPath, ...execArgv],
            stdio: ["ignore", "inherit", "inherit", "ipc"],
          })
    running.add(this.child)
    this.child.once("exit", () => running.delete(this.child))
    this.child.on("message", (report: Report) => {
      this.seen.add(report.type)
      const waiter = this.waiting.get(report.type)
      this.waiting.delete(report.type)
      waiter?.(report)
    })
  }

  next<T extends Report["type"]>(type: T, timeoutMs: number, alreadyOk = false): Promise<Extract<Report, { type: T }>> {
    if (alreadyOk && this.seen.has(type)) return Promise.resolve({ type } as Extract<Report, { type: T }>)
    return new Promise((resolvePromise, reject) => {
      const timer = setTimeout(() => reject(new Error(`no "${type}" within ${timeoutMs} ms`)), timeoutMs)
      this.waiting.set(type, (report) => {
        clearTimeout(timer)
        resolvePromise(report as Extract<Report, { type: T }>)
      })
    })
  }

  send(type: "warmup" | "run" | "idle" | "mark" | "stop"): void {
    if (this.child.connected) this.child.send({ type })
  }

  mark(): Promise<Mark> {
    const reply = this.next("mark", 60_000)
    this.send("mark")
    return reply
  }

  stop(): void {
    this.send("stop")
    setTimeout(() => {
      if (this.child.pid !== undefined && this.child.exitCode === null) this.child.kill("SIGKILL")
    }, 2000).unref()
  }
}

// ---- measuring ---------------------------------------------------------------------------------------------

interface Round {
  readonly publishedPerSecond: number
  readonly deliveredPerSubscriber: number
  readonly deliveredTotal: number
  readonly loss: number
  readonly cpuUsPerDelivered: number
}

/** Accounting over the whole measured run, after the publisher stopped and the subscribers settled. */
interface Accounting {
  readonly published: number
  /** Per subscriber (median): events neither delivered nor reported missed (bare: nothing is ever reported). */
  readonly unreported: number
  /** Whether every subscriber's counts stopped moving within the drain time (else some were still queued). */
  readonly settled: boolean
}

interface Result {
  readonly system: System
  readonly subscribers: number
  readonly rounds: ReadonlyArray<Round>
  readonly median: Round
  readonly accounting: Accounting
}

/** How long subscribers may take to work off their backlog once the publisher stops. */
const DRAIN_MS = 20_000

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms))

const measure = async (system: System, subscriberCount: number): Promise<Result> => {
  const kind = systems[system]
  const publisher = new RoleProcess(`${kind}-pub`, [], pinned ? 0 : undefined)
  const subscribers: Array<RoleProcess> = []
  try {
    const { endpoint } = (await publisher.next("ready", 30_000)) as { endpoint: string }
    for (let i = 0; i < subscriberCount; i++)
      subscribers.push(new RoleProcess(`${kind}-sub`, [endpoint], pinned ? 1 : undefined))
    await Promise.all(subscribers.map((s) => s.next("ready", 30_000)))
    publisher.send("warmup")
    await Promise.all(subscribers.map((s) => s.next("receiving", 30_000, true)))
    // The accounting baseline is taken at rest (nothing in flight), so that it compares like with like.
    publisher.send("idle")
    await sleep(1000)
    const marks = () => Promise.all([publisher.mark(), ...subscribers.map((s) => s.mark())])
    const first = await marks()
    publisher.send("run")
    await sleep(warmupSeconds * 1000)
    let previous = await marks()
    const results: Array<Round> = []
    for (let round = 0; round < rounds; round++) {
      await sleep(seconds * 1000)
      const current = await marks()
      const [pubBefore, ...subsBefore] = previous
      const [pubAfter, ...subsAfter] = current
      const publishedPerSecond = ((pubAfter!.count - pubBefore!.count) * 1000) / (pubAfter!.at - pubBefore!.at)
      const perSubscriber = subsAfter.map((after, i) => {
        const before = subsBefore[i]!
        const delivered = after.count - before.count
        const missed = (after.missed ?? 0) - (before.missed ?? 0)
        return { delivered, missed, perSecond: (delivered * 1000) / (after.at - before.at) }
      })
      const published = pubAfter!.count - pubBefore!.count
      const deliveredTotal = perSubscriber.reduce((sum, s) => sum + s.delivered, 0)
      const cpuUs = current.reduce((sum, mark) => sum + mark.cpuUs, 0)
      results.push({
        publishedPerSecond,
        deliveredPerSubscriber: median(perSubscriber.map((s) => s.perSecond))!,
        deliveredTotal: perSubscriber.reduce((sum, s) => sum + s.perSecond, 0),
        loss: median(perSubscriber.map((s) => (published === 0 ? 0 : 1 - s.delivered / published)))!,
        cpuUsPerDelivered: deliveredTotal === 0 ? Number.NaN : cpuUs / deliveredTotal,
      })
      previous = current
    }
    // Accounting: stop publishing, let the subscribers work off what is queued for them (zactor's heartbeats report
    // the tail), then compare everything published since the first mark with what each subscriber got or was told.
    publisher.send("idle")
    const [pubStart, ...subsStart] = first
    const pubEnd = await publisher.mark()
    let settled = false
    let last = await Promise.all(subscribers.map((s) => s.mark()))
    const drainUntil = Date.now() + DRAIN_MS
    while (Date.now() < drainUntil) {
      await sleep(1000)
      const now = await Promise.all(subscribers.map((s) => s.mark()))
      const moved = now.some((mark, i) => mark.count !== last[i]!.count || mark.missed !== last[i]!.missed)
      last = now
      if (!moved) {
        settled = true
        break
      }
    }
    const publishedRun = pubEnd.count - pubStart!.count
    const unreported = median(
      last.map((mark, i) => {
        const delivered = mark.count - subsStart[i]!.count
        // Bare subscribers could count jumps in `n` themselves, but nothing tells them: every missing event counts.
        const reported = kind === "bare" ? 0 : (mark.missed ?? 0) - (subsStart[i]!.missed ?? 0)
        return Math.max(0, publishedRun - delivered - reported)
      }),
    )!
    const pick = (f: (r: Round) => number) => median(results.map(f))!
    return {
      system,
      subscribers: subscriberCount,
      rounds: results,
      median: {
        publishedPerSecond: pick((r) => r.publishedPerSecond),
        deliveredPerSubscriber: pick((r) => r.deliveredPerSubscriber),
        deliveredTotal: pick((r) => r.deliveredTotal),
        loss: pick((r) => r.loss),
        cpuUsPerDelivered: pick((r) => r.cpuUsPerDelivered),
      },
      accounting: { published: publishedRun, unreported, settled },
    }
  } finally {
    publisher.stop()
    for (const subscriber of subscribers) subscriber.stop()
    await sleep(300)
  }
}

const main = async () => {
  console.log(
    `Topics benchmark: ${selected.join(" vs ")}, ${subscriberCounts.join(" and ")} subscriber(s); ${rounds} round(s) ` +
      `of ${seconds} s after ${warmupSeconds} s, median reported.\nNode ${process.version}, ${cpus().length} x ` +
      `${cpus()[0]?.model ?? "unknown CPU"}, Linux ${release()}; ` +
      (pinned ? "publisher pinned to CPU 0, subscribers share CPU 1." : "processes not pinned."),
  )
  const results: Array<Result> = []
  for (const count of subscriberCounts) {
    for (const system of selected) {
      process.stdout.write(`  ${system}, ${count} subscriber(s) ... `)
      const result = await measure(system, count)
      results.push(result)
      console.log(`${formatRate(result.median.deliveredPerSubscriber)} events/s per subscriber`)
    }
  }
  const find = (system: System, count: number) => results.find((r) => r.system === system && r.subscribers === count)
  const rows = results.map((r) => {
    const base = find(reference, r.subscribers)
    const ratio = base === undefined ? undefined : r.median.deliveredPerSubscriber / base.median.deliveredPerSubscriber
    return [
      r.system,
      String(r.subscribers),
      formatRate(r.median.publishedPerSecond),
      formatRate(r.median.deliveredPerSubscriber),
      formatRate(r.median.deliveredTotal),
      `${(r.median.loss * 100).toFixed(1)} %`,
      `${formatRate(r.accounting.unreported)}${r.accounting.settled ? "" : " (still queued)"}`,
      formatNumber(r.median.cpuUsPerDelivered),
      ratio === undefined ? "-" : ratio.toFixed(2),
    ]
  })
  console.log(
    `\n${table(
      [
        "system",
        "subs",
        "published/s",
        "delivered/s per sub",
        "delivered/s total",
        "loss",
        "unreported (run)",
        "CPU µs/delivered",
        `÷ ${reference}`,
      ],
      rows,
    )}`,
  )
  for (const count of subscriberCounts) {
    const base = find(reference, count)
    const mine = find(candidate, count)
    if (base === undefined || mine === undefined) continue
    const ratio = mine.median.deliveredPerSubscriber / base.median.deliveredPerSubscriber
    console.log(
      `target ${count} subscriber(s): delivered/s >= 1.00x bare: ${ratio.toFixed(2)}x ${ratio >= 1 ? "met" : "MISSED"}`,
    )
  }
  const dir = resolve(import.meta.dirname, "../../../.bench")
  mkdirSync(dir, { recursive: true })
  const file = resolve(dir, `topics-${new Date().toISOString().replace(/[:.]/g, "-")}.json`)
  writeFileSync(file, JSON.stringify({ seconds, rounds, warmupSeconds, pinned, results }, null, 2))
  console.log(`results written to ${file}`)
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error)
    killAll()
    process.exit(1)
  },
)
