/**
 * What the benchmarks share (transport.bench.ts, rpc.bench.ts, delivery.bench.ts; see BENCHMARKS.md for the
 * method): the workload (an `add` request encoded with msgpackr and its reply, and 4 KiB echoes), the load
 * generators that keep `c` calls outstanding and record their latency, the control channel between the
 * orchestrator and the role processes with CPU and allocation profiling of the roles, the orchestrator's side of
 * starting, pinning and killing those processes, the command line, and statistics and formatting. The two-process
 * measurement and report live in pair.ts, the profile summaries in profile.ts.
 *
 * Every system runs exactly this workload, so the only difference between rows is how bytes are moved.
 *
 * @since 0.1.0
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import { writeFileSync } from "node:fs"
import { Session } from "node:inspector/promises"
import { findSourceMap } from "node:module"
import { availableParallelism } from "node:os"
import { resolve } from "node:path"
import { parseArgs } from "node:util"
import { pack, unpack } from "msgpackr"

// --- workload ---------------------------------------------------------------------------------------------------

/**
 * What a call carries: `add` (two small numbers, the default), or a 4 KiB echo of a 4096-character string or of
 * 4096 bytes, answered with the same value. For the RPC benchmark: `add-wait` is `add` answered one event-loop
 * turn later (a handler that waits on something, as most real ones do), and `ask` is `add` asked of an actor
 * (bare zeromq.js has no actors: its side is `add`).
 *
 * @since 0.1.0
 */
export type Workload = "add" | "echo-str" | "echo-bin" | "add-wait" | "ask"

/** The workloads of the transport benchmark, in report order. @since 0.1.0 */
export const workloads: ReadonlyArray<Workload> = ["add", "echo-str", "echo-bin"]

/** Whether a workload is a 4 KiB echo (the others all make the small `add` call). @since 0.1.0 */
export const isEcho = (workload: Workload): workload is "echo-str" | "echo-bin" =>
  workload === "echo-str" || workload === "echo-bin"

/** The 4096-character string of the `echo-str` workload. @since 0.1.0 */
export const ECHO_STRING: string = "0123456789abcdef".repeat(256)

/** The 4096 bytes of the `echo-bin` workload. @since 0.1.0 */
export const ECHO_BYTES: Uint8Array = Uint8Array.from({ length: 4096 }, (_, i) => (i * 31) & 0xff)

/** The benchmark call (`addWait`: answered a turn later). @since 0.1.0 */
export interface AddRequest {
  readonly id: number
  readonly method: "add" | "addWait"
  readonly args: readonly [number, number]
}

/** The 4 KiB echo call. @since 0.1.0 */
export interface EchoRequest {
  readonly id: number
  readonly method: "echo"
  readonly args: readonly [string | Uint8Array]
}

/** Encodes the request of call `id`. @since 0.1.0 */
export const encodeRequest = (id: number, workload: Workload = "add"): Uint8Array =>
  isEcho(workload)
    ? pack({ id, method: "echo", args: [workload === "echo-str" ? ECHO_STRING : ECHO_BYTES] })
    : pack({ id, method: workload === "add-wait" ? "addWait" : "add", args: [1, 2] })

/** Decodes a request; both ends are this benchmark, so the shape is trusted. @since 0.1.0 */
export const decodeRequest = (payload: Uint8Array): AddRequest | EchoRequest =>
  unpack(payload) as AddRequest | EchoRequest

/** Encodes the reply to a request: the sum for `add`, the argument itself for `echo`. @since 0.1.0 */
export const encodeReply = (request: AddRequest | EchoRequest): Uint8Array =>
  pack({ id: request.id, result: request.method === "echo" ? request.args[0] : request.args[0] + request.args[1] })

/** Reads the call id of a reply. @since 0.1.0 */
export const replyId = (payload: Uint8Array): number => (unpack(payload) as { readonly id: number }).id

// --- latency -------------------------------------------------------------------------------------------------

const HISTOGRAM_MAX_US = 1_000_000

