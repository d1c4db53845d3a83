/**
 * The two-process benchmarks (transport.bench.ts, rpc.bench.ts): for each scenario (calls in flight and workload)
 * and system, a server and a client role run as two OS processes (client on CPU 0, server on CPU 1 with `taskset`
 * when available) over loopback TCP, the client keeping `c` calls outstanding. After a warm-up, `rounds` rounds
 * of `seconds` are measured and the median of each metric reported, with the ratio to the reference system
 * measured in the same run (absolute numbers move between runs; ratios much less).
 *
 * Besides calls/s and p50/p99, CPU per call of both processes (all threads, `process.cpuUsage`) and split by
 * thread from /proc (the JS main thread, ZeroMQ's I/O thread, the rest: V8's GC and compiler helpers); the batch
 * size of zactor transports from their counters; the CPU other processes used during each round (/proc/stat):
 * noisy rounds are measured again, and measurements that stayed noisy are flagged. `--cpu-prof` / `--heap-prof`
 * profile the roles' main threads over the measured rounds and print a summary per role (see profile.ts).
 *
 * Prints the tables and the targets, and writes every round to `.bench/<name>-<timestamp>.json` at the repo root.
 * A benchmark, not a test: it exits non-zero only when a run breaks, never because a target was missed.
 *
 * @since 0.1.0
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { cpus, release } from "node:os"
import { join, resolve } from "node:path"
import {
  CPU_PROFILE_ENV,
  CPU_PROFILE_INTERVAL_US,
  canPin,
  formatNumber,
  formatRate,
  HEAP_PROFILE_ENV,
  HEAP_PROFILE_INTERVAL_BYTES,
  killRoles,
  median,
  Role,
  type RoleReport,
  table,
  type Workload,
} from "./harness.ts"
import { summarizeHeapProfile, summarizeProfile } from "./profile.ts"

/** One measurement's load: calls kept in flight and what each call carries. @since 0.1.0 */
export interface Scenario {
  readonly concurrency: number
  readonly workload: Workload
}

/** How a scenario is named in reports: `c=32`, `c=32 echo-bin`. @since 0.1.0 */
export const scenarioName = (s: Scenario): string =>
  s.workload === "add" ? `c=${s.concurrency}` : `c=${s.concurrency} ${s.workload}`

/** The role files of one system, and extra arguments its roles take (after the client's endpoint). @since 0.1.0 */
export interface SystemRoles {
  readonly server: string
  readonly client: string
  readonly args?: ReadonlyArray<string> | undefined
}

/** A target: a metric of the candidate, as a ratio to the reference (or absolute), with its bound. @since 0.1.0 */
export interface Target {
  readonly scenario: Scenario
  readonly metric: string
  readonly kind: "ratio" | "absolute"
  readonly value: (r: Result) => number | undefined
  readonly atLeast?: number | undefined
  readonly atMost?: number | undefined
}

/** Settings of one pair benchmark run. @since 0.1.0 */
export interface PairBenchmark {
  /** Names the report and its JSON file (`<name>-<timestamp>.json`). */
  readonly name: string
  readonly title: string
  /** What each system does, for the JSON report. */
  readonly workload: string
  readonly systems: { readonly [system: string]: SystemRoles }
  /** The systems to run, in order; each scenario runs all of them before the next. */
  readonly selected: ReadonlyArray<string>
  readonly reference: string
  readonly candidate: string
  readonly scenarios: ReadonlyArray<Scenario>
  readonly targets: ReadonlyArray<Target>
  readonly seconds: number
  readonly rounds: number
  readonly warmupSeconds: number
  /** Noisy rounds measured again per system and scenario before keeping them flagged. */
  readonly noisyRetries: number
  readonly profile: "cpu" | "heap" | undefined
  /** Functions (or allocation sites) listed per profile. */
  readonly top: number
  /** Extra settings recorded in the JSON report. */
  readonly settings?: { readonly [name: string]: unknown } | undefined
}

// --- CPU by thread and of the machine, from /proc ----------------------------------------------------------------

/**
 * CPU time of a process's threads, in µs, as main (JS) thread, ZeroMQ I/O thread(s) and the rest, and the minor
 * page faults of all of them. @since 0.1.0
 */
