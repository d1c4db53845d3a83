/**
 * `pnpm bench:rpc`: typed zactor RPC against the reference use of zeromq.js, measured as in BENCHMARKS.md and
 * transport.bench.ts. For each scenario (concurrency `c`, workload) and system, a server and a client run as
 * two OS processes (client on CPU 0, server on CPU 1 with `taskset` when available) over loopback TCP; the
 * client keeps `c` calls outstanding. After a warm-up, `rounds` rounds of `seconds` each are measured and the
 * median of each metric reported, with the ratio to bare-zmq measured in this same run.
 *
 * - `bare-zmq`: the reference of the transport benchmark (bare-server.ts / bare-client.ts), unchanged.
 * - `zactor-rpc`: a server node serving `Calculator` (rpc-contract.ts) and a client node calling it through the
 *   typed client from `c` fibers (rpc-server.ts / rpc-client.ts); Schema validation on both ends.
 *
 * Scenarios: `add` (`{a, b}` -> number) at every `--concurrency`, and at c = `--echo-concurrency` a 4 KiB
 * string echo (`echo-str`) and a 4 KiB bytes echo (`echo-bin`; zactor carries `Schema.Uint8Array`, whose JSON-safe
 * wire form is base64).
 *
 * Besides calls/s, p50/p99 and CPU per call of both processes (all threads), CPU per call is split by thread:
 * the JS main thread, ZeroMQ's I/O thread, and the rest (V8 GC and compiler helpers), read from /proc; for
 * zactor, the transport's batch size (calls per ZeroMQ message) is reported from its counters. The CPU used by
 * other processes during each round is measured too (/proc/stat): noisy rounds are measured again, and
 * measurements that stayed noisy are flagged, since a busy machine moves every number here.
 *
 * `--cpu-prof` profiles the main thread of every role over the measured rounds (V8's sampling profiler through
 * the inspector, started after warm-up; positions mapped back to TypeScript sources) and prints, per process,
 * the share of busy time by package and the top functions by self time. Profiles are kept under .bench/; they
 * open in Chrome DevTools. Profiling costs CPU: take the numbers of a profiled run as a breakdown only.
 *
 * Prints a table and the targets, and writes every round to `.bench/rpc-<timestamp>.json` at the repo root.
 * A benchmark, not a test: it exits non-zero only when a run breaks, never because a target was missed.
 *
 * Flags: `--seconds N` (default 3), `--rounds N` (3), `--warmup N` seconds (1), `--concurrency 1,32,256`,
 * `--echo-concurrency 32`, `--workloads add,echo-str,echo-bin`, `--systems bare-zmq,zactor-rpc`,
 * `--quick` (1 round of 1 s after 0.5 s of warm-up), `--cpu-prof`, `--top N` (functions listed per profile, 25),
 * `--max-batch N` (the zactor transports' `maxBatchMessages`, default theirs: 64; for experiments),
 * `--noisy-retries N` (6): a round during which other processes used more than 10 % of a CPU (from /proc/stat) is
 * measured again, up to N times per system and scenario; rounds still noisy after that are kept and flagged.
 *
 * @since 0.1.0
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { cpus, release } from "node:os"
import { join, resolve } from "node:path"
import { parseArgs } from "node:util"
import {
  workloads as allWorkloads,
  CPU_PROFILE_ENV,
  CPU_PROFILE_INTERVAL_US,
  canPin,
  formatNumber,
  formatRate,
  killRoles,
  median,
  Role,
  type RoleReport,
  table,
  type Workload,
} from "./harness.ts"

const systems = {
  "bare-zmq": { server: "bare-server.ts", client: "bare-client.ts" },
  "zactor-rpc": { server: "rpc-server.ts", client: "rpc-client.ts" },
} as const
type System = keyof typeof systems
const reference: System = "bare-zmq"
const candidate: System = "zactor-rpc"

const usage = `usage: pnpm bench:rpc [--seconds N] [--rounds N] [--warmup N] [--concurrency 1,32,256]
                      [--echo-concurrency 32] [--workloads ${allWorkloads.join(",")}]
                      [--systems ${Object.keys(systems).join(",")}] [--quick] [--cpu-prof] [--top N]
                      [--max-batch N] [--noisy-retries N]`

// pnpm forwards a literal "--" when it is written before the flags; it separates nothing here.
const { values: flags } = parseArgs({
  args: process.argv.slice(2).filter((arg) => arg !== "--"),
  options: {
    seconds: { type: "string" },
    rounds: { type: "string" },
    warmup: { type: "string" },
    concurrency: { type: "string" },
    "echo-concurrency": { type: "string" },
    workloads: { type: "string" },
    systems: { type: "string" },
    quick: { type: "boolean", default: false },
    "cpu-prof": { type: "boolean", default: false },
    top: { type: "string" },
    "max-batch": { type: "string" },
    "noisy-retries": { type: "string" },
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
const oneOf = <T extends string>(name: string, text: string, allowed: ReadonlyArray<T>): T => {
  if (!allowed.includes(text as T)) {
    console.error(`unknown ${name} "${text}"\n${usage}`)
    process.exit(2)
  }
  return text as T
}

const seconds = positive("seconds", flags.seconds, flags.quick ? 1 : 3)
const rounds = Math.round(positive("rounds", flags.rounds, flags.quick ? 1 : 3))
const warmupSeconds = positive("warmup", flags.warmup, flags.quick ? 0.5 : 1)
const concurrencies = (flags.concurrency ?? "1,32,256").split(",").map((c) => Math.round(positive("concurrency", c, 1)))
const echoConcurrency = Math.round(positive("echo-concurrency", flags["echo-concurrency"], 32))
const selectedWorkloads = (flags.workloads ?? allWorkloads.join(","))
  .split(",")
  .map((w) => oneOf("workload", w, allWorkloads))
const selected = (flags.systems ?? Object.keys(systems).join(","))
  .split(",")
  .map((name) => oneOf("system", name, Object.keys(systems) as ReadonlyArray<System>))
const profiling = flags["cpu-prof"]
const topFunctions = Math.round(positive("top", flags.top, 25))
const maxBatch =
  flags["max-batch"] === undefined ? undefined : Math.round(positive("max-batch", flags["max-batch"], 64))
const noisyRetries =
  flags["noisy-retries"] === "0" ? 0 : Math.round(positive("noisy-retries", flags["noisy-retries"], 6))
const pinned = canPin()

interface Scenario {
  readonly concurrency: number
  readonly workload: Workload
}
const scenarios: ReadonlyArray<Scenario> = selectedWorkloads.flatMap(
  (workload): Array<Scenario> =>
    workload === "add"
      ? concurrencies.map((concurrency) => ({ concurrency, workload }))
      : [{ concurrency: echoConcurrency, workload }],
)
const scenarioName = (s: Scenario): string =>
  s.workload === "add" ? `c=${s.concurrency}` : `c=${s.concurrency} ${s.workload}`

process.on("exit", killRoles)
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.once(signal, () => {
    killRoles()
    process.exit(130)
  })
}

// --- CPU by thread, from /proc --------------------------------------------------------------------------------

/** CPU time so far of a process's threads, in µs, grouped as main (JS) thread, ZeroMQ I/O thread(s) and other. */
interface ThreadCpu {
  readonly main: number
  readonly zmqIo: number
  readonly other: number
}
const ZERO_CPU: ThreadCpu = { main: 0, zmqIo: 0, other: 0 }
const ticksToUs = 1_000_000 / 100 // USER_HZ is 100 on Linux

