/**
 * The worker-pool demo (`pnpm demo` at the repository root): a pool of three supervised worker processes serves
 * `Jobs`, 32 callers keep calling it, and a chaos loop kills a worker with SIGKILL every 2 seconds, three times.
 * The supervisor restarts each one; calls caught on a dead worker are retried on another, and the shared dedupe
 * store keeps every job's side effect to exactly one ledger line. Prints progress while it runs and a tally at
 * the end; exits 0 only if no call was lost or failed and no effect was doubled or missing.
 *
 * Settings (environment): `ZACTOR_DEMO_SECONDS` (load duration, default 9), `ZACTOR_DEMO_KILLS` (default 3).
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { extname, join } from "node:path"
import { DedupeStore, Node, type RpcError, WorkerPool } from "@zactor/core"
import { Effect, Fiber, Stream } from "effect"
import { build } from "esbuild"
import { Jobs } from "./contract.ts"

const seconds = Number(process.env.ZACTOR_DEMO_SECONDS ?? 9)
const kills = Number(process.env.ZACTOR_DEMO_KILLS ?? 3)
const killEveryMs = 2_000
const callers = 32
const tty = process.stdout.isTTY === true

const scratch = mkdtempSync(join(tmpdir(), "zactor-pool-demo-"))
const ledger = join(scratch, "ledger.txt")
const dedupeDirectory = join(scratch, "dedupe")
const statsDirectory = join(scratch, "stats")
mkdirSync(statsDirectory)
process.on("exit", () => rmSync(scratch, { recursive: true, force: true }))

const tally = { ok: 0, failed: new Map<string, number>(), started: 0, killed: [] as Array<number> }
const restarts: Array<number> = []
const succeeded = new Set<string>()
/** Calls started and not yet ended with a reply or an error: any left at the end never finished (lost). */
const unfinished = new Set<string>()
const say = (line: string): void => {
  if (tty) process.stdout.write("\r\x1b[2K")
  console.log(line)
}

/**
 * The worker as one JavaScript file, built once per run: a restarted worker then starts as plain `node`, in
 * tens of ms, instead of compiling TypeScript on every start. Native and CommonJS packages stay external.
 */
const bundleWorker = async (): Promise<string> => {
  // Inside this package's node_modules, so that Node resolves the external packages from it.
  const outfile = join(import.meta.dirname, "..", "..", "node_modules", ".cache", "worker-pool-demo", "worker.mjs")
  await build({
    entryPoints: [join(import.meta.dirname, `worker${extname(import.meta.filename)}`)],
    outfile,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    conditions: ["@zactor/source"],
    external: ["zeromq", "msgpackr", "pino", "pino-pretty"],
    logLevel: "warning",
  })
  return outfile
}
const workerEntry = await bundleWorker()

