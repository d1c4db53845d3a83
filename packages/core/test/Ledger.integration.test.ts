// The side-effect ledger: a client makes 10,000 at-least-once calls with idempotency keys to `Ledger.append`,
// served by three worker processes (fixtures/ledger-worker.ts) that append one line per effect to a shared
// ledger file and share a FileDedupeStore directory, while a fault hits one worker: SIGKILL and restart, SIGSTOP
// for longer than the heartbeat timeout, or a network partition made with a network namespace and iptables.
// Every call the client saw succeed must have exactly one ledger line, written by the process its reply names;
// no key may have two lines, whatever the client saw; every call must end (success or typed error) by its
// deadline.

import { accessSync, constants, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import * as Harness from "@zactor/transport/testing/harness"
import { Effect, Stream } from "effect"
import { afterAll, afterEach, beforeAll } from "vitest"
import type { DeadLetterReason } from "../src/DeadLetter.ts"
import * as FileDedupeStore from "../src/FileDedupeStore.ts"
import type { NodeShape } from "../src/Node.ts"
import { RpcError } from "../src/RpcError.ts"
import { bundle } from "./fixtures/bundle.ts"
import { Ledger } from "./fixtures/ledgerContract.ts"
import * as NetNs from "./fixtures/netns.ts"
import { zmqNode } from "./fixtures.ts"

const { sh } = NetNs

const workerSource = new URL("./fixtures/ledger-worker.ts", import.meta.url).pathname
// Bundled once, so that a restarted worker starts in tens of ms: the kills must land while calls still run.
let workerScript = ""
beforeAll(async () => {
  workerScript = await bundle(workerSource)
}, 60_000)

const CALLS = 10_000
const CONCURRENCY = 32
const DEADLINE_MS = 10_000
/** Lateness allowed past a deadline: timers on a loaded 2-core machine fire late. */
const LATENESS_MS = 250

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

// --- workers -------------------------------------------------------------------------------------------------

interface Worker {
  readonly id: string
  readonly endpoint: string
  readonly launcher: ReadonlyArray<string> | undefined
  process: Harness.FixtureProcess
  /** Every process this worker slot has had, oldest first. */
  readonly pids: Array<number>
}

interface Run {
  readonly directory: string
  readonly ledgerFile: string
  readonly dedupeDirectory: string
}

const directories: Array<string> = []
// The dedupe directory goes on tmpfs where there is one, as docs/DELIVERY.md recommends: the file store survives
// process crashes, not host crashes, wherever it is, and on tmpfs its link/rename calls do not wait for a disk.
const base = (() => {
  try {
    accessSync("/dev/shm", constants.W_OK)
    return "/dev/shm"
  } catch {
    return tmpdir()
  }
})()
const newRun = (): Run => {
  const directory = mkdtempSync(join(base, "zactor-ledger-"))
  directories.push(directory)
  const ledgerFile = join(directory, "ledger.log")
  writeFileSync(ledgerFile, "")
  const dedupeDirectory = join(directory, "dedupe")
  mkdirSync(dedupeDirectory)
  return { directory, ledgerFile, dedupeDirectory }
}

const startProcess = (run: Run, id: string, endpoint: string, launcher: ReadonlyArray<string> | undefined) =>
  Harness.start(workerScript, {
    javascript: true,
    args: [id, endpoint, run.ledgerFile, run.dedupeDirectory],
    ...(launcher === undefined ? {} : { launcher }),
  })

const startWorker = async (
  run: Run,
  id: string,
  endpoint: string,
  launcher?: ReadonlyArray<string>,
): Promise<Worker> => {
  const process = await startProcess(run, id, endpoint, launcher)
  return { id, endpoint, launcher, process, pids: [process.pid] }
}

/** SIGKILL, then a new process in the same role on the same endpoint. */
const killAndRestart = async (run: Run, worker: Worker): Promise<void> => {
  await worker.process.kill()
  worker.process = await startProcess(run, worker.id, worker.endpoint, worker.launcher)
  worker.pids.push(worker.process.pid)
}

/** What a worker process reported last: its node's counters and its dedupe store's. */
interface WorkerSample {
  readonly worker: string
  /** Whether this process replaced a killed one. */
  readonly restarted: boolean
  readonly metrics: Record<string, number>
  readonly store: Record<string, number>
}

/** Latest sample of every worker process, polled while they live (a killed process keeps its last sample). */
const pollMetrics = (workers: ReadonlyArray<Worker>) => {
  const latest = new Map<number, WorkerSample>()
  let stopped = false
  const poll = async () => {
    while (!stopped) {
      const asked = workers.map(async (worker) => {
        const process = worker.process
        const before = process.messages.length
        process.send({ type: "metrics" })
        try {
          const reply = await process.waitForMessage(
            (m) => m.type === "metrics" && process.messages.indexOf(m) >= before,
            1000,
          )
          latest.set(reply.pid as number, {
            worker: worker.id,
            restarted: worker.pids[0] !== reply.pid,
            metrics: reply.metrics as Record<string, number>,
            store: reply.store as Record<string, number>,
          })
        } catch {
          // Killed, frozen or restarting: its last sample stands.
        }
      })
      await Promise.all(asked)
      await sleep(200)
    }
  }
  const done = poll()
  return {
    stop: async () => {
      stopped = true
      await done
      return latest
    },
  }
}

// --- the run ---------------------------------------------------------------------------------------------------

/** One fault injected during a run: what, on which endpoint, from `at` until `endAt` (restarted, thawed, healed). */
interface Fault {
  readonly what: string
  readonly worker: Worker
  readonly pid: number
  readonly at: number
  readonly endAt: number
  /** What the client saw of the faulty worker while the fault lasted, when watched. */
  readonly seen?: WorkerView | undefined
}

/** The client's view of one worker during a fault, sampled every 5 ms. */
interface WorkerView {
  /** Most calls outstanding on it at once: calls caught by the fault (sampling starts once it is in place). */
  readonly peakOutstanding: number
  /** Calls outstanding on it at the last sample, just before the fault ended. */
  readonly outstandingAtEnd: number
  /** When the client first saw it dead (liveness) or its connection lost, ms after the fault began. */
  readonly detectedAfterMs: number | undefined
}

/**
 * Watches how the client sees one worker: calls outstanding on it and whether it was declared dead or its
 * connection lost. Sampling starts `settleMs` after the fault began, so that replies already on their way when
 * it began are not counted as caught.
 */
const watchWorker = (client: NodeShape, endpoint: string, faultAt: number, settleMs = 50) => {
  let peak = 0
  let last = 0
  let detectedAt: number | undefined
  let timer: ReturnType<typeof setInterval> | undefined
  const sample = () => {
    const remote = client.remotes().find((r) => r.endpoint === endpoint)
    if (remote === undefined) return
    last = remote.outstanding
    peak = Math.max(peak, last)
    const connected = client.metricsSnapshot().peers.find((peer) => peer.endpoint === endpoint)?.connected
    if (detectedAt === undefined && (remote.liveness.state === "dead" || connected === false)) detectedAt = Date.now()
  }
  const starting = setTimeout(() => {
    timer = setInterval(sample, 5)
  }, settleMs)
  return {
    stop: (): WorkerView => {
      clearTimeout(starting)
      if (timer !== undefined) {
        sample()
        clearInterval(timer)
      }
      return {
        peakOutstanding: peak,
        outstandingAtEnd: last,
        detectedAfterMs: detectedAt === undefined ? undefined : detectedAt - faultAt,
      }
    },
  }
}

/** A connection event the client's transport reported. */
interface ConnectionEvent {
  readonly tag: "Connected" | "Disconnected"
  readonly endpoint: string
  readonly at: number
}

interface CallRecord {
  readonly key: string
  readonly value: number
  readonly startedAt: number
  readonly elapsedMs: number
  readonly pid: number | undefined
  readonly code: string | undefined
  readonly message: string | undefined
}

interface Report {
  readonly scenario: string
  readonly calls: number
  readonly succeeded: number
  readonly failedByCode: Record<string, number>
  readonly retried: number
  readonly acked: number
  readonly deduplicatedByWorkers: number
  readonly servedByWorkers: number
  readonly servedByRestartedWorkers: number
  readonly storeAnsweredFromStore: number
  readonly storeWaited: number
  readonly storeOutcomeUnknown: number
  readonly deadLettersByReason: Record<string, number>
  readonly ledgerLines: number
  readonly lost: number
  readonly duplicateEffects: number
  readonly unknownOutcomesWithEffect: number
  readonly maxElapsedMs: number
  readonly seconds: number
  readonly faults: ReadonlyArray<string>
  readonly faultStats: ReadonlyArray<FaultStats>
  readonly workers: Record<string, string>
}

/** What a fault did, from the client's records, the ledger and what the client saw. */
interface FaultStats extends Partial<WorkerView> {
  readonly what: string
  /** Calls answered by the other workers while the fault lasted. */
  readonly completedElsewhere: number
  /** Effects the faulty process made while the fault held, for calls begun after it started (frozen: none). */
  readonly effectsDuring: number
  /** Effects the faulty process made after the fault ended for calls sent before it ended (stale work). */
  readonly staleEffectsAfter: number
}

/** What a fault schedule is given: where to record its faults, how many calls were issued so far, the client. */
interface FaultContext {
  readonly faults: Array<Fault>
  readonly issued: () => number
  readonly client: NodeShape
}

/** How the calls are issued: `rate` calls per second at most; the last `holdBack` only after the faults end. */
interface Pacing {
  readonly rate: number
  readonly holdBack: number
}

/**
 * Makes the calls (paced, at most CONCURRENCY in flight) while `fault` runs, then checks the ledger and
 * returns the counts. Holding the last calls back until the faults are over makes sure that a restarted or
 * healed worker is called again, however long the faults took on a busy machine.
 */
const ledgerRun = (
  scenario: string,
  run: Run,
  workers: ReadonlyArray<Worker>,
  pacing: Pacing,
  fault: (context: FaultContext) => Promise<void>,
  afterCalls?: (client: NodeShape) => Promise<void>,
) =>
  Effect.gen(function* () {
    const client = yield* zmqNode({ id: "ledger-client", bind: [] })
    const deadLetters: Record<string, number> = {}
    yield* Stream.runForEach(client.deadLetters, (letter) =>
      Effect.sync(() => {
        deadLetters[letter.reason] = (deadLetters[letter.reason] ?? 0) + 1
      }),
    ).pipe(Effect.forkScoped)
    const connectionEvents: Array<ConnectionEvent> = []
    yield* Stream.runForEach(client.transport.events, (event) =>
      Effect.sync(() => {
        if (event._tag === "Connected" || event._tag === "Disconnected") {
          connectionEvents.push({ tag: event._tag, endpoint: event.endpoint, at: Date.now() })
        }
      }),
    ).pipe(Effect.forkScoped)
    for (const worker of workers) yield* client.connect(worker.endpoint)
    const metrics = pollMetrics(workers)
    const ledger = client.client(Ledger)
    const runId = Date.now().toString(36)
    const startedAt = Date.now()
    const faults: Array<Fault> = []
    let issued = 0
    let faultsEndedAt = 0
    const faultsDone = fault({ faults, issued: () => issued, client }).then(() => {
      faultsEndedAt = Date.now()
    })
    const paceMs = 1000 / pacing.rate
    const heldFrom = CALLS - pacing.holdBack
    const records = yield* Effect.forEach(
      Array.from({ length: CALLS }, (_, i) => i),
      (i) =>
        Effect.gen(function* () {
          if (i >= heldFrom) yield* Effect.promise(() => faultsDone)
          const due = (i >= heldFrom ? faultsEndedAt + (i - heldFrom) * paceMs : startedAt + i * paceMs) - Date.now()
          if (due > 0) yield* Effect.sleep(due)
          issued++
          const key = `${runId}-${i}`
          const callStarted = Date.now()
          const result = yield* Effect.result(
            ledger.append({ key, value: i }, { idempotencyKey: key, timeout: DEADLINE_MS }),
          )
          const elapsedMs = Date.now() - callStarted
          if (result._tag === "Success") {
            const pid = result.success.pid
            return { key, value: i, startedAt: callStarted, elapsedMs, pid, code: undefined, message: undefined }
          }
          const error: unknown = result.failure
          // Typed: an RpcError with a known code (the contract declares no application error).
          if (!RpcError.is(error)) throw new Error(`call ${i} failed with an untyped error: ${String(error)}`)
          const { code, message } = error
          return { key, value: i, startedAt: callStarted, elapsedMs, pid: undefined, code, message }
        }),
      { concurrency: CONCURRENCY },
    )
    const callsSeconds = (Date.now() - startedAt) / 1000
    yield* Effect.promise(() => faultsDone)
    if (afterCalls !== undefined) yield* Effect.promise(() => afterCalls(client))
    // Let stale work (a thawed or healed worker finishing old requests) land before the ledger is read.
    yield* Effect.sleep(1000)
    const workerMetrics = yield* Effect.promise(() => metrics.stop())
    const clientMetrics: Record<string, number> = { ...client.metrics() }
    yield* Effect.promise(() => Harness.stopAll())
    return check(scenario, run, records as Array<CallRecord>, {
      clientMetrics,
      workerMetrics,
      deadLetters,
      faults,
      connectionEvents,
      callsSeconds,
    })
  })

const check = (
  scenario: string,
  run: Run,
  records: ReadonlyArray<CallRecord>,
  observed: {
    readonly clientMetrics: Record<string, number>
    readonly workerMetrics: Map<number, WorkerSample>
    readonly deadLetters: Record<string, number>
    readonly faults: ReadonlyArray<Fault>
    readonly connectionEvents: ReadonlyArray<ConnectionEvent>
    readonly callsSeconds: number
  },
): Report => {
  const lines = new Map<string, Array<{ value: number; pid: number; at: number }>>()
  const text = readFileSync(run.ledgerFile, "utf8")
  let ledgerLines = 0
  for (const line of text.split("\n")) {
    if (line === "") continue
    ledgerLines++
    const [key, value, pid, at] = line.split(" ")
    assert.isDefined(at, `malformed ledger line "${line}"`)
    lines.set(key!, [...(lines.get(key!) ?? []), { value: Number(value), pid: Number(pid), at: Number(at) }])
  }
  let succeeded = 0
  let lost = 0
  let unknownOutcomesWithEffect = 0
  const failedByCode: Record<string, number> = {}
  const problems: Array<string> = []
  for (const record of records) {
    const effects = lines.get(record.key) ?? []
    if (record.code === undefined) {
      succeeded++
      if (effects.length === 0) {
        lost++
        problems.push(`${record.key}: succeeded (pid ${record.pid}) but has no ledger line`)
      } else if (effects.length === 1 && (effects[0]!.pid !== record.pid || effects[0]!.value !== record.value)) {
        // The reply must be the outcome of the one effect, even when another process answered it from the store.
        problems.push(`${record.key}: reply names pid ${record.pid}, the ledger line ${JSON.stringify(effects[0])}`)
      }
    } else {
      failedByCode[record.code] = (failedByCode[record.code] ?? 0) + 1
      if (record.message?.includes(FileDedupeStore.OUTCOME_UNKNOWN) && effects.length === 1) {
        unknownOutcomesWithEffect++
      }
    }
    if (record.elapsedMs > DEADLINE_MS + LATENESS_MS) {
      problems.push(`${record.key}: ended after ${record.elapsedMs} ms, past its ${DEADLINE_MS} ms deadline`)
    }
  }
  let duplicateEffects = 0
  for (const [key, effects] of lines) {
    if (effects.length > 1) {
      duplicateEffects += effects.length - 1
      problems.push(`${key}: ${effects.length} ledger lines ${JSON.stringify(effects)}`)
    }
  }
  const samples = [...observed.workerMetrics.values()]
  const sum = (name: string) => samples.reduce((total, m) => total + (m.metrics[name] ?? 0), 0)
  const sumStore = (name: string) => samples.reduce((total, m) => total + (m.store[name] ?? 0), 0)
  const events = observed.connectionEvents
  const firstAfter = (tag: ConnectionEvent["tag"], endpoint: string, at: number) =>
    events.find((e) => e.tag === tag && e.endpoint === endpoint && e.at >= at)
  const recordOf = new Map(records.map((record) => [record.key, record]))
  const faults = observed.faults.map((fault) => {
    const down = firstAfter("Disconnected", fault.worker.endpoint, fault.at)
    const up = firstAfter("Connected", fault.worker.endpoint, fault.endAt)
    // Calls the client sent before it saw the fault whose effect the faulty process made after the fault began:
    // the work a frozen or cut-off worker finished late (for a killed one, none).
    const seenAt = down?.at ?? fault.endAt
    const caught = [...lines]
      .filter(([key]) => (recordOf.get(key)?.startedAt ?? Number.POSITIVE_INFINITY) <= seenAt)
      .flatMap(([, effects]) => effects)
      .filter((effect) => effect.pid === fault.pid && effect.at >= fault.at)
    const late = caught.filter((effect) => effect.at >= fault.endAt)
    return (
      `${fault.what} (pid ${fault.pid}): client saw the disconnect after ` +
      `${down === undefined ? "never" : `${down.at - fault.at} ms`}, reconnected ` +
      `${up === undefined ? "never" : `${up.at - fault.endAt} ms`} after it ended; ${caught.length} effects made ` +
      `by that process after the fault began for calls sent before it was seen, ${late.length} of them after it ended`
    )
  })
  const faultStats = observed.faults.map((fault): FaultStats => {
    const ended = (record: CallRecord) => record.startedAt + record.elapsedMs
    const completedElsewhere = records.filter(
      (record) =>
        record.code === undefined &&
        !fault.worker.pids.includes(record.pid ?? -1) &&
        ended(record) > fault.at &&
        ended(record) < fault.endAt,
    ).length
    let effectsDuring = 0
    let staleEffectsAfter = 0
    for (const [key, effects] of lines) {
      for (const effect of effects) {
        if (effect.pid !== fault.pid) continue
        // Made while the fault lasted for a call begun after it started. Stamps are whole milliseconds, so the
        // millisecond the fault took hold is left out on both counts: a call begun and answered in that same
        // millisecond, just before the signal, carries the window's first stamp (seen once in CI).
        const begun = recordOf.get(key)?.startedAt ?? Number.POSITIVE_INFINITY
        if (effect.at > fault.at && effect.at < fault.endAt && begun > fault.at) effectsDuring++
        if (effect.at >= fault.endAt && (recordOf.get(key)?.startedAt ?? Number.POSITIVE_INFINITY) < fault.endAt) {
          staleEffectsAfter++
        }
      }
    }
    return { what: fault.what, ...fault.seen, completedElsewhere, effectsDuring, staleEffectsAfter }
  })
  const workers: Record<string, string> = {}
  for (const [pid, sample] of observed.workerMetrics) {
    workers[`${sample.worker} pid ${pid}`] =
      `served ${sample.metrics.requestsServed}, deduplicated ${sample.metrics.deduplicated}; store ` +
      `claimed ${sample.store.claimed}, answered from store ${sample.store.answeredFromStore}, waited ` +
      `${sample.store.waited}, outcome unknown ${sample.store.outcomeUnknown}`
  }
  const report: Report = {
    scenario,
    calls: records.length,
    succeeded,
    failedByCode,
    retried: observed.clientMetrics.retried ?? 0,
    acked: observed.clientMetrics.acked ?? 0,
    deduplicatedByWorkers: sum("deduplicated"),
    servedByWorkers: sum("requestsServed"),
    servedByRestartedWorkers: samples
      .filter((sample) => sample.restarted)
      .reduce((total, m) => total + (m.metrics.requestsServed ?? 0), 0),
    storeAnsweredFromStore: sumStore("answeredFromStore"),
    storeWaited: sumStore("waited"),
    storeOutcomeUnknown: sumStore("outcomeUnknown"),
    deadLettersByReason: observed.deadLetters as Record<DeadLetterReason, number>,
    ledgerLines,
    lost,
    duplicateEffects,
    unknownOutcomesWithEffect,
    maxElapsedMs: Math.max(...records.map((r) => r.elapsedMs)),
    seconds: observed.callsSeconds,
    faults,
    faultStats,
    workers,
  }
  console.log(`ledger ${scenario}: ${JSON.stringify(report, null, 1)}`)
  assert.strictEqual(records.length, CALLS, "every call ended")
  assert.deepStrictEqual(problems.slice(0, 20), [], `${problems.length} problems`)
  assert.strictEqual(lost, 0)
  assert.strictEqual(duplicateEffects, 0)
  // Failures are the exception (the calls caught by a fault with their outcome unknown), not the rule.
  assert.isAtLeast(succeeded, CALLS * 0.98, `only ${succeeded} of ${CALLS} calls succeeded`)
  return report
}

afterEach(() => Harness.stopAll())
afterAll(() => {
  for (const directory of directories) rmSync(directory, { recursive: true, force: true })
})

const loopbackWorkers = (run: Run, count: number) =>
  Effect.promise(async () => {
    const ports = await Promise.all(Array.from({ length: count }, () => Harness.freePort()))
    return Promise.all(ports.map((port, i) => startWorker(run, `worker-${i}`, `tcp://127.0.0.1:${port}`)))
  })

describe("side-effect ledger: 10,000 at-least-once calls with idempotency keys, three worker processes", () => {
  it.live(
    "workers killed with SIGKILL and restarted 3-4 times: 0 lost, 0 duplicate effects, every call ends by its deadline",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const run = newRun()
          const workers = yield* loopbackWorkers(run, 3)
          const pacing = { rate: 700, holdBack: 1500 }
          const report = yield* ledgerRun("SIGKILL + restart", run, workers, pacing, async ({ faults, issued }) => {
            // Every 1-1.5 s, while at least 500 calls are left before the held-back ones.
            for (let round = 0; round < 4 && issued() < CALLS - pacing.holdBack - 500; round++) {
              await sleep(1000 + Math.random() * 500)
              const worker = workers[round % workers.length]!
              const pid = worker.process.pid
              const at = Date.now()
              await killAndRestart(run, worker)
              const endAt = Date.now()
              faults.push({ what: `SIGKILL ${worker.id}, restarted in ${endAt - at} ms`, worker, pid, at, endAt })
            }
          })
          assert.isAtLeast(report.faults.length, 3, "killed and restarted at least three times")
          assert.isAbove(report.servedByRestartedWorkers, 0, "the client called the restarted processes")
        }),
      ),
    90_000,
  )

  it.live(
    "a worker frozen (SIGSTOP) for 3 s, longer than the 1 s heartbeat timeout, then thawed: no duplicate effect",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const run = newRun()
          const workers = yield* loopbackWorkers(run, 3)
          const pacing = { rate: 1000, holdBack: 1000 }
          const report = yield* ledgerRun("SIGSTOP 3 s + SIGCONT", run, workers, pacing, async ({ faults, client }) => {
            for (const [round, worker] of [workers[1]!, workers[2]!].entries()) {
              await sleep(round === 0 ? 1500 : 1000)
              worker.process.freeze()
              // Read after the signal and before the thaw: the fault's window is when it surely held.
              const at = Date.now()
              const watch = watchWorker(client, worker.endpoint, at)
              await sleep(3000)
              const seen = watch.stop()
              const endAt = Date.now()
              worker.process.thaw()
              const what = `SIGSTOP ${worker.id} for 3 s, then SIGCONT`
              faults.push({ what, worker, pid: worker.process.pid, at, endAt, seen })
            }
          })
          assert.strictEqual(report.faultStats.length, 2)
          let caught = 0
          for (const fault of report.faultStats) {
            // Calls were waiting on the frozen worker: routed there before the client could know.
            assert.isAtLeast(fault.peakOutstanding ?? 0, 1, `${fault.what}: no call was caught by the freeze`)
            caught += fault.peakOutstanding ?? 0
            // Declared dead (or its connection lost) while still frozen, within the 1 s heartbeat timeout plus
            // the detector's period and timer lateness on a loaded machine.
            assert.isDefined(fault.detectedAfterMs, `${fault.what}: never detected while frozen`)
            assert.isBelow(fault.detectedAfterMs!, 2500)
            // Its calls moved on before it was thawed, and the others kept answering meanwhile.
            assert.strictEqual(fault.outstandingAtEnd, 0, `${fault.what}: calls still waited on it at the thaw`)
            assert.isAbove(fault.completedElsewhere, 500, `${fault.what}: the other workers answered`)
            assert.strictEqual(fault.effectsDuring, 0, `${fault.what}: a frozen process made an effect`)
          }
          // Every call caught at a frozen worker failed over: sent again (elsewhere), at least once each.
          assert.isAtLeast(report.retried, caught)
          // Whatever the thawed workers did with their stale requests (finished them, or found them done in the
          // store), no key has two effects and none is lost: checked for every call by `check`.
        }),
      ),
    90_000,
  )
})