const threadCpu = (pid: number | undefined): ThreadCpu => {
  if (pid === undefined) return ZERO_CPU
  let main = 0
  let zmqIo = 0
  let other = 0
  let tids: Array<string>
  try {
    tids = readdirSync(`/proc/${pid}/task`)
  } catch {
    return ZERO_CPU // not Linux, or the process is gone
  }
  for (const tid of tids) {
    let stat: string
    try {
      stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8")
    } catch {
      continue // the thread ended meanwhile
    }
    const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"))
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    const us = (Number(fields[11]) + Number(fields[12])) * ticksToUs // utime, stime (fields 14, 15 of stat)
    if (Number(tid) === pid) main += us
    else if (name.startsWith("ZMQbg/IO")) zmqIo += us
    else other += us
  }
  return { main, zmqIo, other }
}
const total = (cpu: ThreadCpu): number => cpu.main + cpu.zmqIo + cpu.other

/**
 * CPU time so far on the whole machine (all CPUs, every process), in µs, from /proc/stat. `busy` counts tasks:
 * user, nice, system and steal (the hypervisor running someone else). Interrupt and softirq time are left out:
 * the kernel processes the roles' own loopback packets there (about 8 % of a CPU at 50k calls/s), charged to no
 * thread. `idle` is idle plus iowait.
 */