const program = Effect.gen(function* () {
  const node = yield* Node.makeZmq({ id: "pool-demo" })
  const pool = yield* WorkerPool.makeOn(
    node,
    Jobs,
    WorkerPool.processes({
      entry: workerEntry,
      args: [ledger, dedupeDirectory, statsDirectory],
      // Generous for a loaded machine; a bundled worker is usually ready in well under a second.
      readyTimeout: "30 seconds",
    }),
    { size: 3, spares: 1 },
  )
  const pids = () => pool.workers().flatMap((worker) => (worker.pid === undefined ? [] : [worker.pid]))
  say(`pool: 3 workers up (pids ${pids().join(", ")}), 1 spare; ${callers} callers for ${seconds} s`)

  const events = yield* Stream.runForEach(pool.events, (event) =>
    Effect.sync(() => {
      if (event._tag === "ChildExited") say(`  supervisor: ${event.child} exited (${event.reason._tag})`)
      if (event._tag === "ChildRestarted") {
        restarts.push(event.downtimeMs)
        say(`  supervisor: ${event.child} restarted, serving again ${event.downtimeMs} ms after it died`)
      }
    }),
  ).pipe(Effect.forkScoped)

  const startedAt = Date.now()
  const until = startedAt + seconds * 1000
  const caller = Effect.gen(function* () {
    while (Date.now() < until) {
      const job = `job-${++tally.started}`
      unfinished.add(job)
      const exit = yield* Effect.exit(
        pool.client.run({ job, n: tally.started % 1000 }, { idempotencyKey: job, timeout: "10 seconds" }),
      )
      unfinished.delete(job)
      if (exit._tag === "Success") {
        tally.ok++
        succeeded.add(job)
      } else {
        const error = exit.cause.reasons.find((reason) => reason._tag === "Fail")?.error as RpcError | undefined
        const kind =
          error?.message.includes(DedupeStore.OUTCOME_UNKNOWN) === true ? "outcome unknown" : (error?.code ?? "defect")
        tally.failed.set(kind, (tally.failed.get(kind) ?? 0) + 1)
      }
    }
  })

  const chaos = yield* Effect.gen(function* () {
    for (let i = 0; i < kills; i++) {
      yield* Effect.sleep(killEveryMs)
      const running = pool.workers().filter((worker) => worker.status === "running" && worker.pid !== undefined)
      const victim = running[Math.floor(Math.random() * running.length)]
      if (victim?.pid === undefined) continue
      process.kill(victim.pid, "SIGKILL")
      tally.killed.push(victim.pid)
      say(`✗ chaos: SIGKILL ${victim.id} (pid ${victim.pid}) with ${victim.outstanding} calls in flight`)
    }
  }).pipe(Effect.forkScoped)

  const progress = yield* Effect.gen(function* () {
    for (;;) {
      yield* Effect.sleep(tty ? "250 millis" : "1 second")
      const elapsed = (Date.now() - startedAt) / 1000
      const line = `  ${elapsed.toFixed(1)} s: ${tally.ok} calls ok (${Math.round(tally.ok / elapsed)}/s), retried ${node.metrics().retried}, workers ${pids().join(" ")}`
      if (tty) process.stdout.write(`\r\x1b[2K${line}`)
      else console.log(line)
    }
  }).pipe(Effect.forkScoped)

  // Each call has a 10 s deadline, so every caller ends soon after the load does; a call still running after that
  // (plus slack for a loaded machine) never finished: the callers are stopped and it stays in `unfinished`.
  yield* Effect.forEach(Array.from({ length: callers }), () => caller, {
    concurrency: "unbounded",
    discard: true,
  }).pipe(Effect.timeoutOption((seconds + 20) * 1000))
  const elapsed = (Date.now() - startedAt) / 1000
  yield* Fiber.join(chaos)
  // The last kill may land near the end of the load: give its restart time to show.
  for (let i = 0; i < 100 && restarts.length < tally.killed.length; i++) yield* Effect.sleep("100 millis")
  yield* Fiber.interrupt(progress)
  yield* pool.drain
  yield* Fiber.interrupt(events)
  return { elapsed, retried: node.metrics().retried }
})

const { elapsed, retried } = await Effect.runPromise(Effect.scoped(program))

// The ledger: one line per executed effect.
const effects = new Map<string, number>()
for (const line of readFileSync(ledger, "utf8").split("\n")) {
  const job = line.split(" ")[0]
  if (job) effects.set(job, (effects.get(job) ?? 0) + 1)
}
const duplicates = [...effects.values()].filter((count) => count > 1).length
const missing = [...succeeded].filter((job) => !effects.has(job)).length
// Lost, from the ledger rather than by subtraction: a call the client saw succeed whose effect is not there
// exactly once (missing, or doubled), plus a call that never ended with a reply or an error.
const notExactlyOnce = [...succeeded].filter((job) => effects.get(job) !== 1).length
const lost = notExactlyOnce + unfinished.size
let deduplicated = 0
for (const file of readdirSync(statsDirectory).filter((name) => name.endsWith(".json"))) {
  deduplicated += (JSON.parse(readFileSync(join(statsDirectory, file), "utf8")) as { deduplicated: number })
    .deduplicated
}
const uncertain = tally.failed.get("outcome unknown") ?? 0
const failed = [...tally.failed.values()].reduce((a, b) => a + b, 0) - uncertain
const row = (label: string, value: string | number) => console.log(`  ${label.padEnd(22)}${value}`)

console.log("")
console.log(
  `worker-pool demo: ${tally.started} calls in ${elapsed.toFixed(1)} s (${Math.round(tally.started / elapsed)}/s)`,
)
row("workers killed", `${tally.killed.length} (SIGKILL)`)
row("workers restarted", `${restarts.length} (serving again ${restarts.join(", ")} ms after dying)`)
row("calls succeeded", tally.ok)
row("calls retried", retried)
row("calls deduplicated", deduplicated)
// A keyed call whose handler was cut off mid-way by the kill: the effect may or may not have happened, so it
// is not run again (that could double it) and the caller gets a typed error saying so.
row("outcome unknown", `${uncertain} (handler killed mid-way; typed error, never re-run)`)
row("calls failed", `${failed}${failed > 0 ? ` ${JSON.stringify(Object.fromEntries(tally.failed))}` : ""}`)
row(
  "calls lost",
  `${lost} (${notExactlyOnce} succeeded without exactly one ledger line, ${unfinished.size} never finished)`,
)
row("ledger", `${effects.size} effects, ${duplicates} duplicated, ${missing} missing for succeeded calls`)
const healthy =
  failed === 0 && lost === 0 && duplicates === 0 && missing === 0 && restarts.length >= tally.killed.length
console.log(healthy ? "worker-pool demo: OK" : "worker-pool demo: FAILED")
process.exit(healthy ? 0 : 1)