export interface ThreadCpu {
  readonly main: number
  readonly zmqIo: number
  readonly other: number
  /**
   * Pages the process touched for the first time since it got them from the kernel. Near zero per call once
   * warm; a steady stream means the allocator keeps returning memory to the kernel and taking it back (seen
   * with 4 KiB payloads, in bare zeromq.js as in zactor: such runs go at half speed or less).
   */
  readonly faults: number
}
const ZERO_CPU: ThreadCpu = { main: 0, zmqIo: 0, other: 0, faults: 0 }
const ticksToUs = 1_000_000 / 100 // USER_HZ is 100 on Linux

const threadCpu = (pid: number | undefined): ThreadCpu => {
  if (pid === undefined) return ZERO_CPU
  let main = 0
  let zmqIo = 0
  let other = 0
  let faults = 0
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
    faults += Number(fields[7]) // minflt (field 10 of stat)
    if (Number(tid) === pid) main += us
    else if (name.startsWith("ZMQbg/IO")) zmqIo += us
    else other += us
  }
  return { main, zmqIo, other, faults }
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
  faults: a.faults - b.faults,
})
const perCall = (cpu: ThreadCpu, calls: number): ThreadCpu => ({
  main: cpu.main / calls,
  zmqIo: cpu.zmqIo / calls,
  other: cpu.other / calls,
  faults: cpu.faults / calls,
})
const medianCpu = (values: ReadonlyArray<ThreadCpu>): ThreadCpu => ({
  main: median(values.map((v) => v.main)) ?? 0,
  zmqIo: median(values.map((v) => v.zmqIo)) ?? 0,
  other: median(values.map((v) => v.other)) ?? 0,
  faults: median(values.map((v) => v.faults)) ?? 0,
})

// --- measuring ----------------------------------------------------------------------------------------------------