const machineCpuUs = (): { readonly busy: number; readonly idle: number } => {
  try {
    const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, , , steal = 0] = readFileSync("/proc/stat", "utf8")
      .split("\n")[0]!
      .trim()
      .split(/\s+/)
      .slice(1)
      .map(Number)
    return { busy: (user + nice + system + steal) * ticksToUs, idle: (idle + iowait) * ticksToUs }
  } catch {
    return { busy: 0, idle: 0 }
  }
}

const minus = (a: ThreadCpu, b: ThreadCpu): ThreadCpu => ({
  main: a.main - b.main,
  zmqIo: a.zmqIo - b.zmqIo,
  other: a.other - b.other,
})
const perCall = (cpu: ThreadCpu, calls: number): ThreadCpu => ({
  main: cpu.main / calls,
  zmqIo: cpu.zmqIo / calls,
  other: cpu.other / calls,
})

// --- measuring ------------------------------------------------------------------------------------------------

interface RoundResult {
  readonly callsPerSecond: number
  readonly p50Us: number | undefined
  readonly p99Us: number | undefined
  readonly cpuUsPerCall: number
  readonly serverCpuUsPerCall: number
  readonly clientCpuUsPerCall: number
  /** From /proc, per thread group; these are coarse (10 ms ticks) but cover thousands of calls per round. */
  readonly serverThreadsUsPerCall: ThreadCpu
  readonly clientThreadsUsPerCall: ThreadCpu
  /** Transport payloads per ZeroMQ message written (the batch size), when the role reports counters. */
  readonly serverPayloadsPerMessage: number | undefined
  readonly clientPayloadsPerMessage: number | undefined
  /**
   * CPU used on the machine by anything but the two roles during the round (this orchestrator, other
   * processes), in % of one CPU. Above a few %, the round was not measured on a quiet machine.
   */
  readonly foreignCpuPercent: number
  /**
   * Idle CPU time of the machine during the round, in % of one CPU (200 % = both CPUs of a 2-CPU machine idle).
   * With both roles pinned to their own CPU, idle time means a role was waiting for the other.
   */
  readonly idleCpuPercent: number
}

interface Result extends Scenario {
  readonly system: System
  readonly rounds: ReadonlyArray<RoundResult>
  readonly callsPerSecond: number | undefined
  readonly p50Us: number | undefined
  readonly p99Us: number | undefined
  readonly cpuUsPerCall: number | undefined
  readonly serverCpuUsPerCall: number | undefined
  readonly clientCpuUsPerCall: number | undefined
  readonly serverThreadsUsPerCall: ThreadCpu
  readonly clientThreadsUsPerCall: ThreadCpu
  readonly serverPayloadsPerMessage: number | undefined
  readonly clientPayloadsPerMessage: number | undefined
  /** Median `idleCpuPercent` of the rounds. */
  readonly idleCpuPercent: number | undefined
  /** The largest `foreignCpuPercent` of the rounds kept. */
  readonly foreignCpuPercent: number
  /** Rounds measured again because other processes used CPU during them (`--noisy-retries`). */
  readonly roundsDiscarded: number
  readonly serverMaxRssMiB: number
  readonly clientMaxRssMiB: number
  /** The CPU profiles of each role (with `--cpu-prof`). */
  readonly profiles: { readonly server: string; readonly client: string } | undefined
}

const sleep = (ms: number): Promise<void> => new Promise((done) => setTimeout(done, ms))
const stamp = new Date().toISOString().replace(/[:.]/g, "-")
const outDir = resolve(import.meta.dirname, "../../../.bench")
const profileRoot = resolve(outDir, `rpc-prof-${stamp}`)

