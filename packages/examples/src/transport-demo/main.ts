/**
 * One-command demo of ZmqTransport across processes (`pnpm demo`): starts `server.ts` and `client.ts` as child
 * processes, shows the client's request/reply traffic live, SIGKILLs the server mid-run and restarts it on the
 * same port, and prints what the client saw: lost calls, transport events, how long replies stopped, and that
 * they resumed without the client doing anything. Exits 0 once replies resumed after the restart, 1 otherwise.
 * Children are killed by PID on every exit path (normal end, failure, Ctrl-C, deadline).
 *
 * @since 0.1.0
 */
import { type ChildProcess, fork } from "node:child_process"
import { resolve } from "node:path"
import type { ClientReport, Command, Progress, ServerReport, Tally } from "./protocol.ts"

const concurrency = 32
const runBeforeKillMs = 4000
const downtimeMs = 1500
const runAfterRecoveryMs = 2500
const deadlineMs = 45_000

const here = import.meta.dirname
const packageDir = resolve(here, "../..")
const startedAt = performance.now()
const children = new Set<ChildProcess>()

const killChildren = (): void => {
  for (const child of children) {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(child.pid, "SIGKILL")
      } catch {
        // Already gone between the check and the kill.
      }
    }
  }
}
process.on("exit", killChildren)
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.once(signal, () => {
    clearLine()
    console.log(`demo: ${signal}, stopping`)
    killChildren()
    process.exit(130)
  })
}

// --- output ------------------------------------------------------------------------------------------------------

const isTty = process.stdout.isTTY === true
let progressShown = false
let lastPlainProgressAt = 0

const elapsed = (): string => `[${((performance.now() - startedAt) / 1000).toFixed(2).padStart(5)}s]`
const number = (n: number): string => Math.round(n).toLocaleString("en-US")
const micros = (us: number | undefined): string => (us === undefined ? "-" : `${number(us)} µs`)

function clearLine(): void {
  if (isTty && progressShown) process.stdout.write("\r\x1b[2K")
  progressShown = false
}

const say = (text: string): void => {
  clearLine()
  console.log(`${elapsed()} ${text}`)
}

const showProgress = (p: Progress): void => {
  const line =
    `${elapsed()} ${number(p.callsPerSecond).padStart(7)} calls/s | in flight ${String(p.inFlight).padStart(3)} | ` +
    `p50 ${micros(p.p50Us).padStart(9)} | queued ${String(p.queued).padStart(3)} | ` +
    `done ${number(p.completed)} | timed out ${p.timedOut}`
  if (isTty) {
    process.stdout.write(`\r\x1b[2K${line}`)
    progressShown = true
  } else if (performance.now() - lastPlainProgressAt >= 1000) {
    // Without a terminal (CI, a pipe) a redrawn line would be noise: print one sample per second instead.
    console.log(line)
    lastPlainProgressAt = performance.now()
  }
}

// --- child processes ---------------------------------------------------------------------------------------------

/** A role process and its reports, with a way to wait for the next report of a given type. */
class Role<R extends { readonly type: string }> {
  readonly name: string
  readonly child: ChildProcess
  readonly exited: Promise<void>
  private readonly waiters = new Set<{ readonly type: string; resolve(r: R): void; reject(e: Error): void }>()

  constructor(name: string, args: ReadonlyArray<string>, onReport: (report: R) => void = () => {}) {
    this.name = name
    this.child = fork(resolve(here, `${name}.ts`), args, {
      cwd: packageDir,
      execPath: process.execPath,
      // The roles are TypeScript run from source, like this file: the same loader and export condition.
      execArgv: ["--conditions=@zactor/source", "--import", "tsx"],
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    })
    children.add(this.child)
    this.exited = new Promise((done) => {
      this.child.once("exit", (code, signal) => {
        children.delete(this.child)
        for (const waiter of this.waiters) waiter.reject(new Error(`${name} exited (${signal ?? `status ${code}`})`))
        this.waiters.clear()
        done()
      })
    })
    this.child.on("message", (message) => {
      const report = message as R
      onReport(report)
      for (const waiter of this.waiters) {
        if (waiter.type !== report.type) continue
        this.waiters.delete(waiter)
        waiter.resolve(report)
      }
    })
  }

  get pid(): number {
    return this.child.pid ?? -1
  }

  next<T extends R["type"]>(type: T, timeoutMs: number): Promise<Extract<R, { readonly type: T }>> {
    return new Promise((resolvePromise, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(waiter)
        reject(new Error(`${this.name} sent no "${type}" within ${timeoutMs} ms`))
      }, timeoutMs)
      const waiter = {
        type,
        resolve: (r: R) => {
          clearTimeout(timer)
          resolvePromise(r as Extract<R, { readonly type: T }>)
        },
        reject: (e: Error) => {
          clearTimeout(timer)
          reject(e)
        },
      }
      this.waiters.add(waiter)
    })
  }

  send(command: Command): void {
    if (this.child.connected) this.child.send(command)
  }

  /** SIGTERM, then SIGKILL if it has not exited after `graceMs`. */
  async stop(graceMs: number): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return
    this.child.kill("SIGTERM")
    const timer = setTimeout(() => this.child.kill("SIGKILL"), graceMs)
    await this.exited
    clearTimeout(timer)
  }
}

const sleep = (ms: number): Promise<void> => new Promise((done) => setTimeout(done, ms))

