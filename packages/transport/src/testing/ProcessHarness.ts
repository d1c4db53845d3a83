/**
 * A harness for multi-process tests: starts fixture scripts as real Node processes (TypeScript through tsx,
 * sibling packages resolved to their sources), exchanges JSON messages with them over the IPC channel, and
 * injects process faults: SIGKILL, SIGSTOP/SIGCONT (a frozen process misses heartbeats), graceful stop.
 * Every process it starts is tracked and killed by PID in `stopAll`, and on exit of the test process.
 *
 * @since 0.1.0
 */
import { type ChildProcess, fork } from "node:child_process"

/** A message a fixture sends to its parent with `process.send`. @since 0.1.0 */
export type FixtureMessage = { readonly type: string } & Record<string, unknown>

/** A running fixture process. @since 0.1.0 */
export interface FixtureProcess {
  /** The OS process id. */
  readonly pid: number
  /** The first `ready` message, usually carrying the endpoint the fixture bound (`lastEndpoint`). */
  readonly ready: FixtureMessage
  /** Every message received so far, in order. */
  readonly messages: ReadonlyArray<FixtureMessage>
  /** Sends a JSON message to the fixture. */
  readonly send: (message: FixtureMessage) => void
  /** Waits for a message matching `predicate` (including ones already received) until `timeoutMs`. */
  readonly waitForMessage: (
    predicate: (message: FixtureMessage) => boolean,
    timeoutMs: number,
  ) => Promise<FixtureMessage>
  /** SIGKILL: the process dies at once, its sockets are reset by the kernel. */
  readonly kill: () => Promise<void>
  /** SIGTERM, then SIGKILL if it has not exited within `timeoutMs`. */
  readonly stop: (timeoutMs?: number) => Promise<void>
  /** SIGSTOP: the process freezes; its connections stay open but silent. */
  readonly freeze: () => void
  /** SIGCONT after `freeze`. */
  readonly thaw: () => void
  /** Resolves with the exit code (or signal name) when the process exits. */
  readonly exited: Promise<number | string>
}

/** Options of `start`. @since 0.1.0 */
export interface StartOptions {
  /** Arguments after the script path. */
  readonly args?: ReadonlyArray<string>
  /** How long to wait for the fixture's `ready` message. Default 60 s: a TypeScript fixture can take many seconds to start on a loaded 2-core machine. */
  readonly readyTimeoutMs?: number
  /** Extra environment variables. */
  readonly env?: Record<string, string>
  /**
   * Words run before node, which they must exec in place so that the PID, the IPC channel and signals reach
   * node: e.g. `["ip", "netns", "exec", "ns1"]` runs the fixture inside network namespace `ns1`. Default none.
   */
  readonly launcher?: ReadonlyArray<string>
  /**
   * Whether the script is plain JavaScript (e.g. a bundle) that node runs as it is, without the TypeScript loader
   * and the source condition: such a process starts in tens of ms instead of seconds on a loaded machine.
   * Default false.
   */
  readonly javascript?: boolean
}

const running = new Set<ChildProcess>()

process.once("exit", () => {
  for (const child of running) child.kill("SIGKILL")
})

/**
 * Starts a fixture script and waits for its `{ type: "ready" }` message.
 *
 * @since 0.1.0
 */
export const start = async (script: string, options: StartOptions = {}): Promise<FixtureProcess> => {
  const nodeArgs = options.javascript === true ? [] : ["--conditions=@zactor/source", "--import", "tsx"]
  const [launcher, ...launcherArgs] = options.launcher ?? []
  const child = fork(script, [...(options.args ?? [])], {
    ...(launcher === undefined
      ? { execArgv: nodeArgs }
      : { execPath: launcher, execArgv: [...launcherArgs, process.execPath, ...nodeArgs] }),
    env: { ...process.env, ...options.env },
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  })
  running.add(child)
  const messages: Array<FixtureMessage> = []
  const waiters = new Set<() => void>()
  child.on("message", (message) => {
    messages.push(message as FixtureMessage)
    for (const wake of waiters) wake()
  })
  const exited = new Promise<number | string>((resolve) => {
    child.once("exit", (code, signal) => {
      running.delete(child)
      for (const wake of waiters) wake()
      resolve(code ?? signal ?? "unknown")
    })
  })
  let exitedValue: number | string | undefined
  void exited.then((value) => {
    exitedValue = value
  })

  const waitForMessage = (predicate: (message: FixtureMessage) => boolean, timeoutMs: number) =>
    new Promise<FixtureMessage>((resolve, reject) => {
      const check = () => {
        const found = messages.find(predicate)
        if (found !== undefined) {
          done()
          resolve(found)
        } else if (exitedValue !== undefined) {
          done()
          reject(new Error(`fixture ${script} exited (${exitedValue}) before the expected message`))
        }
      }
      const timer = setTimeout(() => {
        done()
        reject(new Error(`fixture ${script} sent no matching message within ${timeoutMs} ms`))
      }, timeoutMs)
      const done = () => {
        clearTimeout(timer)
        waiters.delete(check)
      }
      waiters.add(check)
      check()
    })

  const signal = (name: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(name)
  }
  let ready: FixtureMessage
  try {
    ready = await waitForMessage((m) => m.type === "ready", options.readyTimeoutMs ?? 60_000)
  } catch (error) {
    signal("SIGKILL")
    throw error
  }
  return {
    pid: child.pid ?? -1,
    ready,
    messages,
    send: (message) => {
      if (child.connected) child.send(message)
    },
    waitForMessage,
    kill: async () => {
      signal("SIGCONT")
      signal("SIGKILL")
      await exited
    },
    stop: async (timeoutMs = 5000) => {
      signal("SIGCONT")
      signal("SIGTERM")
      const timer = setTimeout(() => signal("SIGKILL"), timeoutMs)
      await exited
      clearTimeout(timer)
    },
    freeze: () => signal("SIGSTOP"),
    thaw: () => signal("SIGCONT"),
    exited,
  }
}

/**
 * Kills every fixture process still running (by PID, SIGKILL) and waits for them to exit.
 *
 * @since 0.1.0
 */
export const stopAll = async (): Promise<void> => {
  const children = [...running]
  await Promise.all(
    children.map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve()
          child.once("exit", () => resolve())
          child.kill("SIGCONT")
          child.kill("SIGKILL")
        }),
    ),
  )
}

/**
 * Polls `predicate` until it holds, failing with `what` after `timeoutMs`. Returns the elapsed milliseconds.
 *
 * @since 0.1.0
 */
export const waitUntil = async (
  predicate: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
  pollMs = 5,
): Promise<number> => {
  const started = performance.now()
  while (!(await predicate())) {
    if (performance.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, pollMs))
  }
  return performance.now() - started
}

/**
 * A free TCP port on 127.0.0.1 (bound and released), for fixtures that must rebind the same port after a restart.
 *
 * @since 0.1.0
 */
export const freePort = async (): Promise<number> => {
  const { createServer } = await import("node:net")
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(() =>
        typeof address === "object" && address !== null ? resolve(address.port) : reject(new Error("no port")),
      )
    })
  })
}