/** Round-trip times at 1 µs resolution up to 1 s (slower calls land in the last bucket). @since 0.1.0 */
export class LatencyHistogram {
  private readonly buckets = new Uint32Array(HISTOGRAM_MAX_US + 1)
  private count = 0

  record(micros: number): void {
    this.buckets[Math.min(HISTOGRAM_MAX_US, Math.floor(micros))]! += 1
    this.count++
  }

  /** The `p` quantile (0..1) in µs, or `undefined` when nothing was recorded. */
  percentile(p: number): number | undefined {
    if (this.count === 0) return undefined
    const rank = Math.max(1, Math.ceil(this.count * p))
    let seen = 0
    for (let us = 0; us <= HISTOGRAM_MAX_US; us++) {
      seen += this.buckets[us]!
      if (seen >= rank) return us
    }
    return HISTOGRAM_MAX_US
  }

  reset(): void {
    this.buckets.fill(0)
    this.count = 0
  }
}

/** What a client measured between two marks. @since 0.1.0 */
export interface ClientSample {
  readonly elapsedMs: number
  readonly calls: number
  readonly p50Us: number | undefined
  readonly p99Us: number | undefined
}

/**
 * What a client role runs: started once with a concurrency and a workload, then sampled at every mark.
 *
 * @since 0.1.0
 */
export interface LoadGenerator {
  start(concurrency: number, workload: Workload): void
  /** Returns what was measured since the previous mark and starts a new interval. */
  mark(): ClientSample
}

/**
 * Counts completed calls and their round trips between marks, for load generators that are not a `ClosedLoop`
 * (e.g. fibers calling a typed client): `record(startedAt)` once per completed call.
 *
 * @since 0.1.0
 */
export class CallRecorder {
  private readonly latency = new LatencyHistogram()
  private calls = 0
  private markedAt = performance.now()

  /** Records one completed call that started at `startedAt` (`performance.now()`). */
  record(startedAt: number): void {
    this.latency.record((performance.now() - startedAt) * 1000)
    this.calls++
  }

  mark(): ClientSample {
    const now = performance.now()
    const sample: ClientSample = {
      elapsedMs: now - this.markedAt,
      calls: this.calls,
      p50Us: this.latency.percentile(0.5),
      p99Us: this.latency.percentile(0.99),
    }
    this.markedAt = now
    this.calls = 0
    this.latency.reset()
    return sample
  }
}

/**
 * A closed loop: `start(c)` sends `c` calls, and every reply sends the next one, so exactly `c` calls are
 * outstanding. `send` must not throw for a healthy system; a throw ends the role (a broken run is not a result).
 *
 * @since 0.1.0
 */
export class ClosedLoop implements LoadGenerator {
  private readonly sentAt = new Map<number, number>()
  private readonly latency = new LatencyHistogram()
  private nextId = 0
  private calls = 0
  private markedAt = performance.now()
  private workload: Workload = "add"
  private readonly send: (payload: Uint8Array) => void

  constructor(send: (payload: Uint8Array) => void) {
    this.send = send
  }

  start(concurrency: number, workload: Workload = "add"): void {
    this.workload = workload
    for (let i = 0; i < concurrency; i++) this.issue()
  }

  /** Handles one reply payload: records its round trip and sends the next call. */
  onReply(payload: Uint8Array): void {
    const id = replyId(payload)
    const sentAt = this.sentAt.get(id)
    if (sentAt === undefined) return
    this.sentAt.delete(id)
    this.latency.record((performance.now() - sentAt) * 1000)
    this.calls++
    this.issue()
  }

  /** Returns what was measured since the previous mark and starts a new interval. */
  mark(): ClientSample {
    const now = performance.now()
    const sample: ClientSample = {
      elapsedMs: now - this.markedAt,
      calls: this.calls,
      p50Us: this.latency.percentile(0.5),
      p99Us: this.latency.percentile(0.99),
    }
    this.markedAt = now
    this.calls = 0
    this.latency.reset()
    return sample
  }

