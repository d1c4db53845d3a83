/**
 * `pnpm bench:delivery`: what at-least-once delivery with idempotency keys costs, against plain calls, measured
 * in the same run. A client process (CPU 0) and server processes (CPU 1, with `taskset` where available) talk over
 * loopback TCP; the client keeps `c` calls of `Adder.add` outstanding through the typed client, one fiber per call
 * in flight.
 *
 * Systems:
 * - `plain`: the method's default delivery, at most once: one REQUEST, one REPLY.
 * - `at-least-once`: ACK requested (the callee sends an ACK before the reply), an ACK timer per attempt, and a
 *   caller-given idempotency key per call, which the callee looks up in its dedupe store (the default in-memory
 *   window) and records the outcome under. Same server process as `plain`.
 * - `at-least-once-file`: the same against a server whose dedupe store is a `FileDedupeStore` (a claim and an
 *   outcome written per call, synchronously; by default on tmpfs, `--dedupe-dir` to change).
 *
 * Each round measures every system once, in rotating order, after a warm-up of the same client fibers; the
 * median of `rounds` rounds is reported with the ratio to `plain`. Writes every round to
 * `.bench/delivery-<timestamp>.json` at the repo root. A benchmark, not a test: it exits non-zero only when a run
 * breaks, never because a target was missed.
 *
 * Flags: `--seconds N` (3), `--rounds N` (3), `--warmup N` seconds (1), `--concurrency N` (32),
 * `--systems plain,at-least-once,at-least-once-file`, `--dedupe-dir DIR` (default /dev/shm if writable, else the
 * OS temp dir), `--file-ttl MS` (the file store's window, 5000: long enough to answer every retry of the run,
 * short enough that the sweep keeps the directory small), `--quick` (1 round of 1 s after 0.5 s of warm-up).
 *
 * @since 0.1.0
 */
