// A real etcd server for tests: Debian's etcd-server (3.4) on 127.0.0.1, free ports, a temporary data dir.
// Every process started here is killed by PID when the test process exits, and the data dir is removed.

import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Harness from "@zactor/transport/testing/harness"

/** Whether the etcd binary is installed (CI installs etcd-server in .ci/run). */
export const etcdAvailable = (() => {
  try {
    execFileSync("etcd", ["--version"], { stdio: "ignore" })
    return true
  } catch {
    return false
  }
})()

const running = new Set<ChildProcess>()
const dirs = new Set<string>()
process.once("exit", () => {
  for (const child of running) child.kill("SIGKILL")
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
})

/** A running (or stopped) etcd. */
export interface EtcdServer {
  /** The client URL, e.g. `http://127.0.0.1:41234`. */
  readonly endpoint: string
  readonly pid: () => number | undefined
  /** SIGKILL, and wait for the exit. */
  readonly kill: () => Promise<void>
  /** Starts it again on the same ports; `wipe` gives it an empty data dir (a store lost). */
  readonly restart: (options?: { readonly wipe?: boolean }) => Promise<void>
  /** Kills it and removes its data dir. */
  readonly dispose: () => Promise<void>
}

const waitHealthy = async (endpoint: string, child: ChildProcess): Promise<void> => {
  await Harness.waitUntil(
    async () => {
      if (child.exitCode !== null) throw new Error(`etcd exited with ${child.exitCode}`)
      try {
        const response = await fetch(`${endpoint}/health`)
        return response.ok && ((await response.json()) as { health?: string }).health === "true"
      } catch {
        return false
      }
    },
    15_000,
    "etcd to be healthy",
    50,
  )
}

/** Starts etcd on free loopback ports with a fresh data dir and waits until it is healthy. */
export const startEtcd = async (): Promise<EtcdServer> => {
  const clientPort = await Harness.freePort()
  const peerPort = await Harness.freePort()
  const endpoint = `http://127.0.0.1:${clientPort}`
  const peer = `http://127.0.0.1:${peerPort}`
  let dataDir = mkdtempSync(join(tmpdir(), "zactor-etcd-"))
  dirs.add(dataDir)
  let child: ChildProcess | undefined
  const launch = async () => {
    const started = spawn(
      "etcd",
      [
        "--name=zactor-test",
        `--data-dir=${dataDir}`,
        `--listen-client-urls=${endpoint}`,
        `--advertise-client-urls=${endpoint}`,
        `--listen-peer-urls=${peer}`,
        `--initial-advertise-peer-urls=${peer}`,
        `--initial-cluster=zactor-test=${peer}`,
        "--log-level=error",
      ],
      { stdio: ["ignore", "ignore", "ignore"] },
    )
    running.add(started)
    started.once("exit", () => running.delete(started))
    child = started
    await waitHealthy(endpoint, started)
  }
  const kill = async () => {
    const current = child
    if (current === undefined || current.exitCode !== null || current.signalCode !== null) return
    const exited = new Promise((resolve) => current.once("exit", resolve))
    current.kill("SIGKILL")
    await exited
  }
  await launch()
  return {
    endpoint,
    pid: () => child?.pid,
    kill,
    restart: async (options) => {
      await kill()
      if (options?.wipe === true) {
        rmSync(dataDir, { recursive: true, force: true })
        dirs.delete(dataDir)
        dataDir = mkdtempSync(join(tmpdir(), "zactor-etcd-"))
        dirs.add(dataDir)
      }
      await launch()
    },
    dispose: async () => {
      await kill()
      rmSync(dataDir, { recursive: true, force: true })
      dirs.delete(dataDir)
    },
  }
}