  private issue(): void {
    const id = this.nextId++
    this.sentAt.set(id, performance.now())
    this.send(encodeRequest(id, this.workload))
  }
}

/**
 * The reference way of sending with zeromq.js: one `send` in flight per socket, later messages wait in an
 * array and are sent one ZeroMQ message each, in order, each awaited.
 *
 * @since 0.1.0
 */
export const awaitedSendQueue = <M>(send: (message: M) => Promise<void>): ((message: M) => void) => {
  const queue: Array<M> = []
  let draining = false
  const drain = async (): Promise<void> => {
    draining = true
    try {
      while (queue.length > 0) await send(queue.shift()!)
    } finally {
      draining = false
    }
  }
  return (message) => {
    queue.push(message)
    if (!draining) drain().catch(die)
  }
}

/**
 * Coalesces the messages of one microtask turn: `flush` gets them all at the end of the turn, in order.
 *
 * @since 0.1.0
 */
export const turnBatcher = (flush: (batch: Array<Uint8Array>) => void): ((payload: Uint8Array) => void) => {
  let batch: Array<Uint8Array> = []
  const send = (): void => {
    const full = batch
    batch = []
    flush(full)
  }
  return (payload) => {
    if (batch.push(payload) === 1) queueMicrotask(send)
  }
}

// --- control channel (role side) ---------------------------------------------------------------------------

/** Orchestrator to role. @since 0.1.0 */
export type Control =
  | { readonly type: "start"; readonly concurrency: number; readonly workload?: Workload | undefined }
  | { readonly type: "mark" }
  | { readonly type: "stop" }

/** Role to orchestrator. @since 0.1.0 */
export type RoleReport =
  | { readonly type: "ready"; readonly endpoint: string }
  | {
      readonly type: "mark"
      /** CPU time of the whole process (all threads, user + system) since the previous mark, in µs. */
      readonly cpuUs: number
      /** Peak resident set size so far, in KiB. */
      readonly maxRssKiB: number
      readonly sample: ClientSample | undefined
      /** Cumulative counters of the system under test (e.g. its transport's), when the role has any. */
      readonly counters?: { readonly [name: string]: number } | undefined
    }

/**
 * The zactor transport options a role was given (a JSON object argument, from `--max-batch` / `--early-batch`), or
 * none (the transport's defaults).
 *
 * @since 0.1.0
 */
export const transportOptions = (
  json: string | undefined,
): { readonly maxBatchMessages?: number; readonly earlyBatchMessages?: number } =>
  json === undefined ? {} : (JSON.parse(json) as { maxBatchMessages?: number; earlyBatchMessages?: number })

/** Ends a role on an unexpected error: a benchmark with a broken role has no result worth keeping. @since 0.1.0 */
export const die = (error: unknown): never => {
  console.error(`bench role ${process.pid} failed:`, error)
  process.exit(1)
}

/**
 * The environment variable that turns on CPU profiling of a role: the file to write the main thread's profile
 * to. The profile covers the measured interval only (from the first mark, after warm-up, to `stop`), not start-up.
 *
 * @since 0.1.0
 */
export const CPU_PROFILE_ENV = "ZACTOR_BENCH_CPU_PROFILE"

/** Sampling interval of role profiles, in µs (V8's default is 1000). @since 0.1.0 */
export const CPU_PROFILE_INTERVAL_US = 200

interface CallFrame {
  functionName: string
  url: string
  lineNumber: number
  columnNumber: number
}

interface ProfileNode {
  callFrame: CallFrame
}

interface HeapProfileNode {
  callFrame: CallFrame
  children: Array<HeapProfileNode>
}

/**
 * The environment variable that turns on allocation profiling of a role (instead of CPU): the file to write
 * the sampled allocations to, over the same interval as CPU profiles.
 *
 * @since 0.1.0
 */
export const HEAP_PROFILE_ENV = "ZACTOR_BENCH_HEAP_PROFILE"