type Counters = { readonly [name: string]: number } | undefined
/** Payloads per ZeroMQ message written between two marks, from a zactor transport's counters. */
const payloadsPerMessage = (now: Counters, before: Counters): number | undefined => {
  const batches = (now?.batchesSent ?? 0) - (before?.batchesSent ?? 0)
  return now === undefined || batches <= 0
    ? undefined
    : ((now.messagesSent ?? 0) - (before?.messagesSent ?? 0)) / batches
}

const medianCpu = (values: ReadonlyArray<ThreadCpu>): ThreadCpu => ({
  main: median(values.map((v) => v.main)) ?? 0,
  zmqIo: median(values.map((v) => v.zmqIo)) ?? 0,
  other: median(values.map((v) => v.other)) ?? 0,
})

/** Runs one system in one scenario in fresh processes. */
const measure = async (system: System, scenario: Scenario): Promise<Result> => {
  const { concurrency, workload } = scenario
  const profileDir = profiling ? join(profileRoot, `${system}-${workload}-c${concurrency}`) : undefined
  if (profileDir !== undefined) mkdirSync(profileDir, { recursive: true })
  const profileEnv = (role: string): { readonly [name: string]: string } =>
    profileDir === undefined ? {} : { [CPU_PROFILE_ENV]: join(profileDir, `${role}.cpuprofile`) }
  // Only zactor roles take a batch size; bare-zmq has no batching.
  const roleArgs = system === "zactor-rpc" && maxBatch !== undefined ? [String(maxBatch)] : []
  const server = new Role(systems[system].server, roleArgs, pinned ? 1 : undefined, profileEnv("server"))
  let client: Role | undefined
  try {
    const { endpoint } = await server.next("ready", 20_000)
    client = new Role(systems[system].client, [endpoint, ...roleArgs], pinned ? 0 : undefined, profileEnv("client"))
    await client.next("ready", 20_000)
    client.send({ type: "start", concurrency, workload })
    await sleep(warmupSeconds * 1000)
    type Marks = readonly [
      Extract<RoleReport, { type: "mark" }>,
      Extract<RoleReport, { type: "mark" }>,
      ThreadCpu,
      ThreadCpu,
      { readonly busy: number; readonly idle: number },
    ]
    const marks = async (): Promise<Marks> => {
      const [c, s] = await Promise.all([client!.mark(), server.mark()])
      return [c, s, threadCpu(client!.child.pid), threadCpu(server.child.pid), machineCpuUs()]
    }
    let lastMarks = await marks()
    const results: Array<RoundResult> = []
    let retriesLeft = noisyRetries
    for (let round = 0; round < rounds; round++) {
      await sleep(seconds * 1000)
      const previous = lastMarks
      lastMarks = await marks()
      const [clientMark, serverMark, clientThreads, serverThreads, machine] = lastMarks
      const rolesUs = total(minus(clientThreads, previous[2])) + total(minus(serverThreads, previous[3]))
      const sample = clientMark.sample
      const name = `${system} ${scenarioName(scenario)}`
      if (sample === undefined || sample.calls === 0) throw new Error(`${name}: no call completed`)
      const foreignCpuPercent = Math.max(
        0,
        (100 * (machine.busy - previous[4].busy - rolesUs)) / (sample.elapsedMs * 1000),
      )
      if (foreignCpuPercent > NOISY_PERCENT && retriesLeft > 0) {
        // Another process took CPU during this round: measure it again rather than report its noise.
        retriesLeft--
        round--
        continue
      }
      results.push({
        callsPerSecond: (sample.calls * 1000) / sample.elapsedMs,
        p50Us: sample.p50Us,
        p99Us: sample.p99Us,
        cpuUsPerCall: (clientMark.cpuUs + serverMark.cpuUs) / sample.calls,
        serverCpuUsPerCall: serverMark.cpuUs / sample.calls,
        clientCpuUsPerCall: clientMark.cpuUs / sample.calls,
        serverThreadsUsPerCall: perCall(minus(serverThreads, previous[3]), sample.calls),
        clientThreadsUsPerCall: perCall(minus(clientThreads, previous[2]), sample.calls),
        serverPayloadsPerMessage: payloadsPerMessage(serverMark.counters, previous[1].counters),
        clientPayloadsPerMessage: payloadsPerMessage(clientMark.counters, previous[0].counters),
        foreignCpuPercent,
        idleCpuPercent: (100 * (machine.idle - previous[4].idle)) / (sample.elapsedMs * 1000),
      })
    }
    return {
      system,
      ...scenario,
      rounds: results,
      callsPerSecond: median(results.map((r) => r.callsPerSecond)),
      p50Us: median(results.map((r) => r.p50Us)),
      p99Us: median(results.map((r) => r.p99Us)),
      cpuUsPerCall: median(results.map((r) => r.cpuUsPerCall)),
      serverCpuUsPerCall: median(results.map((r) => r.serverCpuUsPerCall)),
      clientCpuUsPerCall: median(results.map((r) => r.clientCpuUsPerCall)),
      serverThreadsUsPerCall: medianCpu(results.map((r) => r.serverThreadsUsPerCall)),
      clientThreadsUsPerCall: medianCpu(results.map((r) => r.clientThreadsUsPerCall)),
      serverPayloadsPerMessage: median(results.map((r) => r.serverPayloadsPerMessage)),
      clientPayloadsPerMessage: median(results.map((r) => r.clientPayloadsPerMessage)),
      idleCpuPercent: median(results.map((r) => r.idleCpuPercent)),
      foreignCpuPercent: Math.max(...results.map((r) => r.foreignCpuPercent)),
      roundsDiscarded: noisyRetries - retriesLeft,
      serverMaxRssMiB: lastMarks[1].maxRssKiB / 1024,
      clientMaxRssMiB: lastMarks[0].maxRssKiB / 1024,
      profiles:
        profileDir === undefined
          ? undefined
          : { server: join(profileDir, "server.cpuprofile"), client: join(profileDir, "client.cpuprofile") },
    }
  } finally {
    // Writing a CPU profile on exit takes a moment; do not kill a role in the middle of it.
    const grace = profiling ? 30_000 : 2000
    await Promise.all([client?.stop(grace), server.stop(grace)])
  }
}

