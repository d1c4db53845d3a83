/**
 * OS processes as supervised children: a Node.js process running a zactor node (see `WorkerProcess` for the
 * process's side), spawned with an IPC channel, up once it reports ready (its node id and endpoints), ended
 * when it exits (seen at once through the child process `exit` event, not through a heartbeat), stopped with
 * SIGTERM and, after the shutdown timeout, SIGKILL.
 *
 * Start-up time is the process's: `node` on a plain JavaScript file starts in about 50-150 ms, while a loader
 * such as tsx compiling TypeScript on start takes seconds on a loaded machine. Run built or bundled JavaScript
 * (for example one esbuild bundle of the worker entry) where restart time matters; `execArgv` can add a loader
 * for development. docs/SUPERVISION.md has the measurements.
 *
 * Every process started here is killed (SIGKILL) if this process exits without stopping it; the worker side
 * also exits when its parent's IPC channel closes.
 *
 * @since 0.1.0
 */
import { type ChildProcess, fork, type Serializable } from "node:child_process"
import { Deferred, Duration, Effect, type Scope } from "effect"
import * as ChildSpec from "./ChildSpec.ts"
import { ProcessExitError, ProcessStartError } from "./SupervisorError.ts"

// ---- models --------------------------------------------------------------------------------------------------

/**
 * The message a child process sends its parent once it serves (`WorkerProcess` sends it).
 *
 * @since 0.1.0
 */
export interface ReadyMessage {
  readonly type: "zactor/ready"
  readonly pid: number
  readonly nodeId: string
  /** The endpoints its node is bound to; the parent connects to the first. */
  readonly endpoints: ReadonlyArray<string>
}

/**
 * Whether an IPC message is a `ReadyMessage`.
 *
 * @since 0.1.0
 */
export const isReadyMessage = (u: unknown): u is ReadyMessage =>
  typeof u === "object" && u !== null && (u as { type?: unknown }).type === "zactor/ready"

/**
 * Options of a process child.
 *
 * @since 0.1.0
 */
export interface ProcessOptions extends ChildSpec.ChildOptions {
  /** The script the process runs: JavaScript, unless `execArgv` adds a loader. */
  readonly entry: string
  /** Arguments after the script. Default none. */
  readonly args?: ReadonlyArray<string> | undefined
  /**
   * Node options before the script, e.g. `["--import", "tsx"]`. Default none (not this process's: a test
   * runner's loaders would slow every start).
   */
  readonly execArgv?: ReadonlyArray<string> | undefined
  /** The node binary. Default this process's (`process.execPath`). */
  readonly execPath?: string | undefined
  /** Variables added to this process's environment. */
  readonly env?: { readonly [name: string]: string } | undefined
  readonly cwd?: string | undefined
  /** How long the process may take to report ready before it is killed and the start fails. Default 10 s. */
  readonly readyTimeout?: Duration.Input | undefined
  /** Whether the process's stdout/stderr go to this process's. Default `"inherit"`. */
  readonly stdio?: "inherit" | "ignore" | undefined
}

/**
 * The defaults of `ProcessOptions`, beyond `ChildSpec.defaults` (whose `shutdownTimeoutMs` is the time between
 * SIGTERM and SIGKILL).
 *
 * @since 0.1.0
 */
export const defaults = Object.freeze({
  readyTimeoutMs: 10_000,
  /** What the supervisor waits after the shutdown timeout for SIGKILL to take effect. */
  killGraceMs: 1_000,
})

/**
 * A running process child.
 *
 * @since 0.1.0
 */
export interface ProcessHandle {
  readonly pid: number
  /** Its ready message: node id and endpoints. */
  readonly ready: ReadyMessage
  /** From spawn to the ready message, in ms. */
  readonly startMs: number
  /** Sends a message over the IPC channel (dropped if the process is gone). */
  readonly send: (message: Serializable) => void
}

// ---- the processes of this process ---------------------------------------------------------------------------

const live = new Set<ChildProcess>()
let exitHookInstalled = false

const track = (child: ChildProcess): void => {
  live.add(child)
  if (exitHookInstalled) return
  exitHookInstalled = true
  // Orphans would keep serving (and holding ports) after a crash of this process: take them down with it.
  process.once("exit", () => {
    for (const orphan of live) orphan.kill("SIGKILL")
  })
}

const signal = (child: ChildProcess, name: NodeJS.Signals): void => {
  if (child.exitCode === null && child.signalCode === null) child.kill(name)
}

// ---- constructors --------------------------------------------------------------------------------------------

interface ExitInfo {
  readonly code: number | null
  readonly signal: string | null
  readonly at: number
}

const reasonOf = (pid: number, exit: ExitInfo): ChildSpec.ExitReason =>
  exit.code === 0 && exit.signal === null
    ? { _tag: "Completed" }
    : {
        _tag: "Failed",
        error: new ProcessExitError({
          pid,
          code: exit.code,
          signal: exit.signal,
          at: exit.at,
          message: `process ${pid} exited (${exit.signal ?? `code ${exit.code}`})`,
        }),
      }