/** One measured round. @since 0.1.0 */
export interface RoundResult {
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

/** One system in one scenario: its rounds and their medians. @since 0.1.0 */
export interface Result extends Scenario {
  readonly system: string
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
  /** Rounds measured again because other processes used CPU during them (`noisyRetries`). */
  readonly roundsDiscarded: number
  readonly serverMaxRssMiB: number
  readonly clientMaxRssMiB: number
  /** The profiles of each role (`profile`), and the calls they cover. */
  readonly profiles: { readonly server: string; readonly client: string; readonly calls: number } | undefined
}

/** Foreign CPU (% of one CPU) above which a round is measured again, and a result flagged. */
const NOISY_PERCENT = 10

const sleep = (ms: number): Promise<void> => new Promise((done) => setTimeout(done, ms))
const outDir = resolve(import.meta.dirname, "../../../.bench")

type Counters = { readonly [name: string]: number } | undefined
/** Payloads per ZeroMQ message written between two marks, from a zactor transport's counters. */
const payloadsPerMessage = (now: Counters, before: Counters): number | undefined => {
  const batches = (now?.batchesSent ?? 0) - (before?.batchesSent ?? 0)
  return now === undefined || batches <= 0
    ? undefined
    : ((now.messagesSent ?? 0) - (before?.messagesSent ?? 0)) / batches
}

type Mark = Extract<RoleReport, { type: "mark" }>
type Marks = readonly [
  client: Mark,
  server: Mark,
  ThreadCpu,
  ThreadCpu,
  { readonly busy: number; readonly idle: number },
]

/** Runs one system in one scenario in fresh processes. */
const measure = async (
  bench: PairBenchmark,
  system: string,
  scenario: Scenario,
  profileRoot: string,
  pinned: boolean,
): Promise<Result> => {
  const { concurrency, workload } = scenario
  const roles = bench.systems[system]!
  const profileDir =
    bench.profile === undefined ? undefined : join(profileRoot, `${system}-${workload}-c${concurrency}`)
  if (profileDir !== undefined) mkdirSync(profileDir, { recursive: true })
  const suffix = bench.profile === "heap" ? "heapprofile" : "cpuprofile"
  const profileEnv = (role: string): { readonly [name: string]: string } =>
    profileDir === undefined
      ? {}
      : { [bench.profile === "heap" ? HEAP_PROFILE_ENV : CPU_PROFILE_ENV]: join(profileDir, `${role}.${suffix}`) }
  const args = roles.args ?? []
  const server = new Role(roles.server, args, pinned ? 1 : undefined, profileEnv("server"))
  let client: Role | undefined
  try {
    const { endpoint } = await server.next("ready", 20_000)
    client = new Role(roles.client, [endpoint, ...args], pinned ? 0 : undefined, profileEnv("client"))
    await client.next("ready", 20_000)
    client.send({ type: "start", concurrency, workload })
    await sleep(bench.warmupSeconds * 1000)
    const marks = async (): Promise<Marks> => {
      const [c, s] = await Promise.all([client!.mark(), server.mark()])
      return [c, s, threadCpu(client!.child.pid), threadCpu(server.child.pid), machineCpuUs()]
    }
    let lastMarks = await marks()
    const results: Array<RoundResult> = []
    let retriesLeft = bench.noisyRetries
    let profiledCalls = 0
    for (let round = 0; round < bench.rounds; round++) {
      await sleep(bench.seconds * 1000)
      const previous = lastMarks
      lastMarks = await marks()
      const [clientMark, serverMark, clientThreads, serverThreads, machine] = lastMarks
      const rolesUs = total(minus(clientThreads, previous[2])) + total(minus(serverThreads, previous[3]))
      const sample = clientMark.sample
      const name = `${system} ${scenarioName(scenario)}`
      if (sample === undefined || sample.calls === 0) throw new Error(`${name}: no call completed`)
      profiledCalls += sample.calls
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
      roundsDiscarded: bench.noisyRetries - retriesLeft,
      serverMaxRssMiB: lastMarks[1].maxRssKiB / 1024,
      clientMaxRssMiB: lastMarks[0].maxRssKiB / 1024,
      profiles:
        profileDir === undefined
          ? undefined
          : {
              server: join(profileDir, `server.${suffix}`),
              client: join(profileDir, `client.${suffix}`),
              calls: profiledCalls,
            },
    }
  } finally {
    // Writing a profile on exit takes a moment; do not kill a role in the middle of it.
    const grace = bench.profile === undefined ? 2000 : 30_000
    await Promise.all([client?.stop(grace), server.stop(grace)])
  }
}

// --- report -------------------------------------------------------------------------------------------------------

const ratio = (value: number | undefined, base: number | undefined): number | undefined =>
  value === undefined || base === undefined || base === 0 ? undefined : value / base
const formatRatio = (r: number | undefined): string => (r === undefined ? "-" : r.toFixed(2))
const formatThreads = (t: ThreadCpu): string =>
  `${formatNumber(t.main)} / ${formatNumber(t.zmqIo)} / ${formatNumber(t.other)}`

/** Runs every selected system in every scenario, prints the report and writes it as JSON. @since 0.1.0 */
export const runPairBenchmark = async (bench: PairBenchmark): Promise<void> => {
  const pinned = canPin()
  const stamp = new Date().toISOString().replace(/[:.]/g, "-")
  const profileRoot = resolve(outDir, `${bench.name}-prof-${stamp}`)
  const cpuModel = cpus()[0]?.model ?? "unknown CPU"
  console.log(
    `${bench.title}: ${bench.selected.join(" vs ")}; ${bench.scenarios.map(scenarioName).join(", ")}; ` +
      `${bench.rounds} round(s) of ${bench.seconds} s after ${bench.warmupSeconds} s warm-up, median reported.\n` +
      `Node ${process.version}, ${cpus().length} x ${cpuModel}, Linux ${release()}; ` +
      (pinned ? "client pinned to CPU 0, server to CPU 1." : "processes not pinned (no taskset or a single CPU).") +
      (bench.profile === "cpu"
        ? `\nCPU profiles (${CPU_PROFILE_INTERVAL_US} µs sampling) under ${profileRoot}; profiling slows the roles down.`
        : bench.profile === "heap"
          ? `\nAllocation profiles (every ${HEAP_PROFILE_INTERVAL_BYTES} bytes) under ${profileRoot}.`
          : ""),
  )

  const results: Array<Result> = []
  for (const scenario of bench.scenarios) {
    // Systems alternate per scenario, so each ratio compares runs made seconds, not a whole run, apart.
    for (const system of bench.selected) {
      process.stdout.write(`  ${system} ${scenarioName(scenario)} ... `)
      const result = await measure(bench, system, scenario, profileRoot, pinned)
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

  const find = (system: string, scenario: Scenario) =>
    results.find(
      (r) => r.system === system && r.concurrency === scenario.concurrency && r.workload === scenario.workload,
    )
  const baseOf = (r: Result) => find(bench.reference, r)
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
        `calls/s ÷ ${bench.reference}`,
        `p50 ÷ ${bench.reference}`,
        `CPU ÷ ${bench.reference}`,
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
      "of the machine (% of one CPU; each role has its own CPU, so idle time is a role waiting for the other), " +
      "and minor page faults per call (a steady stream marks a run slowed by the allocator trading memory with the " +
      "kernel):\n" +
      table(
        ["system", "scenario", "server", "client", "idle CPU %", "page faults / call"],
        results.map((r) => [
          r.system,
          scenarioName(r),
          formatThreads(r.serverThreadsUsPerCall),
          formatThreads(r.clientThreadsUsPerCall),
          r.idleCpuPercent === undefined ? "-" : r.idleCpuPercent.toFixed(0),
          `${r.serverThreadsUsPerCall.faults.toFixed(2)} / ${r.clientThreadsUsPerCall.faults.toFixed(2)}`,
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

  const targetResults = bench.targets.flatMap((target) => {
    const mine = find(bench.candidate, target.scenario)
    if (mine === undefined) return []
    const base = find(bench.reference, target.scenario)
    const value =
      target.kind === "ratio"
        ? ratio(target.value(mine), base === undefined ? undefined : target.value(base))
        : target.value(mine)
    if (value === undefined) return []
    const met = target.atLeast !== undefined ? value >= target.atLeast : value <= (target.atMost ?? Infinity)
    const unit = target.kind === "ratio" ? "x" : " µs"
    const bound = target.atLeast !== undefined ? `>= ${target.atLeast}${unit}` : `<= ${target.atMost}${unit}`
    return [{ scenario: scenarioName(target.scenario), metric: target.metric, value, unit, target: bound, met }]
  })
  if (targetResults.length > 0) {
    const kind = bench.targets.every((t) => t.kind === "ratio")
      ? ` ÷ ${bench.reference}, this run`
      : `; ratios ÷ ${bench.reference} in this run`
    console.log(`\nTargets (${bench.candidate}${kind}):`)
    for (const t of targetResults) {
      const shown = `${t.value.toFixed(2)}${t.unit}`
      console.log(
        `  ${t.scenario.padEnd(6)} ${t.metric.padEnd(12)} ${shown.padStart(9)}  target ${t.target.padEnd(10)} ${t.met ? "met" : "MISSED"}`,
      )
    }
  }

  for (const r of results) {
    if (r.profiles === undefined) continue
    for (const role of ["server", "client"] as const) {
      const file = r.profiles[role]
      try {
        const text =
          bench.profile === "heap"
            ? summarizeHeapProfile(file, r.profiles.calls, bench.top)
            : summarizeProfile(file, r.callsPerSecond, bench.top)
        console.log(
          `\n### ${bench.profile === "heap" ? "Allocations" : "CPU profile"}: ${r.system} ${scenarioName(r)} ${role} (${file})\n${text}`,
        )
      } catch (error) {
        console.log(`\n(no profile for ${r.system} ${scenarioName(r)} ${role}: ${String(error)})`)
      }
    }
  }

  mkdirSync(outDir, { recursive: true })
  const file = resolve(outDir, `${bench.name}-${stamp}.json`)
  const report = {
    date: new Date().toISOString(),
    node: process.version,
    cpu: cpuModel,
    cpus: cpus().length,
    kernel: release(),
    pinned,
    profile: bench.profile,
    settings: {
      seconds: bench.seconds,
      rounds: bench.rounds,
      warmupSeconds: bench.warmupSeconds,
      scenarios: bench.scenarios,
      systems: bench.selected,
      ...bench.settings,
    },
    workload: bench.workload,
    results,
    targets: targetResults,
  }
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`)
  console.log(`\nWrote ${file}`)
}

/** Runs `main` and exits: 0 when it completes, 1 (with the roles killed) when it breaks. @since 0.1.0 */
export const runMain = (main: () => Promise<void>): void => {
  main().then(
    () => process.exit(0),
    (error: unknown) => {
      console.error(`\nbenchmark failed: ${error instanceof Error ? error.message : String(error)}`)
      killRoles()
      process.exit(1)
    },
  )
}