/** Sampling interval of allocation profiles, in bytes. @since 0.1.0 */
export const HEAP_PROFILE_INTERVAL_BYTES = 1024

/**
 * Maps a position in a transpiled file (tsx emits one line per module; effect ships dist/*.js) back to its
 * source with the source maps this process loaded, which must be done here: only this process has them.
 */
const mapToSource = (frame: CallFrame): void => {
  if (!frame.url.startsWith("file://")) return
  const entry = findSourceMap(frame.url)?.findEntry(frame.lineNumber, frame.columnNumber)
  if (entry === undefined || !("originalSource" in entry)) return
  frame.url = entry.originalSource
  frame.lineNumber = entry.originalLine
  frame.columnNumber = entry.originalColumn
}

/**
 * Profiles this process's main thread through the inspector: CPU, or with `heap` the allocations (sampled every
 * `HEAP_PROFILE_INTERVAL_BYTES`, including objects already collected). Positions are mapped to sources.
 * `ZACTOR_BENCH_HEAP_LIVE=1` keeps only objects still live at the end; `=2` only those that outlived a young
 * collection (promoted), which shows what makes scavenges slow.
 */
class RoleProfiler {
  private readonly session = new Session()
  private started: Promise<void> | undefined
  private readonly heap: boolean

  constructor(heap: boolean) {
    this.heap = heap
  }

  start(): void {
    if (this.started !== undefined) return
    this.session.connect()
    this.started = this.heap
      ? (async () => {
          await this.session.post("HeapProfiler.enable")
          await this.session.post("HeapProfiler.startSampling", {
            samplingInterval: HEAP_PROFILE_INTERVAL_BYTES,
            includeObjectsCollectedByMajorGC: process.env.ZACTOR_BENCH_HEAP_LIVE !== "1",
            includeObjectsCollectedByMinorGC: process.env.ZACTOR_BENCH_HEAP_LIVE === undefined,
          })
        })()
      : (async () => {
          await this.session.post("Profiler.enable")
          await this.session.post("Profiler.setSamplingInterval", { interval: CPU_PROFILE_INTERVAL_US })
          await this.session.post("Profiler.start")
        })()
  }

  async stop(file: string): Promise<void> {
    if (this.started === undefined) return
    await this.started
    if (this.heap) {
      const { profile } = (await this.session.post("HeapProfiler.stopSampling")) as {
        profile: { head: HeapProfileNode }
      }
      const visit = (node: HeapProfileNode): void => {
        mapToSource(node.callFrame)
        for (const child of node.children) visit(child)
      }
      visit(profile.head)
      writeFileSync(file, JSON.stringify(profile))
    } else {
      const { profile } = (await this.session.post("Profiler.stop")) as { profile: { nodes: Array<ProfileNode> } }
      for (const node of profile.nodes) mapToSource(node.callFrame)
      writeFileSync(file, JSON.stringify(profile))
    }
    this.session.disconnect()
  }
}

/**
 * Serves the orchestrator's commands in a role process: `start` (clients), `mark` (CPU and, for clients, the
 * closed loop's sample since the previous mark, plus `counters()` if given) and `stop`. Exits when the
 * orchestrator goes away. With `CPU_PROFILE_ENV` set, profiles the main thread from the first mark to `stop`.
 *
 * @since 0.1.0
 */
export const serveControl = (
  loop: LoadGenerator | undefined,
  counters?: () => { readonly [name: string]: number },
): void => {
  let lastCpu = process.cpuUsage()
  const heapFile = process.env[HEAP_PROFILE_ENV]
  const profileFile = heapFile ?? process.env[CPU_PROFILE_ENV]
  const profiler = profileFile === undefined ? undefined : new RoleProfiler(heapFile !== undefined)
  process.on("message", (message: Control) => {
    switch (message.type) {
      case "start":
        loop?.start(message.concurrency, message.workload ?? "add")
        return
      case "mark": {
        const cpu = process.cpuUsage()
        const cpuUs = cpu.user - lastCpu.user + (cpu.system - lastCpu.system)
        lastCpu = cpu
        const maxRssKiB = process.resourceUsage().maxRSS
        reportToParent({ type: "mark", cpuUs, maxRssKiB, sample: loop?.mark(), counters: counters?.() })
        profiler?.start()
        return
      }
      case "stop":
        if (profiler === undefined || profileFile === undefined) process.exit(0)
        else profiler.stop(profileFile).then(() => process.exit(0), die)
    }
  })
  process.once("disconnect", () => process.exit(0))
}