/** Whether `promise` settles within `ms`; the timer is cleared either way so it cannot hold the process open. */
const settlesWithin = (promise: Promise<unknown>, ms: number): Promise<boolean> => {
  let timer: ReturnType<typeof setTimeout> | undefined
  const timeout = new Promise<boolean>((done) => {
    timer = setTimeout(() => done(false), ms)
  })
  return Promise.race([promise.then(() => true), timeout]).finally(() => clearTimeout(timer))
}

// --- the run -----------------------------------------------------------------------------------------------------

interface Timeline {
  /** From the SIGKILL to the new server listening. */
  readonly downMs: number
  /** From the new server listening to the first reply the client got from it. */
  readonly recoveryMs: number | undefined
  /** Calls the restarted server answered before it was stopped. */
  readonly served: number | undefined
}

const printTally = (tally: Tally, timeline: Timeline): void => {
  const row = (label: string, value: string): void => console.log(`  ${label.padEnd(22)} ${value}`)
  const seen = Object.entries(tally.events)
    .map(([tag, count]) => `${tag} ${count}`)
    .join(", ")
  const refused = Object.entries(tally.refused)
    .map(([reason, count]) => `${reason} ${count}`)
    .join(", ")
  console.log(`\nFinal tally (client, ${(tally.durationMs / 1000).toFixed(1)} s, ${concurrency} calls in flight):`)
  row("calls sent", number(tally.sent))
  row(
    "calls completed",
    `${number(tally.completed)} (avg ${number((tally.completed * 1000) / tally.durationMs)} calls/s, ` +
      `p50 ${micros(tally.p50Us)}, p99 ${micros(tally.p99Us)})`,
  )
  row("calls timed out", `${number(tally.timedOut)} (in flight when the server died, or queued while it was down)`)
  row("late replies", number(tally.late))
  row("refused by offer", refused === "" ? "0" : refused)
  row("dropped (SendFailed)", `${number(tally.sendFailedMessages)} payload(s)`)
  row("transport events", seen === "" ? "none" : seen)
  row("server down", `${number(timeline.downMs)} ms (SIGKILL until the new server was listening)`)
  row("longest reply gap", `${number(tally.longestGapMs)} ms (as the client saw it, reconnect backoff included)`)
  if (timeline.recoveryMs !== undefined) {
    row("replies resumed", `${number(timeline.recoveryMs)} ms after the new server was listening`)
  }
  if (timeline.served !== undefined) row("restarted server", `answered ${number(timeline.served)} calls`)
}

const main = async (): Promise<number> => {
  console.log(
    `zactor transport demo: a client keeps ${concurrency} "add" calls in flight to a server through ZmqTransport ` +
      `over TCP.\nThe server is killed with SIGKILL after ${runBeforeKillMs / 1000} s and restarted on the same ` +
      `port ${downtimeMs / 1000} s later; the client reconnects on its own.\n`,
  )

  const firstServer = new Role<ServerReport>("server", [])
  const { endpoint } = await firstServer.next("listening", 15_000)
  say(`server pid ${firstServer.pid} listening on ${endpoint}`)

  let latest: Progress | undefined
  const client = new Role<ClientReport>("client", [endpoint, String(concurrency)], (report) => {
    if (report.type === "event") say(`client: ${report.text}`)
    if (report.type === "resumed") say(`client: replies resumed after a ${number(report.gapMs)} ms gap`)
    if (report.type !== "progress") return
    latest = report
    showProgress(report)
  })
  const { peer } = await client.next("ready", 15_000)
  say(`client pid ${client.pid} connected as peer ${peer}`)

  await sleep(runBeforeKillMs)
  say(`SIGKILL server pid ${firstServer.pid} (${latest === undefined ? 0 : number(latest.inFlight)} calls in flight)`)
  const killedAt = performance.now()
  firstServer.child.kill("SIGKILL")
  let resumedAt: number | undefined
  const resumed = client.next("resumed", deadlineMs).then(
    () => {
      resumedAt = performance.now()
    },
    () => {},
  )
  await firstServer.exited

  await sleep(downtimeMs)
  const secondServer = new Role<ServerReport>("server", [endpoint])
  const relisten = await secondServer.next("listening", 15_000)
  const relistenedAt = performance.now()
  say(`server restarted as pid ${secondServer.pid} on ${relisten.endpoint}`)

  const recovered = (await settlesWithin(resumed, 8000)) && resumedAt !== undefined
  const recoveryMs = resumedAt === undefined ? undefined : resumedAt - relistenedAt
  if (recovered) await sleep(runAfterRecoveryMs)
  else say("no reply within 8 s of the restart")

  say("stopping the client (in-flight calls drain)")
  const final = client.next("final", 5000)
  client.send({ type: "stop" })
  const { tally } = await final
  await client.stop(2000)
  const stopped = secondServer.next("stopped", 2000).catch(() => undefined)
  await secondServer.stop(2000)
  const served = (await stopped)?.served

  printTally(tally, { downMs: relistenedAt - killedAt, recoveryMs, served })
  console.log(
    recovered
      ? "\nThe client kept its peer across the server's death and restart: ZeroMQ reconnected underneath."
      : "\nReplies did not resume after the restart.",
  )
  return recovered ? 0 : 1
}

const deadline = setTimeout(() => {
  say(`demo: not finished after ${deadlineMs / 1000} s, giving up`)
  killChildren()
  process.exit(1)
}, deadlineMs)
deadline.unref()

main()
  .then(
    (code) => {
      process.exitCode = code
    },
    (error: unknown) => {
      say(`demo failed: ${error instanceof Error ? error.message : String(error)}`)
      process.exitCode = 1
    },
  )
  .finally(() => {
    killChildren()
    clearTimeout(deadline)
  })
