/**
 * Output of the commands: text tables and lines for people, JSON for scripts, failures on standard error
 * with an exit status (1: the check failed or a node refused, 2: the command line was wrong).
 */
import { Data, Effect } from "effect"

/** A command's failure: printed on standard error, and the process exits with `exitCode`. */
export class CliFailure extends Data.TaggedError("CliFailure")<{
  readonly message: string
  readonly exitCode: 1 | 2
}> {}

/** Fails the command: the check failed, or a node refused (exit 1). */
export const failed = (message: string) => new CliFailure({ message, exitCode: 1 })

/** Fails the command: wrong usage or input (exit 2). */
export const usage = (message: string) => new CliFailure({ message, exitCode: 2 })

/** Writes a line to standard output. */
export const line = (text = ""): Effect.Effect<void> => Effect.sync(() => void process.stdout.write(`${text}\n`))

/** Writes a value as JSON to standard output (one document, indented). */
export const json = (value: unknown): Effect.Effect<void> => line(JSON.stringify(value, null, 2))

/** Writes a line to standard error. */
export const errorLine = (text: string): Effect.Effect<void> =>
  Effect.sync(() => void process.stderr.write(`${text}\n`))

/** The exit status of the command running in this process (one at a time); the highest set wins. */
export const status = { code: 0 }

/** Raises the exit status the command ends with. */
export const exitWith = (code: number): Effect.Effect<void> =>
  Effect.sync(() => {
    status.code = Math.max(status.code, code)
  })

/**
 * Runs a command body: a `CliFailure` is printed (`zactor <command>: message`, or `{"error": ...}` on standard
 * output with `--json`) and sets the exit status; anything else is a bug and propagates.
 */
export const guard = <R>(
  command: string,
  asJson: boolean,
  body: Effect.Effect<void, CliFailure, R>,
): Effect.Effect<void, never, R> =>
  Effect.catchTag(body, "CliFailure", (failure) =>
    Effect.andThen(
      asJson
        ? json({ error: failure.message, exitCode: failure.exitCode })
        : errorLine(`zactor ${command}: ${failure.message}`),
      exitWith(failure.exitCode),
    ),
  )

/** Lays rows out in columns under a header, two spaces apart; the last column is not padded. */
export const table = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => (row[i] ?? "").length)))
  const render = (cells: ReadonlyArray<string>) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd()
  return [render(header), ...rows.map(render)].join("\n")
}

/** A number of milliseconds for people: `0.42 ms`, `12.3 ms`, `1.20 s`; `-` when unknown. */
export const ms = (value: number | undefined | null): string => {
  if (value === undefined || value === null || !Number.isFinite(value)) return "-"
  if (value >= 1000) return `${(value / 1000).toFixed(2)} s`
  if (value >= 10) return `${value.toFixed(1)} ms`
  return `${value.toFixed(2)} ms`
}

/** A rate for people: `1234/s`, `0.5/s`. */
export const rate = (value: number): string =>
  value >= 100
    ? `${Math.round(value)}/s`
    : value >= 1
      ? `${value.toFixed(1)}/s`
      : value > 0
        ? `${value.toFixed(2)}/s`
        : "0"

/** Bytes per second for people. */
export const bytesRate = (value: number): string => {
  if (value >= 1024 * 1024) return `${(value / 1024 / 1024).toFixed(1)} MiB/s`
  if (value >= 1024) return `${(value / 1024).toFixed(1)} KiB/s`
  return `${Math.round(value)} B/s`
}