/** Sends a report to the orchestrator. @since 0.1.0 */
export const reportToParent = (report: RoleReport | RoleMessage): void => {
  if (process.send === undefined) die(new Error("bench roles run under a *.bench.ts orchestrator (no IPC channel)"))
  else process.send(report)
}

/** Any message between an orchestrator and a role: a `type` and fields (delivery.bench.ts's own protocol). @since 0.1.0 */
export type RoleMessage = { readonly type: string } & { readonly [field: string]: unknown }

// --- orchestrator side -------------------------------------------------------------------------------------

const benchDir = import.meta.dirname
const packageDir = resolve(benchDir, "..")
// ZACTOR_BENCH_NODE_ARGS adds Node/V8 flags to every role, for diagnosis (e.g. "--trace-gc-nvp").
const extraNodeArgs = (process.env.ZACTOR_BENCH_NODE_ARGS ?? "").split(" ").filter((arg) => arg !== "")
const nodeArgs = ["--conditions=@zactor/source", "--import", "tsx", ...extraNodeArgs]
const running = new Set<ChildProcess>()

/** Kills every role process still running, by PID. @since 0.1.0 */
export const killRoles = (): void => {
  for (const child of running) {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(child.pid, "SIGKILL")
      } catch {
        // Exited between the check and the kill.
      }
    }
  }
}

/** Makes sure no role outlives the orchestrator: killed on exit and on SIGINT, SIGTERM and SIGHUP. @since 0.1.0 */
export const killRolesOnExit = (): void => {
  process.on("exit", killRoles)
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(signal, () => {
      killRoles()
      process.exit(130)
    })
  }
}

/**
 * Whether roles can be pinned to CPUs 0 and 1 with `taskset` (Linux, util-linux, at least two CPUs).
 *
 * @since 0.1.0
 */
export const canPin = (): boolean =>
  availableParallelism() >= 2 && spawnSync("taskset", ["-c", "1", "true"], { stdio: "ignore" }).status === 0

/** A running role process. @since 0.1.0 */
export class Role {
  readonly file: string
  readonly child: ChildProcess
  readonly exited: Promise<void>
  private readonly waiting = new Map<string, { resolve(r: RoleMessage): void; reject(e: Error): void }>()
  /** Messages that arrived while nobody waited for their type, by type (the latest). */
  private readonly unclaimed = new Map<string, RoleMessage>()

  /**
   * Starts `bench/<file>` with `args`, pinned to `cpu` when given (the whole process, every thread);
   * `env` is added to this process's environment (e.g. `CPU_PROFILE_ENV`).
   */
  constructor(
    file: string,
    args: ReadonlyArray<string>,
    cpu: number | undefined,
    env: { readonly [name: string]: string } = {},
  ) {
    this.file = file
    const nodeCommand = [process.execPath, ...nodeArgs, resolve(benchDir, file), ...args]
    // taskset execs node in place, so the PID, the IPC channel and the affinity of every later thread carry over.
    const [command, ...commandArgs] = cpu === undefined ? nodeCommand : ["taskset", "-c", String(cpu), ...nodeCommand]
    this.child = spawn(command!, commandArgs, {
      cwd: packageDir,
      env: { ...process.env, ...env },
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    })
    running.add(this.child)
    this.exited = new Promise((done) => {
      this.child.once("exit", (code, signal) => {
        running.delete(this.child)
        const error = new Error(`${file} exited (${signal ?? `status ${code}`})`)
        for (const waiter of this.waiting.values()) waiter.reject(error)
        this.waiting.clear()
        done()
      })
    })
    this.child.on("message", (report: RoleMessage) => {
      const waiter = this.waiting.get(report.type)
      this.waiting.delete(report.type)
      // Kept until asked for: two roles started together may report "ready" in either order.
      if (waiter === undefined) this.unclaimed.set(report.type, report)
      else waiter.resolve(report)
    })
  }

