// Discovery convergence benchmark: N node processes on this host start their nodes at the same instant
// ("go"), and each reports when its registry view holds all N members (`view`) and when it holds a live
// connection to the N-1 others (`alive`: every node serves a service, so all connect to all). Then one
// process is killed with SIGKILL and each survivor reports when it dropped it from its view (`detect`).
// Beacons go to the loopback broadcast address, etcd listens on 127.0.0.1: nothing leaves this machine.
//
//   pnpm --filter @zactor/discovery bench:convergence [--n 10,50] [--backends beacon,etcd] [--mesh]
//
// Without --mesh the nodes serve nothing, so nobody connects to anybody: this times discovery alone. With
// --mesh every node serves a service and connects to every other (N x (N-1) connections with heartbeats), and
// `alive` is when a node holds all of its connections.
//
// Results are printed and written to .bench/discovery-<time>.json at the repository root.

import { mkdirSync, writeFileSync } from "node:fs"
import { resolve } from "node:path"
import * as Harness from "@zactor/transport/testing/harness"
import { type EtcdServer, etcdAvailable, startEtcd } from "../test/etcdServer.ts"

const fixture = new URL("../test/fixtures/discovery-node.ts", import.meta.url).pathname
const arg = (name: string, fallback: string) => {
  const at = process.argv.indexOf(`--${name}`)
  return at === -1 ? fallback : (process.argv[at + 1] ?? fallback)
}
const sizes = arg("n", "10,50").split(",").map(Number)
const backends = arg("backends", "beacon,etcd").split(",")
const mesh = process.argv.includes("--mesh")

interface Result {
  readonly backend: string
  readonly n: number
  readonly startupMs: number
  /** From "go" until the last node was built, registered and serving (node start-up, not discovery). */
  readonly lastStartMs: number
  readonly mesh: boolean
  readonly viewMs: { readonly p50: number; readonly p90: number; readonly max: number }
  readonly aliveMs: { readonly p50: number; readonly p90: number; readonly max: number } | undefined
  readonly detectMs: { readonly min: number; readonly p50: number; readonly max: number }
  readonly settings: string
}

const quantile = (values: ReadonlyArray<number>, q: number) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN
}

const run = async (backend: string, n: number, etcd: EtcdServer | undefined): Promise<Result> => {
  const port = 40_000 + Math.floor(Math.random() * 20_000)
  const cluster = `bench-${n}-${Date.now()}`
  const env: Record<string, string> = {
    ZACTOR_TEST_SERVE: mesh ? "1" : "0",
    ZACTOR_TEST_WAIT_GO: "1",
    ...(backend === "beacon"
      ? { ZACTOR_BEACON_ADDRESS: "127.255.255.255", ZACTOR_BEACON_PORT: String(port), ZACTOR_BEACON_CLUSTER: cluster }
      : {
          ZACTOR_TEST_DISCOVERY: "etcd",
          ZACTOR_ETCD_ENDPOINTS: etcd!.endpoint,
          ZACTOR_ETCD_CLUSTER: cluster,
          ZACTOR_ETCD_LEASE_TTL_MS: "2000",
        }),
  }
  const loadStarted = Date.now()
  // Load the processes a few at a time: 50 TypeScript processes at once on 2 cores only measures the CPU.
  const processes: Array<Harness.FixtureProcess> = []
  for (let i = 0; i < n; i += 8) {
    const batch = Array.from({ length: Math.min(8, n - i) }, (_, j) =>
      Harness.start(fixture, { args: [`${backend}-${i + j}`], env, readyTimeoutMs: 120_000 }).catch(() => {
        throw new Error(`node ${i + j} did not load`)
      }),
    )
    processes.push(...(await Promise.all(batch)))
  }
  const startupMs = Date.now() - loadStarted
  // Let the processes finish loading (their event loops idle) before the clock starts.
  await new Promise((r) => setTimeout(r, 2000))
  const goAt = Date.now()
  for (const p of processes) p.send({ type: "go", expect: n })
  const converged = await Promise.all(processes.map((p) => p.waitForMessage((m) => m.type === "converged", 120_000)))
  const lastStartMs = Math.max(...converged.map((m) => Number(m.startedAt) - goAt))
  const view = converged.map((m) => Number(m.viewAt) - goAt)
  const alive = converged.map((m) => Number(m.aliveAt) - goAt)
  const victim = processes[0]!
  const survivors = processes.slice(1)
  for (const p of survivors) p.send({ type: "watch-gone", nodeId: `${backend}-0` })
  await new Promise((r) => setTimeout(r, 300))
  const killedAt = Date.now()
  await victim.kill()
  const gone = await Promise.all(survivors.map((p) => p.waitForMessage((m) => m.type === "gone", 60_000)))
  const detect = gone.map((m) => Number(m.at) - killedAt)
  await Harness.stopAll()
  return {
    backend,
    n,
    startupMs,
    lastStartMs,
    mesh,
    viewMs: { p50: quantile(view, 0.5), p90: quantile(view, 0.9), max: Math.max(...view) },
    aliveMs: mesh ? { p50: quantile(alive, 0.5), p90: quantile(alive, 0.9), max: Math.max(...alive) } : undefined,
    detectMs: { min: Math.min(...detect), p50: quantile(detect, 0.5), max: Math.max(...detect) },
    settings: backend === "beacon" ? "interval 250 ms, expiry 1250 ms" : "lease TTL 2 s (keepalive every ~0.67 s)",
  }
}

const main = async () => {
  const etcd = backends.includes("etcd") && etcdAvailable ? await startEtcd() : undefined
  const results: Array<Result> = []
  try {
    for (const backend of backends) {
      if (backend === "etcd" && etcd === undefined) {
        console.log("etcd: skipped (no etcd binary; apt-get install -y etcd-server)")
        continue
      }
      for (const n of sizes) {
        const result = await run(backend, n, etcd)
        results.push(result)
        console.log(
          `${backend.padEnd(6)} N=${String(n).padStart(3)}  last node up ${result.lastStartMs} ms;` +
            ` full view p50 ${result.viewMs.p50} ms, p90 ${result.viewMs.p90} ms, max ${result.viewMs.max} ms;` +
            (result.aliveMs === undefined
              ? ""
              : ` all connected p50 ${result.aliveMs.p50} ms, max ${result.aliveMs.max} ms;`) +
            ` SIGKILL seen by all after ${result.detectMs.max} ms` +
            ` (first ${result.detectMs.min} ms)   [${result.settings}; ${n} processes loaded in ${result.startupMs} ms]`,
        )
      }
    }
  } finally {
    await Harness.stopAll()
    await etcd?.dispose()
  }
  const dir = resolve(import.meta.dirname, "../../../.bench")
  mkdirSync(dir, { recursive: true })
  const file = resolve(dir, `discovery-${new Date().toISOString().replace(/[:.]/g, "-")}.json`)
  writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), results }, null, 2))
  console.log(`written ${file}`)
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error)
    process.exit(1)
  },
)
