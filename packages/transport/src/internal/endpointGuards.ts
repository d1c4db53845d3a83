/**
 * Guards that make ipc and inproc endpoints behave like tcp ones, as the Transport contract promises:
 * - ipc: libzmq unlinks an existing socket file and takes the path over, so a second bind "succeeds" and
 *   silently steals the first server's address. We probe the path first and refuse if someone listens.
 * - inproc: a connect to a name nobody has bound yet creates a pipe that accepts writes, so queued payloads
 *   would never time out. Outbound inproc connects wait here until a transport of this process binds the name.
 */
import { connect } from "node:net"

type Address = { readonly path: string } | { readonly host: string; readonly port: number }

const probe = (address: Address): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = "path" in address ? connect(address.path) : connect(address.port, address.host)
    const done = (inUse: boolean) => {
      socket.destroy()
      resolve(inUse)
    }
    socket.once("connect", () => done(true))
    socket.once("error", () => done(false))
    socket.setTimeout(500, () => done(false))
  })

/**
 * Resolves true if something keeps accepting connections on the unix socket `path`. A listener that is still
 * shutting down (libzmq closes it in its I/O thread, after close() returned) stops accepting within
 * milliseconds, so the probe is repeated for a short while before the path is declared in use.
 */
export const ipcInUse = async (path: string): Promise<boolean> => {
  for (let attempt = 0; attempt < 10; attempt++) {
    if (!(await probe({ path }))) return false
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  return true
}

const addressOf = (endpoint: string): Address | undefined => {
  if (endpoint.startsWith("ipc://")) return { path: endpoint.slice("ipc://".length) }
  const match = /^tcp:\/\/(.+):(\d+)$/.exec(endpoint)
  if (match === null) return undefined
  const host = match[1] === "0.0.0.0" || match[1] === "*" ? "127.0.0.1" : match[1]!.replace(/^\[(.*)\]$/, "$1")
  return { host, port: Number(match[2]) }
}

/**
 * Waits (at most `timeoutMs`) until a closed listener stops accepting connections. libzmq closes listeners
 * in its I/O thread after close() returns; waiting here means that once a transport's close completes, its
 * endpoints can be bound again and nobody connects to a listener that is about to vanish.
 */
export const waitReleased = async (endpoint: string, timeoutMs = 1000): Promise<void> => {
  const address = addressOf(endpoint)
  if (address === undefined) return
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline && (await probe(address))) await new Promise((resolve) => setTimeout(resolve, 5))
}

interface InprocRegistry {
  readonly bound: Set<string>
  readonly waiting: Map<string, Set<() => void>>
}

// Shared through globalThis so duplicated installs of this package in one process agree.
const key = Symbol.for("@zactor/transport/inprocRegistry")
const registry: InprocRegistry = ((globalThis as Record<symbol, unknown>)[key] as InprocRegistry | undefined) ?? {
  bound: new Set(),
  waiting: new Map(),
}
;(globalThis as Record<symbol, unknown>)[key] = registry

/** Records that an inproc name is bound, and connects everyone waiting for it. */
export const inprocBound = (name: string): void => {
  registry.bound.add(name)
  const waiting = registry.waiting.get(name)
  registry.waiting.delete(name)
  for (const connectNow of waiting ?? []) connectNow()
}

/** Records that an inproc name is no longer bound. */
export const inprocUnbound = (name: string): void => {
  registry.bound.delete(name)
}

/** Connects now if the name is bound, else when it is; returns a function that cancels the wait. */
export const whenInprocBound = (name: string, connectNow: () => void): (() => void) => {
  if (registry.bound.has(name)) {
    connectNow()
    return () => {}
  }
  let waiting = registry.waiting.get(name)
  if (waiting === undefined) {
    waiting = new Set()
    registry.waiting.set(name, waiting)
  }
  waiting.add(connectNow)
  return () => waiting.delete(connectNow)
}