// --- CPU profiles ---------------------------------------------------------------------------------------------

interface CpuProfile {
  readonly nodes: ReadonlyArray<{
    readonly id: number
    readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number }
    readonly children?: ReadonlyArray<number>
  }>
  readonly startTime: number
  readonly endTime: number
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
}

/**
 * What a function's time is spent on, for the breakdown: the package, and for Node's own modules the concern
 * (timers, async_hooks, buffers), since a per-call `setTimeout` or `AsyncResource` is a cost worth seeing.
 */
const categoryOf = (functionName: string, url: string): string => {
  if (functionName === "(garbage collector)") return "GC (main thread part)"
  if (functionName === "(program)") return "(program): native, outside JS"
  if (url.includes("/effect/") || url.includes("/effect@")) {
    // Schema.Uint8Array's JSON-safe wire form is base64, done by effect's Encoding module in JavaScript.
    if (/\/encoding\/[^/]*\.(ts|js)$/.test(url)) return "effect Encoding (base64)"
    return /\/(Schema[A-Za-z]*|internal\/schema\/[^/]*)\.(ts|js)$/.test(url) ? "effect Schema" : "effect runtime"
  }
  if (url === "node:inspector") return "profiler (overhead)"
  if (url.includes("msgpackr")) return "msgpackr"
  if (url.includes("zeromq")) return "zeromq.js (JS)"
  if (url.includes("/packages/core/")) return "zactor core"
  if (url.includes("/packages/transport/")) return "zactor transport (JS)"
  if (url.includes("/bench/")) return "bench role"
  if (url === "node:timers" || url === "node:internal/timers") return "node timers (setTimeout/clearTimeout)"
  if (url === "node:async_hooks" || url === "node:internal/async_hooks") return "node async_hooks"
  if (url === "node:buffer" || url === "node:internal/buffer") return "node Buffer"
  if (url.startsWith("node:")) return "node internals, other"
  if (url === "") return "native, no JS caller"
  return "other JS"
}

