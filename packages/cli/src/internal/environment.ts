/**
 * The services Effect's CLI module needs, for a Node process: arguments and standard streams from `process`,
 * terminal size from standard output. zactor's commands do not use the file system, child processes or
 * prompts, so those are no-op services (no platform package needed).
 */
import { Effect, FileSystem, Layer, Path, Queue, Sink, Stdio, Stream, Terminal } from "effect"
import { ChildProcessSpawner } from "effect/process"

const writeTo =
  (stream: NodeJS.WriteStream) =>
  (chunk: string | Uint8Array): Effect.Effect<void> =>
    Effect.sync(() => void stream.write(chunk))

const write = (stream: NodeJS.WriteStream) => Sink.forEach(writeTo(stream))

const stdio = (args: ReadonlyArray<string>) =>
  Stdio.make({
    args: Effect.succeed(args),
    stdinIsTerminal: Effect.sync(() => process.stdin.isTTY === true),
    stdoutIsTerminal: Effect.sync(() => process.stdout.isTTY === true),
    stderrIsTerminal: Effect.sync(() => process.stderr.isTTY === true),
    stdout: () => write(process.stdout),
    stderr: () => write(process.stderr),
    stdin: Stream.empty,
  })

const terminal = Terminal.make({
  columns: Effect.sync(() => process.stdout.columns ?? 80),
  rows: Effect.sync(() => process.stdout.rows ?? 24),
  size: Effect.gen(function* () {
    const queue = yield* Queue.sliding<Terminal.Size, never>(1)
    yield* Queue.offer(queue, { columns: process.stdout.columns ?? 80, rows: process.stdout.rows ?? 24 })
    return queue as unknown as Queue.Dequeue<Terminal.Size, never>
  }) as Terminal.Terminal["size"],
  readInput: Effect.die("zactor reads no terminal input"),
  readLine: Effect.die("zactor reads no terminal input"),
  display: (text) => Effect.sync(() => void process.stdout.write(text)),
})

/** The CLI environment of this process, with `args` as the command line (without `node` and the script). */
export const layer = (args: ReadonlyArray<string>) =>
  Layer.mergeAll(
    FileSystem.layerNoop({}),
    Path.layer,
    Layer.succeed(Stdio.Stdio, stdio(args)),
    Layer.succeed(Terminal.Terminal, terminal),
    Layer.succeed(
      ChildProcessSpawner.ChildProcessSpawner,
      ChildProcessSpawner.make(() => Effect.die("zactor starts no processes")),
    ),
  )