// --- network partition -----------------------------------------------------------------------------------------

const naming: NetNs.NamespaceNaming = { prefix: "zactor-ledger-", linkPrefix: "zl", network: "10.200" }

/** Why the partition test cannot run here, or undefined if it can: namespaces need root, rules need iptables. */
const partitionUnavailable = NetNs.namespacesUnavailable(naming, (probe) => {
  const iptables = sh("ip", "netns", "exec", probe, "iptables", "-w", "-S")
  return iptables.ok ? undefined : `iptables does not work inside a namespace: ${iptables.output || "not installed"}`
})

const namespaces: Array<NetNs.Namespace> = []

const createNamespace = (): NetNs.Namespace => {
  const ns = NetNs.createNamespace(naming)
  namespaces.push(ns)
  return ns
}

const removeNamespace = NetNs.removeNamespace
type Namespace = NetNs.Namespace

/** Adds (`-I`) or removes (`-D`) DROP rules inside the namespace for traffic to and/or from the client. */
const dropRules = (ns: Namespace, action: "-I" | "-D", directions: ReadonlyArray<"in" | "out">): void => {
  for (const direction of directions) {
    const rule =
      direction === "in"
        ? ["INPUT", "-s", ns.hostAddress, "-j", "DROP"]
        : ["OUTPUT", "-d", ns.hostAddress, "-j", "DROP"]
    const result = sh("ip", "netns", "exec", ns.name, "iptables", "-w", action, ...rule)
    if (!result.ok) throw new Error(`iptables ${action} ${rule.join(" ")}: ${result.output}`)
  }
}