/** Categories whose native callees are zeromq.js's N-API socket calls (send, receive). */
const socketCallers = new Set(["zeromq.js (JS)", "zactor transport (JS)", "bench role"])
/** Wall time: includes the time the ZeroMQ I/O thread, pinned to the same CPU, preempts the caller. */
const SOCKET_NATIVE = "zeromq.js native send/receive"

const shortUrl = (url: string): string =>
  url
    .replace(/^file:\/\/.*\/node_modules\/\.pnpm\/[^/]+\/node_modules\//, "")
    .replace(/^file:\/\/.*\/packages\//, "")
    .replace(/^file:\/\/\/work\/main\//, "")

/**
 * Summarizes one profile: busy time of the main thread by category and the top functions by self time, as a share
 * and in µs per call (`callsPerSecond` of the run times the profile's duration). Native functions without a
 * script (N-API calls such as zeromq.js's send and receive, `setTimeout`'s binding) are charged to the category
 * of their JavaScript caller, marked "native".
 */
const summarizeProfile = (file: string, callsPerSecond: number | undefined): string => {
  const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile
  const nodeById = new Map(profile.nodes.map((n) => [n.id, n]))
  const parentOf = new Map<number, number>()
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id)
  const selfUs = new Map<number, number>()
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0))
  }
  const describe = (id: number): { readonly name: string; readonly category: string } => {
    const { functionName, url, lineNumber } = nodeById.get(id)!.callFrame
    const name = `${functionName || "(anonymous)"}${url === "" ? "" : ` ${shortUrl(url)}:${lineNumber + 1}`}`
    if (url !== "" || functionName.startsWith("(")) return { name, category: categoryOf(functionName, url) }
    // A native function: find the nearest JavaScript caller.
    let caller = parentOf.get(id)
    while (caller !== undefined && nodeById.get(caller)!.callFrame.url === "") caller = parentOf.get(caller)
    if (caller === undefined) return { name: `${name} (native)`, category: "native, no JS caller" }
    const outer = describe(caller)
    // V8 names N-API functions unreliably ("Proxy", "terminate", ""): every native a socket caller calls is taken
    // for a socket call, but performance.now.
    const socketCall = socketCallers.has(outer.category) && functionName !== "now"
    return { name: `${name} (native) <- ${outer.name}`, category: socketCall ? SOCKET_NATIVE : outer.category }
  }
  const byFunction = new Map<string, { name: string; category: string; us: number }>()
  const byCategory = new Map<string, number>()
  let busyUs = 0
  for (const [id, us] of selfUs) {
    if (nodeById.get(id)!.callFrame.functionName === "(idle)") continue
    busyUs += us
    const { name, category } = describe(id)
    byCategory.set(category, (byCategory.get(category) ?? 0) + us)
    const entry = byFunction.get(name) ?? { name, category, us: 0 }
    entry.us += us
    byFunction.set(name, entry)
  }
  const durationUs = profile.endTime - profile.startTime
  const calls = callsPerSecond === undefined ? undefined : (callsPerSecond * durationUs) / 1e6
  const pct = (us: number): string => `${((100 * us) / busyUs).toFixed(1)} %`
  const perCall = (us: number): string => (calls === undefined ? "-" : (us / calls).toFixed(2))
  const categories = [...byCategory].sort((a, b) => b[1] - a[1])
  const functions = [...byFunction.values()].sort((a, b) => b.us - a.us).slice(0, topFunctions)
  return [
    `main thread busy ${(busyUs / 1000).toFixed(0)} of ${(durationUs / 1000).toFixed(0)} ms` +
      (calls === undefined ? "" : `, ${perCall(busyUs)} µs per call (~${calls.toFixed(0)} calls)`),
    table(
      ["category", "share", "µs/call"],
      categories.map(([category, us]) => [category, pct(us), perCall(us)]),
    ),
    "",
    table(
      ["function (self time)", "category", "share", "µs/call"],
      functions.map((f) => [f.name, f.category, pct(f.us), perCall(f.us)]),
    ),
  ].join("\n")
}

// --- report ---------------------------------------------------------------------------------------------------

/** Foreign CPU (% of one CPU) above which a measurement is flagged as taken on a busy machine. */
const NOISY_PERCENT = 10