import { type ChildProcess, spawn } from "node:child_process"
import { accessSync, constants, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { cpus, release, tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { parseArgs } from "node:util"
import { canPin, formatNumber, formatRate, median, table } from "./harness.ts"

const systems = ["plain", "at-least-once", "at-least-once-file"] as const
type System = (typeof systems)[number]
const TARGET = 0.7

const usage = `usage: pnpm bench:delivery [--seconds N] [--rounds N] [--warmup N] [--concurrency N]
                           [--systems ${systems.join(",")}] [--dedupe-dir DIR] [--file-ttl MS] [--quick]`

const { values: flags } = parseArgs({
  args: process.argv.slice(2).filter((arg) => arg !== "--"),
  options: {
    seconds: { type: "string" },
    rounds: { type: "string" },
    warmup: { type: "string" },
    concurrency: { type: "string" },
    systems: { type: "string" },
    "dedupe-dir": { type: "string" },
    "file-ttl": { type: "string" },
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
const concurrency = Math.round(positive("concurrency", flags.concurrency, 32))
const fileTtlMs = Math.round(positive("file-ttl", flags["file-ttl"], 5000))
const selected = (flags.systems ?? systems.join(",")).split(",").map((name) => {
  if (!(systems as ReadonlyArray<string>).includes(name)) {
    console.error(`unknown system "${name}"\n${usage}`)
    process.exit(2)
  }
  return name as System
})
const dedupeBase =
  flags["dedupe-dir"] ??
  (() => {
    try {
      accessSync("/dev/shm", constants.W_OK)
      return "/dev/shm"
    } catch {
      return tmpdir()
    }
  })()
const pinned = canPin()

// --- roles ---------------------------------------------------------------------------------------------------

const benchDir = import.meta.dirname
const running = new Set<ChildProcess>()
const killAll = () => {
  for (const child of running) {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(child.pid, "SIGKILL")
      } catch {
        // Exited meanwhile.
      }
    }
  }
}
process.on("exit", killAll)
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.once(signal, () => {
    killAll()
    process.exit(130)
  })
}

type Message = { readonly type: string } & Record<string, unknown>

/** A role process with an IPC channel; `ask` sends a message and waits for the reply of a type. */
class RoleProcess {
  readonly child: ChildProcess
  private readonly waiting = new Map<string, (message: Message) => void>()

  constructor(file: string, args: ReadonlyArray<string>, cpu: number | undefined) {
    const node = [process.execPath, "--conditions=@zactor/source", "--import", "tsx", resolve(benchDir, file), ...args]
    // taskset execs node in place: the PID, the IPC channel and the affinity of every later thread carry over.
    const [command, ...commandArgs] = cpu === undefined ? node : ["taskset", "-c", String(cpu), ...node]
    this.child = spawn(command!, commandArgs, {
      cwd: resolve(benchDir, ".."),
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    })
    running.add(this.child)
    this.child.on("message", (message: Message) => {
      const waiter = this.waiting.get(message.type)
      this.waiting.delete(message.type)
      waiter?.(message)
    })
    this.child.once("exit", (code, signal) => {
      running.delete(this.child)
      if (this.waiting.size > 0) {
        console.error(`${file} exited (${signal ?? `status ${code}`}) while the benchmark waited for it`)
        process.exit(1)
      }
    })
  }

  next(type: string, timeoutMs: number): Promise<Message> {
    return new Promise((resolvePromise, reject) => {
      const timer = setTimeout(() => reject(new Error(`no "${type}" within ${timeoutMs} ms`)), timeoutMs)
      this.waiting.set(type, (message) => {
        clearTimeout(timer)
        resolvePromise(message)
      })
    })
  }

  ask(message: Message, reply: string, timeoutMs = 10_000): Promise<Message> {
    const answer = this.next(reply, timeoutMs)
    this.child.send(message)
    return answer
  }

  stop(): void {
    this.child.disconnect()
  }
}

// --- run -------------------------------------------------------------------------------------------------------

interface Sample {
  readonly round: number
  readonly system: System
  readonly callsPerSecond: number
  readonly p50Us: number | undefined
  readonly p99Us: number | undefined
  readonly clientCpuUsPerCall: number
  readonly serverCpuUsPerCall: number
}

const main = async () => {
  const directory = mkdtempSync(join(dedupeBase, "zactor-delivery-bench-"))
  const [clientCpu, serverCpu] = pinned ? [0, 1] : [undefined, undefined]
  const memoryServer = new RoleProcess("delivery-server.ts", ["memory"], serverCpu)
  const fileServer = selected.includes("at-least-once-file")
    ? new RoleProcess("delivery-server.ts", ["file", directory, String(fileTtlMs)], serverCpu)
    : undefined
  try {
    const memoryEndpoint = String((await memoryServer.next("ready", 30_000)).endpoint)
    const fileEndpoint =
      fileServer === undefined ? undefined : String((await fileServer.next("ready", 30_000)).endpoint)
    const client = new RoleProcess(
      "delivery-client.ts",
      [memoryEndpoint, ...(fileEndpoint === undefined ? [] : [fileEndpoint])],
      clientCpu,
    )
    await client.next("ready", 30_000)
    console.log(
      `delivery benchmark: c=${concurrency}, ${rounds} round(s) of ${seconds} s after ${warmupSeconds} s of warm-up, ` +
        `${pinned ? "client on CPU 0, servers on CPU 1" : "not pinned"}; file store in ${directory} (ttl ${fileTtlMs} ms)`,
    )
    const samples: Array<Sample> = []
    for (let round = 0; round < rounds; round++) {
      // Rotate the order so that no system always runs first (or after the same one).
      const order = selected.map((_, i) => selected[(i + round) % selected.length]!)
      for (const system of order) {
        const server = system === "at-least-once-file" ? fileServer! : memoryServer
        const endpoint = system === "at-least-once-file" ? fileEndpoint! : memoryEndpoint
        const cpuBefore = Number((await server.ask({ type: "cpu" }, "cpu")).cpuUs)
        const result = await client.ask(
          {
            type: "run",
            endpoint,
            mode: system === "plain" ? "plain" : "at-least-once",
            concurrency,
            warmupMs: warmupSeconds * 1000,
            measureMs: seconds * 1000,
          },
          "result",
          (warmupSeconds + seconds) * 1000 + 30_000,
        )
        // The server's CPU over warm-up and measurement, charged per call at the measured rate.
        const serverCpuUs = Number((await server.ask({ type: "cpu" }, "cpu")).cpuUs) - cpuBefore
        const calls = Number(result.calls)
        const elapsedMs = Number(result.elapsedMs)
        const callsPerSecond = (calls / elapsedMs) * 1000
        const sample: Sample = {
          round,
          system,
          callsPerSecond,
          p50Us: result.p50Us as number | undefined,
          p99Us: result.p99Us as number | undefined,
          clientCpuUsPerCall: Number(result.cpuUs) / calls,
          serverCpuUsPerCall: serverCpuUs / (callsPerSecond * (warmupSeconds + seconds)),
        }
        samples.push(sample)
        console.log(
          `  round ${round + 1} ${system}: ${formatRate(callsPerSecond)} calls/s, p50 ${formatNumber(sample.p50Us)} µs, ` +
            `p99 ${formatNumber(sample.p99Us)} µs`,
        )
      }
    }
    const medianOf = (system: System, field: keyof Omit<Sample, "round" | "system">) =>
      median(samples.filter((s) => s.system === system).map((s) => s[field]))
    const plainRate = medianOf("plain", "callsPerSecond")
    const rows = selected.map((system) => {
      const rate = medianOf(system, "callsPerSecond")
      const ratio = rate === undefined || plainRate === undefined ? undefined : rate / plainRate
      return [
        system,
        `c=${concurrency}`,
        `${formatRate(rate)} (${formatNumber(ratio)})`,
        formatNumber(medianOf(system, "p50Us")),
        formatNumber(medianOf(system, "p99Us")),
        formatNumber(medianOf(system, "clientCpuUsPerCall")),
        formatNumber(medianOf(system, "serverCpuUsPerCall")),
      ]
    })
    console.log()
    console.log(
      table(
        ["system", "load", "calls/s (ratio)", "p50 µs", "p99 µs", "client CPU µs/call", "server CPU µs/call"],
        rows,
      ),
    )
    console.log()
    for (const system of selected.filter((s) => s !== "plain")) {
      const rate = medianOf(system, "callsPerSecond")
      if (rate === undefined || plainRate === undefined) continue
      const ratio = rate / plainRate
      const verdict = ratio >= TARGET ? "meets" : "MISSES"
      console.log(`${system}: ${ratio.toFixed(2)}x plain calls/s (${verdict} the ${TARGET}x target)`)
    }
    const out = resolve(benchDir, "../../../.bench")
    mkdirSync(out, { recursive: true })
    const file = join(out, `delivery-${new Date().toISOString().replace(/[:.]/g, "-")}.json`)
    writeFileSync(
      file,
      JSON.stringify(
        {
          date: new Date().toISOString(),
          node: process.version,
          os: release(),
          cpus: cpus().length,
          pinned,
          concurrency,
          seconds,
          rounds,
          warmupSeconds,
          fileTtlMs,
          dedupeDirectory: directory,
          samples,
        },
        null,
        2,
      ),
    )
    console.log(`rounds written to ${file}`)
    client.stop()
  } finally {
    memoryServer.stop()
    fileServer?.stop()
    // Let the roles exit on their own (disconnect), then make sure.
    await new Promise((done) => setTimeout(done, 300))
    killAll()
    rmSync(directory, { recursive: true, force: true })
  }
}

main().catch((error) => {
  console.error("delivery benchmark failed:", error)
  killAll()
  process.exit(1)
})
