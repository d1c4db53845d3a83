/**
 * One-command demo of the protobuf example (`pnpm --filter @zactor/examples demo:protobuf`): starts `server.ts`
 * and `client.ts` as two processes, each with its own zactor node, and passes the server's endpoint to the
 * client. Exits with the client's status once the server has stopped. Children are killed by PID on every exit
 * path. It runs the same whether started as TypeScript (through tsx) or compiled to JavaScript: the roles are the
 * files next to this one with this file's extension.
 *
 * @since 0.1.0
 */
import { type ChildProcess, fork } from "node:child_process"
import { extname, join } from "node:path"

const deadlineMs = 30_000
const children = new Set<ChildProcess>()
const role = (name: string): string => join(import.meta.dirname, `${name}${extname(import.meta.filename)}`)

const killChildren = (): void => {
  for (const child of children) {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
  }
}
process.on("exit", killChildren)
const deadline = setTimeout(() => {
  console.error(`protobuf demo: not done within ${deadlineMs} ms`)
  process.exit(1)
}, deadlineMs)

/** Starts a role with this process's Node options (`--import tsx` and the source condition, when set). */
const start = (name: string, args: ReadonlyArray<string>): ChildProcess => {
  const child = fork(role(name), args, { stdio: ["ignore", "inherit", "inherit", "ipc"] })
  children.add(child)
  return child
}

const exitOf = (child: ChildProcess): Promise<number> =>
  child.exitCode !== null
    ? Promise.resolve(child.exitCode)
    : new Promise((done) => child.once("exit", (code) => done(code ?? 1)))

const server = start("server", [])
const endpoint = await new Promise<string>((resolve, reject) => {
  server.once("message", (message: { readonly type: string; readonly endpoint: string }) => resolve(message.endpoint))
  server.once("exit", (code) => reject(new Error(`the server exited (${code}) before listening`)))
})
console.log(`protobuf demo: server listening on ${endpoint}`)

const clientStatus = await exitOf(start("client", [endpoint]))
server.kill("SIGTERM")
const serverStatus = await exitOf(server)
clearTimeout(deadline)
console.log(`protobuf demo: client exited ${clientStatus}, server exited ${serverStatus}`)
process.exit(clientStatus === 0 && serverStatus === 0 ? 0 : 1)