const ratio = (value: number | undefined, base: number | undefined): number | undefined =>
  value === undefined || base === undefined || base === 0 ? undefined : value / base
const formatRatio = (r: number | undefined): string => (r === undefined ? "-" : r.toFixed(2))
const formatThreads = (t: ThreadCpu): string =>
  `${formatNumber(t.main)} / ${formatNumber(t.zmqIo)} / ${formatNumber(t.other)}`

const main = async (): Promise<void> => {
  const cpuModel = cpus()[0]?.model ?? "unknown CPU"
  console.log(
    `RPC benchmark: ${selected.join(" vs ")}; ${scenarios.map(scenarioName).join(", ")}; ` +
      `${rounds} round(s) of ${seconds} s after ${warmupSeconds} s warm-up, median reported.\n` +
      `Node ${process.version}, ${cpus().length} x ${cpuModel}, Linux ${release()}; ` +
      (pinned ? "client pinned to CPU 0, server to CPU 1." : "processes not pinned (no taskset or a single CPU).") +
      (profiling
        ? `\nCPU profiles (${CPU_PROFILE_INTERVAL_US} µs sampling) under ${profileRoot}; profiling slows the roles down.`
        : ""),
  )

  const results: Array<Result> = []
  for (const scenario of scenarios) {
    // Systems alternate per scenario, so each ratio compares runs made seconds, not a whole run, apart.
    for (const system of selected) {
      process.stdout.write(`  ${system} ${scenarioName(scenario)} ... `)
      const result = await measure(system, scenario)
      results.push(result)
      const noisy = result.foreignCpuPercent > NOISY_PERCENT
      console.log(
        `${formatRate(result.callsPerSecond)} calls/s, p50 ${formatNumber(result.p50Us)} µs, ` +
          `${formatNumber(result.cpuUsPerCall)} CPU µs/call` +
          (noisy ? ` (NOISY: other processes used ${result.foreignCpuPercent.toFixed(0)} % of a CPU)` : "") +
          (result.roundsDiscarded > 0 ? ` [${result.roundsDiscarded} noisy round(s) measured again]` : ""),
      )
    }
  }

  const find = (system: System, scenario: Scenario) =>
    results.find(
      (r) => r.system === system && r.concurrency === scenario.concurrency && r.workload === scenario.workload,
    )
  const baseOf = (r: Result) => find(reference, r)
  console.log(
    `\n${table(
      [
        "system",
        "scenario",
        "calls/s",
        "p50 µs",
        "p99 µs",
        "CPU µs/call",
        "server / client",
        `calls/s ÷ ${reference}`,
        `p50 ÷ ${reference}`,
        `CPU ÷ ${reference}`,
      ],
      results.map((r) => [
        r.system,
        scenarioName(r),
        formatRate(r.callsPerSecond),
        formatNumber(r.p50Us),
        formatNumber(r.p99Us),
        formatNumber(r.cpuUsPerCall),
        `${formatNumber(r.serverCpuUsPerCall)} / ${formatNumber(r.clientCpuUsPerCall)}`,
        formatRatio(ratio(r.callsPerSecond, baseOf(r)?.callsPerSecond)),
        formatRatio(ratio(r.p50Us, baseOf(r)?.p50Us)),
        formatRatio(ratio(r.cpuUsPerCall, baseOf(r)?.cpuUsPerCall)),
      ]),
    )}`,
  )
  console.log(
    "\nCPU µs per call by thread (JS main / ZeroMQ I/O / other), from /proc at 10 ms resolution, and the idle CPU " +
      "of the machine (% of one CPU; each role has its own CPU, so idle time is a role waiting for the other):\n" +
      table(
        ["system", "scenario", "server", "client", "idle CPU %"],
        results.map((r) => [
          r.system,
          scenarioName(r),
          formatThreads(r.serverThreadsUsPerCall),
          formatThreads(r.clientThreadsUsPerCall),
          r.idleCpuPercent === undefined ? "-" : r.idleCpuPercent.toFixed(0),
        ]),
      ),
  )
  const batched = results.filter((r) => r.serverPayloadsPerMessage !== undefined)
  if (batched.length > 0) {
    console.log(
      `\nCalls per ZeroMQ message written (transport batch size), server / client: ${batched
        .map(
          (r) =>
            `${r.system} ${scenarioName(r)} ${formatNumber(r.serverPayloadsPerMessage)} / ${formatNumber(r.clientPayloadsPerMessage)}`,
        )
        .join("; ")}`,
    )
  }
  console.log(
    `\nPeak RSS MiB (server / client): ${results
      .map((r) => `${r.system} ${scenarioName(r)} ${r.serverMaxRssMiB.toFixed(0)} / ${r.clientMaxRssMiB.toFixed(0)}`)
      .join("; ")}`,
  )
  const noisy = results.filter((r) => r.foreignCpuPercent > NOISY_PERCENT)
  if (noisy.length > 0) {
    console.log(
      `\nWARNING: other processes used > ${NOISY_PERCENT} % of a CPU during ${noisy.length} of ${results.length} ` +
        `measurements (${noisy.map((r) => `${r.system} ${scenarioName(r)} ${r.foreignCpuPercent.toFixed(0)} %`).join(", ")}); ` +
        "rerun on a quiet machine before trusting these numbers.",
    )
  }

  const add = (concurrency: number): Scenario => ({ concurrency, workload: "add" })
  const targets = [
    { scenario: add(32), metric: "calls/s", kind: "ratio", value: (r: Result) => r.callsPerSecond, atLeast: 2 },
    { scenario: add(256), metric: "calls/s", kind: "ratio", value: (r: Result) => r.callsPerSecond, atLeast: 4 },
    { scenario: add(1), metric: "p50", kind: "ratio", value: (r: Result) => r.p50Us, atMost: 1.15 },
    { scenario: add(32), metric: "CPU µs/call", kind: "absolute", value: (r: Result) => r.cpuUsPerCall, atMost: 8 },
  ] as const
  const targetResults = targets.flatMap((target) => {
    const mine = find(candidate, target.scenario)
    if (mine === undefined) return []
    const base = find(reference, target.scenario)
    const value = target.kind === "ratio" ? ratio(target.value(mine), base && target.value(base)) : target.value(mine)
    if (value === undefined) return []
    const met = "atLeast" in target ? value >= target.atLeast : value <= target.atMost
    const unit = target.kind === "ratio" ? "x" : " µs"
    const bound = "atLeast" in target ? `>= ${target.atLeast}${unit}` : `<= ${target.atMost}${unit}`
    return [{ scenario: scenarioName(target.scenario), metric: target.metric, value, unit, target: bound, met }]
  })
  if (targetResults.length > 0) {
    console.log(`\nTargets (${candidate}; ratios ÷ ${reference} in this run):`)
    for (const t of targetResults) {
      const shown = `${t.value.toFixed(2)}${t.unit}`
      console.log(
        `  ${t.scenario.padEnd(6)} ${t.metric.padEnd(12)} ${shown.padStart(9)}  target ${t.target.padEnd(10)} ${t.met ? "met" : "MISSED"}`,
      )
    }
  }

  if (profiling) {
    for (const r of results) {
      if (r.profiles === undefined) continue
      for (const role of ["server", "client"] as const) {
        try {
          const file = r.profiles[role]
          const text = summarizeProfile(file, r.callsPerSecond)
          console.log(`\n### CPU profile: ${r.system} ${scenarioName(r)} ${role} (${file})\n${text}`)
        } catch (error) {
          console.log(`\n(no profile for ${r.system} ${scenarioName(r)} ${role}: ${String(error)})`)
        }
      }
    }
  }

  mkdirSync(outDir, { recursive: true })
  const file = resolve(outDir, `rpc-${stamp}.json`)
  const report = {
    date: new Date().toISOString(),
    node: process.version,
    cpu: cpuModel,
    cpus: cpus().length,
    kernel: release(),
    pinned,
    profiling,
    settings: { seconds, rounds, warmupSeconds, scenarios, systems: selected, maxBatch },
    workload:
      "bare-zmq: {id, method, args} msgpackr over DEALER/ROUTER; zactor-rpc: Calculator.add({a: 1, b: 2}) -> 3, " +
      "echo(4096-char string), echoBytes(4096-byte Uint8Array) through node.client, Schema-validated both ends",
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