/**
 * Spawns the process in the current scope and waits for its ready message. Closing the scope stops it:
 * SIGTERM, then SIGKILL after `shutdownTimeout`. Fails with `ProcessStartError` if it cannot be spawned, exits
 * first, or is not ready within `readyTimeout` (it is then killed).
 *
 * @since 0.1.0
 */
export const start = (
  options: ProcessOptions,
): Effect.Effect<ChildSpec.Running<ProcessHandle>, ProcessStartError, Scope.Scope> =>
  Effect.gen(function* () {
    const readyTimeoutMs =
      options.readyTimeout === undefined
        ? defaults.readyTimeoutMs
        : Duration.toMillis(Duration.fromInputUnsafe(options.readyTimeout))
    const termTimeoutMs =
      options.shutdownTimeout === undefined
        ? ChildSpec.defaults.shutdownTimeoutMs
        : Duration.toMillis(Duration.fromInputUnsafe(options.shutdownTimeout))
    const spawnedAt = performance.now()
    const child = yield* Effect.try({
      try: () =>
        fork(options.entry, [...(options.args ?? [])], {
          execArgv: [...(options.execArgv ?? [])],
          ...(options.execPath === undefined ? {} : { execPath: options.execPath }),
          ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
          env: { ...process.env, ...options.env },
          stdio:
            options.stdio === "ignore"
              ? ["ignore", "ignore", "ignore", "ipc"]
              : ["ignore", "inherit", "inherit", "ipc"],
        }),
      catch: (cause) =>
        new ProcessStartError({
          reason: "SpawnFailed",
          pid: undefined,
          message: `cannot spawn ${options.entry}`,
          cause,
        }),
    })
    const pid = child.pid ?? -1
    track(child)
    const exited = Deferred.makeUnsafe<ExitInfo>()
    // `exit` is the earliest sign of death Node gives (SIGCHLD): the supervisor learns of a crash from it.
    child.once("exit", (code, name) => {
      live.delete(child)
      Deferred.doneUnsafe(exited, Effect.succeed({ code, signal: name, at: Date.now() }))
    })
    // A spawn failure (e.g. a bad execPath) emits `error` and may never emit `exit`.
    child.once("error", () => {
      live.delete(child)
      Deferred.doneUnsafe(exited, Effect.succeed({ code: null, signal: null, at: Date.now() }))
    })
    yield* Effect.addFinalizer(() => stop(child, exited, termTimeoutMs))
    const ready = yield* Effect.callback<ReadyMessage, ProcessStartError>((resume) => {
      const onMessage = (message: unknown) => {
        if (isReadyMessage(message)) resume(Effect.succeed(message))
      }
      const onExit = (code: number | null, name: string | null) =>
        resume(
          Effect.fail(
            new ProcessStartError({
              reason: "Exited",
              pid,
              message: `process ${pid} (${options.entry}) exited (${name ?? `code ${code}`}) before it was ready`,
            }),
          ),
        )
      child.on("message", onMessage)
      child.once("exit", onExit)
      return Effect.sync(() => {
        child.off("message", onMessage)
        child.off("exit", onExit)
      })
    }).pipe(
      Effect.timeoutOrElse({
        duration: readyTimeoutMs,
        orElse: () =>
          Effect.fail(
            new ProcessStartError({
              reason: "ReadyTimeout",
              pid,
              message: `process ${pid} (${options.entry}) not ready within ${readyTimeoutMs} ms`,
            }),
          ),
      }),
    )
    const handle: ProcessHandle = {
      pid,
      ready,
      startMs: performance.now() - spawnedAt,
      send: (message) => {
        if (child.connected) child.send(message)
      },
    }
    return { value: handle, exit: Effect.map(Deferred.await(exited), (info) => reasonOf(pid, info)) }
  })

/** SIGTERM (after SIGCONT, in case it is frozen), then SIGKILL once `termTimeoutMs` passed; waits for the exit. */
const stop = (child: ChildProcess, exited: Deferred.Deferred<ExitInfo>, termTimeoutMs: number): Effect.Effect<void> =>
  Effect.suspend(() => {
    if (Deferred.isDoneUnsafe(exited)) return Effect.void
    signal(child, "SIGCONT")
    signal(child, "SIGTERM")
    return Deferred.await(exited).pipe(
      Effect.timeoutOrElse({
        duration: termTimeoutMs,
        orElse: () =>
          Effect.suspend(() => {
            signal(child, "SIGKILL")
            return Deferred.await(exited)
          }),
      }),
      Effect.asVoid,
    )
  })

/**
 * A supervised process child (see `start`). The supervisor waits `shutdownTimeout` plus
 * `defaults.killGraceMs` for a stop: SIGKILL comes at `shutdownTimeout`.
 *
 * @example
 * const worker = ProcessChild.spec("worker-1", { entry: "dist/worker.js", shutdownTimeout: "2 seconds" })
 *
 * @since 0.1.0
 */
export const spec = (id: string, options: ProcessOptions): ChildSpec.ChildSpec<ProcessHandle> => {
  const child = ChildSpec.make(id, start(options), options)
  return { ...child, shutdownTimeoutMs: child.shutdownTimeoutMs + defaults.killGraceMs }
}
