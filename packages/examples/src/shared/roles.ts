/**
 * Starting an example's roles as child processes, for the examples' `main.ts` files: each role is a file next to
 * the `main` that starts it, run with the parent's Node options (so `--import tsx` and the source condition carry
 * over when set), with its extension (`.ts` through tsx, `.js` once compiled). Every child is killed by PID when
 * the parent exits, on every path, and the whole run has a deadline.
 */
import { type ChildProcess, fork } from "node:child_process"
import { extname, join } from "node:path"

/** The roles of one example run. */
export interface Roles {
  /** Starts the role `name` (a file next to `main`) with arguments and extra environment. */
  readonly start: (name: string, args?: ReadonlyArray<string>, env?: Readonly<Record<string, string>>) => ChildProcess
  /** Resolves with the child's exit status (1 when killed by a signal). */
  readonly exitOf: (child: ChildProcess) => Promise<number>
  /** Resolves with the first IPC message of `type` the child sends; rejects if it exits first. */
  readonly messageOf: <M extends { readonly type: string }>(child: ChildProcess, type: string) => Promise<M>
  /** Runs the example's body and exits with its status (1, with the message, if it throws). */
  readonly main: (body: () => Promise<number>) => void
}

/** Roles relative to the `main` file whose `import.meta` is given; the run fails after `deadlineMs`. */
export const roles = (main: ImportMeta, title: string, deadlineMs: number): Roles => {
  const children = new Set<ChildProcess>()
  process.on("exit", () => {
    for (const child of children) {
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
    }
  })
  for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => process.exit(130))
  const deadline = setTimeout(() => {
    console.error(`${title}: not done within ${deadlineMs} ms`)
    process.exit(1)
  }, deadlineMs)
  const extension = extname(main.filename)
  return {
    start: (name, args = [], env = {}) => {
      const child = fork(join(main.dirname, `${name}${extension}`), [...args], {
        stdio: ["ignore", "inherit", "inherit", "ipc"],
        env: { ...process.env, ...env },
      })
      children.add(child)
      return child
    },
    exitOf: (child) =>
      child.exitCode !== null || child.signalCode !== null
        ? Promise.resolve(child.exitCode ?? 1)
        : new Promise((resolve) => child.once("exit", (code) => resolve(code ?? 1))),
    messageOf: <M extends { readonly type: string }>(child: ChildProcess, type: string) =>
      new Promise<M>((resolve, reject) => {
        const onMessage = (message: M): void => {
          if (message?.type !== type) return
          child.off("message", onMessage)
          resolve(message)
        }
        child.on("message", onMessage)
        child.once("exit", (code) => reject(new Error(`${title}: a role exited (${code}) before "${type}"`)))
      }),
    main: (body) => {
      body().then(
        (status) => {
          clearTimeout(deadline)
          process.exit(status)
        },
        (error: unknown) => {
          console.error(`${title}: ${error instanceof Error ? error.message : String(error)}`)
          process.exit(1)
        },
      )
    },
  }
}