afterAll(async () => {
  // Processes first (a namespace with a process in it lingers), then links and namespaces, even on failure.
  await Harness.stopAll()
  for (const ns of namespaces.splice(0)) removeNamespace(ns)
})

describe("side-effect ledger across a network partition (network namespace + iptables DROP)", () => {
  if (partitionUnavailable !== undefined) {
    console.warn(`SKIPPED the network partition ledger test: ${partitionUnavailable}`)
  }

  it.live.skipIf(partitionUnavailable !== undefined)(
    "the client is cut off from one worker (two-way, then replies only) and healed: 0 lost, 0 duplicate effects",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const backend = sh("iptables", "--version").output
          const ns = createNamespace()
          yield* Effect.addFinalizer(() => Effect.sync(() => removeNamespace(ns)))
          const run = newRun()
          const local = yield* loopbackWorkers(run, 2)
          const isolated = yield* Effect.promise(() =>
            startWorker(run, "worker-ns", `tcp://${ns.address}:5555`, ["ip", "netns", "exec", ns.name]),
          )
          const workers = [...local, isolated]
          const served = { oneWayStart: 0, oneWayEnd: 0, afterHeal: 0 }
          const report = yield* ledgerRun(
            `partition (${backend})`,
            run,
            workers,
            { rate: 900, holdBack: 1000 },
            async ({ faults, client }) => {
              const pid = isolated.process.pid
              await sleep(1500)
              // Each fault's window runs from its rules being in place to just before they are removed (the
              // iptables calls take a while on a loaded machine).
              dropRules(ns, "-I", ["in", "out"])
              let at = Date.now()
              let watch = watchWorker(client, isolated.endpoint, at)
              await sleep(4000)
              let seen = watch.stop()
              let endAt = Date.now()
              dropRules(ns, "-D", ["in", "out"])
              let what = `two-way DROP between the client and ${isolated.id} for 4 s`
              faults.push({ what, worker: isolated, pid, at, endAt, seen })
              await sleep(2000)
              // Requests arrive and run, but ACKs and replies are lost: the retries elsewhere must find the outcome.
              served.oneWayStart = await servedBy(isolated)
              dropRules(ns, "-I", ["out"])
              at = Date.now()
              watch = watchWorker(client, isolated.endpoint, at)
              await sleep(3000)
              seen = watch.stop()
              served.oneWayEnd = await servedBy(isolated)
              endAt = Date.now()
              dropRules(ns, "-D", ["out"])
              what = `one-way DROP of ${isolated.id}'s traffic to the client for 3 s`
              faults.push({ what, worker: isolated, pid, at, endAt, seen })
            },
            async (client) => {
              // Healed: the isolated worker is reachable again and serves calls.
              const direct = client.client(Ledger, { endpoint: isolated.endpoint })
              const healedAt = Date.now()
              await Harness.waitUntil(
                async () =>
                  (await Effect.runPromise(
                    Effect.result(direct.append({ key: `healed-${Date.now()}`, value: -1 }, { timeout: 2000 })),
                  ).then((r) => r._tag === "Success")) as boolean,
                15_000,
                "the healed worker to answer again",
                100,
              )
              served.afterHeal = await servedBy(isolated)
              console.log(
                `ledger partition: ${isolated.id} answered again ${Date.now() - healedAt} ms after the calls ended; ` +
                  `served ${JSON.stringify(served)}`,
              )
            },
          )
          const [twoWay, oneWay] = report.faultStats
          assert.isDefined(oneWay)
          for (const fault of [twoWay!, oneWay]) {
            // Calls were waiting on the cut-off worker, the client gave up on it while cut off, and those calls
            // moved on (sent again to the others) before the heal; meanwhile the others kept answering.
            assert.isAtLeast(fault.peakOutstanding ?? 0, 1, `${fault.what}: no call was caught by the partition`)
            assert.isDefined(fault.detectedAfterMs, `${fault.what}: the client never gave up on the worker`)
            assert.strictEqual(fault.outstandingAtEnd, 0, `${fault.what}: calls still waited on it at the heal`)
            assert.isAbove(fault.completedElsewhere, 500, `${fault.what}: the other workers answered`)
          }
          assert.isAtLeast(report.retried, twoWay!.peakOutstanding! + oneWay.peakOutstanding!)
          // Two-way: nothing reached the worker, so it made no effect while cut off.
          assert.strictEqual(twoWay!.effectsDuring, 0)
          // One-way: requests reached it and ran, their replies were dropped; those calls were sent again to the
          // others, which found the outcome in the shared store (each call's reply names the process that made its
          // one effect: checked by `check` for every call that succeeded).
          assert.isAbove(served.oneWayEnd - served.oneWayStart, 0, "the cut-off worker ran requests")
          assert.isAbove(oneWay.effectsDuring, 0)
          assert.isAtLeast(report.storeAnsweredFromStore + report.storeWaited, 1)
          // Healed: it serves again (a direct call to it succeeded after the calls ended).
          assert.isAbove(served.afterHeal, served.oneWayEnd, "the healed worker served again")
        }),
      ),
    120_000,
  )
})

const servedBy = async (worker: Worker): Promise<number> => {
  const process = worker.process
  const before = process.messages.length
  process.send({ type: "metrics" })
  const reply = await process.waitForMessage((m) => m.type === "metrics" && process.messages.indexOf(m) >= before, 2000)
  return (reply.metrics as Record<string, number>).requestsServed ?? 0
}
