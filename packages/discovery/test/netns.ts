// Test "hosts" in Linux network namespaces: a bridge in a namespace of its own and one namespace per host,
// each with a veth into the bridge and a private address (10.231.0.0/24) that exists only inside these
// namespaces. Nothing is added to the host's own network namespace. Processes started here run with
// `ip netns exec`, talk to the test over IPC, and are killed by PID; `teardown` deletes the namespaces.

import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import type { FixtureMessage } from "@zactor/transport/testing/harness"

const ip = (...args: ReadonlyArray<string>) => execFileSync("ip", args, { stdio: ["ignore", "ignore", "pipe"] })

const created = new Set<string>()
const children = new Set<ChildProcess>()
const cleanup = () => {
  for (const child of children) child.kill("SIGKILL")
  for (const ns of created) {
    try {
      ip("netns", "del", ns)
    } catch {
      // already gone
    }
  }
  created.clear()
}
process.once("exit", cleanup)

/** Why namespaces cannot be used here, or `undefined` when they can (root with iproute2). */
export const namespacesUnavailable: string | undefined = (() => {
  if (process.getuid?.() !== 0) return "not root"
  const probe = `zdprobe${process.pid}`
  try {
    ip("netns", "add", probe)
    ip("netns", "del", probe)
    return undefined
  } catch (error) {
    return `ip netns add failed: ${error instanceof Error ? error.message : String(error)}`
  }
})()

/** One test host. */
export interface Host {
  readonly ns: string
  readonly address: string
}

/** Creates `count` hosts on one bridge. */
export const createLan = (count: number): ReadonlyArray<Host> => {
  const tag = `zd${process.pid}`
  const bridge = `${tag}br`
  ip("netns", "add", bridge)
  created.add(bridge)
  ip("-n", bridge, "link", "add", "br0", "type", "bridge")
  ip("-n", bridge, "link", "set", "br0", "up")
  const hosts: Array<Host> = []
  for (let i = 1; i <= count; i++) {
    const ns = `${tag}h${i}`
    const address = `10.231.0.${i}`
    ip("netns", "add", ns)
    created.add(ns)
    ip("-n", ns, "link", "set", "lo", "up")
    // Both veth ends are created directly inside the namespaces.
    ip("link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", `p${i}`, "netns", bridge)
    ip("-n", bridge, "link", "set", `p${i}`, "master", "br0")
    ip("-n", bridge, "link", "set", `p${i}`, "up")
    ip("-n", ns, "addr", "add", `${address}/24`, "dev", "eth0")
    ip("-n", ns, "link", "set", "eth0", "up")
    // Like a host on a LAN: a default route (which leads only to the bridge), so multicast needs no setup.
    ip("-n", ns, "route", "add", "default", "dev", "eth0")
    hosts.push({ ns, address })
  }
  return hosts
}

/** Kills every process started here and deletes every namespace. */
export const teardown = cleanup

/** A fixture process inside a namespace. */
export interface NsProcess {
  readonly pid: number
  readonly ready: FixtureMessage
  readonly send: (message: FixtureMessage) => void
  /** Sends `message` and waits for the next message of type `reply`. */
  readonly ask: (message: FixtureMessage, reply: string, timeoutMs?: number) => Promise<FixtureMessage>
  readonly kill: () => Promise<void>
}

/** Starts a TypeScript fixture in `host`'s namespace and waits for its `ready` message. */
export const startIn = (
  host: Host,
  script: string,
  args: ReadonlyArray<string>,
  env: Record<string, string>,
): Promise<NsProcess> =>
  new Promise((resolve, reject) => {
    const child = spawn(
      "ip",
      ["netns", "exec", host.ns, process.execPath, "--conditions=@zactor/source", "--import", "tsx", script, ...args],
      { env: { ...process.env, ...env }, stdio: ["ignore", "inherit", "inherit", "ipc"] },
    )
    children.add(child)
    const exited = new Promise<void>((done) =>
      child.once("exit", () => {
        children.delete(child)
        done()
      }),
    )
    const waiters = new Set<(message: FixtureMessage) => void>()
    child.on("message", (message) => {
      for (const waiter of waiters) waiter(message as FixtureMessage)
    })
    const next = (type: string, timeoutMs: number) =>
      new Promise<FixtureMessage>((done, fail) => {
        const timer = setTimeout(() => {
          waiters.delete(waiter)
          fail(new Error(`no ${type} message from ${host.ns} within ${timeoutMs} ms`))
        }, timeoutMs)
        const waiter = (message: FixtureMessage) => {
          if (message.type !== type) return
          clearTimeout(timer)
          waiters.delete(waiter)
          done(message)
        }
        waiters.add(waiter)
      })
    const send = (message: FixtureMessage) => {
      if (child.connected) child.send(message)
    }
    next("ready", 30_000).then(
      (ready) =>
        resolve({
          pid: child.pid ?? -1,
          ready,
          send,
          ask: (message, reply, timeoutMs = 10_000) => {
            const answer = next(reply, timeoutMs)
            send(message)
            return answer
          },
          kill: async () => {
            if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
            await exited
          },
        }),
      (error) => {
        child.kill("SIGKILL")
        reject(error)
      },
    )
  })