  /** Waits for the next report of a type, failing if the role exits first or after `timeoutMs`. */
  next<T extends RoleReport["type"]>(type: T, timeoutMs: number): Promise<Extract<RoleReport, { type: T }>> {
    return this.nextMessage(type, timeoutMs) as Promise<Extract<RoleReport, { type: T }>>
  }

  /** Sends a message of the role's own protocol and waits for the reply of type `reply`. */
  ask(message: RoleMessage, reply: string, timeoutMs = 10_000): Promise<RoleMessage> {
    // A reply left over from an earlier ask that timed out is not this one's.
    this.unclaimed.delete(reply)
    const answer = this.nextMessage(reply, timeoutMs)
    if (this.child.connected) this.child.send(message)
    return answer
  }

  /** Waits for the next message of any type. */
  nextMessage(type: string, timeoutMs: number): Promise<RoleMessage> {
    const early = this.unclaimed.get(type)
    if (early !== undefined) {
      this.unclaimed.delete(type)
      return Promise.resolve(early)
    }
    return new Promise((resolvePromise, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(type)
        reject(new Error(`${this.file} sent no "${type}" within ${timeoutMs} ms`))
      }, timeoutMs)
      this.waiting.set(type, {
        resolve: (report) => {
          clearTimeout(timer)
          resolvePromise(report)
        },
        reject: (error) => {
          clearTimeout(timer)
          reject(error)
        },
      })
    })
  }

  send(control: Control): void {
    if (this.child.connected) this.child.send(control)
  }

  /** Asks for a mark and waits for it. */
  mark(): Promise<Extract<RoleReport, { type: "mark" }>> {
    const reply = this.next("mark", 10_000)
    this.send({ type: "mark" })
    return reply
  }

  /** Asks the role to exit, and kills it by PID if it has not after `graceMs` (a CPU profile takes a while to write). */
  async stop(graceMs = 2000): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return
    this.send({ type: "stop" })
    const timer = setTimeout(() => {
      if (this.child.pid !== undefined) process.kill(this.child.pid, "SIGKILL")
    }, graceMs)
    await this.exited
    clearTimeout(timer)
  }
}

// --- command line ----------------------------------------------------------------------------------------------

/** The flags of a benchmark, as `node:util`'s `parseArgs` options. @since 0.1.0 */
export type FlagSpec = { readonly [flag: string]: { readonly type: "string" | "boolean" } }

/** Parsed flags with the checks every benchmark needs. @since 0.1.0 */
export interface BenchFlags {
  readonly values: { readonly [flag: string]: string | boolean | undefined }
  /** A positive number flag, or `fallback` when absent; exits with the usage when invalid. */
  readonly positive: (flag: string, fallback: number) => number
  /** A positive integer flag (rounded). */
  readonly count: (flag: string, fallback: number) => number
  /** A comma-separated list flag of values from `allowed`, or `fallback`. */
  readonly list: <T extends string>(flag: string, allowed: ReadonlyArray<T>, fallback?: ReadonlyArray<T>) => Array<T>
  /** A comma-separated list of positive integers, or `fallback`. */
  readonly counts: (flag: string, fallback: ReadonlyArray<number>) => Array<number>
  /** `--seconds`, `--rounds`, `--warmup`, with `--quick` (1 round of 1 s after 0.5 s) changing their defaults. */
  readonly seconds: number
  readonly rounds: number
  readonly warmupSeconds: number
}

/**
 * Parses this process's flags: `spec` plus the common `--seconds N` (3), `--rounds N` (3), `--warmup N` (1),
 * `--quick` and `--help` (prints `usage`). Invalid values print the usage and exit with status 2.
 *
 * @since 0.1.0
 */
export const parseFlags = (usage: string, spec: FlagSpec): BenchFlags => {
  const { values } = parseArgs({
    // pnpm forwards a literal "--" when it is written before the flags; it separates nothing here.
    args: process.argv.slice(2).filter((arg) => arg !== "--"),
    options: {
      ...spec,
      seconds: { type: "string" },
      rounds: { type: "string" },
      warmup: { type: "string" },
      quick: { type: "boolean" },
      help: { type: "boolean" },
    },
  }) as { values: { readonly [flag: string]: string | boolean | undefined } }
  if (values.help === true) {
    console.log(usage)
    process.exit(0)
  }
  const invalid = (message: string): never => {
    console.error(`${message}\n${usage}`)
    process.exit(2)
  }
  const text = (flag: string): string | undefined => {
    const value = values[flag]
    return typeof value === "string" ? value : undefined
  }
  const number = (flag: string, raw: string): number => {
    const value = Number(raw)
    return Number.isFinite(value) && value > 0 ? value : invalid(`--${flag} must be a positive number, got "${raw}"`)
  }
  const positive = (flag: string, fallback: number): number => {
    const raw = text(flag)
    return raw === undefined ? fallback : number(flag, raw)
  }
  const count = (flag: string, fallback: number): number => Math.round(positive(flag, fallback))
  const list = <T extends string>(flag: string, allowed: ReadonlyArray<T>, fallback: ReadonlyArray<T> = allowed) =>
    (text(flag)?.split(",") ?? [...fallback]).map((item) =>
      allowed.includes(item as T) ? (item as T) : invalid(`unknown value "${item}" for --${flag}`),
    )
  const counts = (flag: string, fallback: ReadonlyArray<number>): Array<number> =>
    text(flag)
      ?.split(",")
      .map((item) => Math.round(number(flag, item))) ?? [...fallback]
  const quick = values.quick === true
  return {
    values,
    positive,
    count,
    list,
    counts,
    seconds: positive("seconds", quick ? 1 : 3),
    rounds: count("rounds", quick ? 1 : 3),
    warmupSeconds: positive("warmup", quick ? 0.5 : 1),
  }
}

// --- statistics and formatting ------------------------------------------------------------------------------

/** The median of the defined values, or `undefined` if there are none. @since 0.1.0 */
export const median = (values: ReadonlyArray<number | undefined>): number | undefined => {
  const sorted = values.filter((v): v is number => v !== undefined).sort((a, b) => a - b)
  if (sorted.length === 0) return undefined
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1]! + sorted[middle]!) / 2
}

/** Formats a rate like BENCHMARKS.md: `9508`, `74.8k`. @since 0.1.0 */
export const formatRate = (n: number | undefined): string => {
  if (n === undefined) return "-"
  if (n >= 1_000_000) return `${(n / 1_000_000).toFixed(2)}M`
  if (n >= 100_000) return `${(n / 1000).toFixed(0)}k`
  if (n >= 10_000) return `${(n / 1000).toFixed(1)}k`
  return n.toFixed(0)
}

/** Formats a value with about three significant digits. @since 0.1.0 */
export const formatNumber = (n: number | undefined): string => {
  if (n === undefined) return "-"
  if (n >= 100) return n.toFixed(0)
  if (n >= 10) return n.toFixed(1)
  return n.toFixed(2)
}

/** Renders rows as a Markdown table with aligned columns. @since 0.1.0 */
export const table = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]?.length ?? 0)))
  const line = (cells: ReadonlyArray<string>): string =>
    `| ${cells.map((cell, i) => (i < 2 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join(" | ")} |`
  const rule = `|${widths.map((w, i) => (i < 2 ? "-".repeat(w + 2) : `${"-".repeat(w + 1)}:`)).join("|")}|`
  return [line(header), rule, ...rows.map(line)].join("\n")
}
