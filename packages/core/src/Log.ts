/**
 * Structured logs with pino. Every node has one logger bound with its node id; what the node logs about
 * calls (a handler's defect) is also bound with the call's method, call id and trace id, and actor calls
 * with the actor path. `Effect.log` inside a handler goes to the same logger with the same bindings, unless
 * the application installed loggers of its own.
 *
 * Quiet by default: level `warn` (from `LogOptions.level`, else the `ZACTOR_LOG_LEVEL` environment
 * variable), so a healthy node logs nothing and no call is ever logged at the default level. Pretty,
 * human-readable lines (pino-pretty) when writing to a terminal outside production, JSON lines otherwise.
 *
 * @since 0.1.0
 */
import { createRequire } from "node:module"
import { Cause, Context, Logger, type LogLevel, References } from "effect"
import { pino } from "pino"
import { type CallContext, CurrentCall } from "./CallContext.ts"
import * as TraceContext from "./TraceContext.ts"

/**
 * A pino logger.
 *
 * @since 0.1.0
 */
export type PinoLogger = pino.Logger

/**
 * Log levels, least verbose last.
 *
 * @since 0.1.0
 */
export type Level = "trace" | "debug" | "info" | "warn" | "error" | "fatal" | "silent"

/**
 * Logging options of a node.
 *
 * @since 0.1.0
 */
export interface LogOptions {
  /**
   * Least severe level written. Default: `ZACTOR_LOG_LEVEL` if set, else `warn` (a healthy node is silent).
   * `info` adds the node's lifecycle (start, peers joining and leaving, reconnects), `debug` dead letters.
   */
  readonly level?: Level | undefined
  /**
   * Human-readable lines (pino-pretty) instead of JSON. Default: when the destination is a terminal and
   * `NODE_ENV` is not `production`.
   */
  readonly pretty?: boolean | undefined
  /** Where lines go. Default: standard error (standard output stays the application's). */
  readonly destination?: pino.DestinationStream | undefined
  /**
   * An application logger to derive the node's from (a child bound with the node id); `level`, `pretty` and
   * `destination` are then the application's. Default: a logger of the node's own.
   */
  readonly logger?: PinoLogger | undefined
  /**
   * Whether `Effect.log` inside handlers goes to this logger, bound with the call, when the application has
   * not installed loggers of its own (Effect's default console logger is replaced). Default true.
   */
  readonly effectLogs?: boolean | undefined
}

/** The environment variable read for the level when `LogOptions.level` is not set. @since 0.1.0 */
export const ENV_LEVEL = "ZACTOR_LOG_LEVEL"

/** The level when neither the option nor the environment sets one. @since 0.1.0 */
export const DEFAULT_LEVEL: Level = "warn"

const levels: ReadonlyArray<Level> = ["trace", "debug", "info", "warn", "error", "fatal", "silent"]

/**
 * Whether a string names a level.
 *
 * @since 0.1.0
 */
export const isLevel = (u: unknown): u is Level =>
  typeof u === "string" && (levels as ReadonlyArray<string>).includes(u)

/**
 * The level a node uses: the option, else `ZACTOR_LOG_LEVEL` (ignored when not a level), else `warn`.
 *
 * @since 0.1.0
 */
export const levelOf = (options: LogOptions | undefined): Level => {
  if (options?.level !== undefined) return options.level
  const fromEnv = process.env[ENV_LEVEL]?.trim().toLowerCase()
  return isLevel(fromEnv) ? fromEnv : DEFAULT_LEVEL
}

const require = createRequire(import.meta.url)

/** pino-pretty's formatter, loaded only when pretty output is wanted (JSON lines do not need it). */
const prettyStream = (write: (text: string) => void, colorize: boolean): pino.DestinationStream => {
  const { prettyFactory } = require("pino-pretty") as {
    prettyFactory: (options: Record<string, unknown>) => (line: string) => string
  }
  const format = prettyFactory({ colorize, translateTime: "HH:MM:ss.l", ignore: "pid,hostname" })
  return { write: (line: string) => write(format(line)) }
}

/**
 * What the automatic choice between pretty and JSON lines reads from the process.
 *
 * @since 0.1.0
 */
export interface FormatEnvironment {
  /** Whether standard error is a terminal. */
  readonly stderrIsTTY: boolean
  /** The value of `NODE_ENV`, if set. */
  readonly nodeEnv: string | undefined
}

/** The process's own format environment. */
const processEnvironment = (): FormatEnvironment => ({
  stderrIsTTY: process.stderr.isTTY === true,
  nodeEnv: process.env.NODE_ENV,
})

/**
 * Whether a node writes pretty lines: `LogOptions.pretty` when set; otherwise only when the lines go to standard
 * error (no `destination`), standard error is a terminal and `NODE_ENV` is not `production` (development at a
 * terminal). JSON lines everywhere else: pipes, files, log collectors, production.
 *
 * @since 0.1.0
 */
export const isPretty = (
  options: LogOptions | undefined,
  environment: FormatEnvironment = processEnvironment(),
): boolean =>
  options?.pretty ??
  (options?.destination === undefined && environment.stderrIsTTY && environment.nodeEnv !== "production")

// One standard error stream for every node of the process. Synchronous writes: a line logged just before a crash
// is not lost in a buffer.
let sharedStderr: pino.DestinationStream | undefined
const stderr = (): pino.DestinationStream => (sharedStderr ??= pino.destination({ fd: 2, sync: true }))

/**
 * Builds the logger of a node, bound with `bindings` (the node id).
 *
 * @since 0.1.0
 */
export const make = (options: LogOptions | undefined, bindings: { readonly [key: string]: string }): PinoLogger => {
  if (options?.logger !== undefined) return options.logger.child(bindings)
  const level = levelOf(options)
  const base = { level, base: { pid: process.pid, ...bindings } }
  const destination = options?.destination
  const environment = processEnvironment()
  if (isPretty(options, environment)) {
    // Colours only for a terminal.
    const terminal = destination === undefined && environment.stderrIsTTY
    const write =
      destination === undefined
        ? (text: string) => process.stderr.write(text)
        : (text: string) => destination.write(text)
    return pino(base, prettyStream(write, terminal))
  }
  return pino(base, destination ?? stderr())
}

/**
 * The fields that bind a log line to a call: method, call id, caller, trace and span ids, and the actor
 * path for actor calls. Reading them generates the call's trace if it had none.
 *
 * @since 0.1.0
 */
export const callBindings = (call: CallContext): Record<string, string | number> => {
  const trace = TraceContext.parse(call.traceparent)
  const fields: Record<string, string | number> = {
    method: call.method,
    callId: call.callId,
    caller: call.caller.nodeId ?? call.caller.peerId,
  }
  if (trace !== undefined) {
    fields.traceId = trace.traceId
    fields.spanId = trace.spanId
  }
  if (call.method.startsWith("@")) fields.actor = call.method.slice(0, call.method.lastIndexOf("/"))
  return fields
}

const pinoLevel: Record<LogLevel.LogLevel, pino.Level | undefined> = {
  All: "trace",
  Trace: "trace",
  Debug: "debug",
  Info: "info",
  Warn: "warn",
  Error: "error",
  Fatal: "fatal",
  None: undefined,
}

/**
 * An Effect logger writing to `logger`: the message, the fiber's log annotations, the call the fiber serves
 * (see `callBindings`) and the failure's cause, if any.
 *
 * @since 0.1.0
 */
export const effectLogger = (logger: PinoLogger): Logger.Logger<unknown, void> =>
  Logger.make(({ cause, fiber, logLevel, message }) => {
    const level = pinoLevel[logLevel]
    if (level === undefined || !logger.isLevelEnabled(level)) return
    const parts = Array.isArray(message) ? message : [message]
    const text = parts.filter((part) => typeof part === "string").join(" ")
    const data = parts.filter((part) => typeof part !== "string")
    const call = fiber.getRef(CurrentCall)
    const fields: Record<string, unknown> = { ...fiber.getRef(References.CurrentLogAnnotations) }
    if (call !== undefined) Object.assign(fields, callBindings(call))
    if (data.length > 0) fields.data = data.length === 1 ? data[0] : data
    if (cause.reasons.length > 0) fields.err = Cause.pretty(cause)
    logger[level](fields, text)
  })

/**
 * The context handlers run in: Effect's default console logger replaced by `effectLogger(logger)`. A context
 * whose loggers the application chose is returned as it is.
 *
 * @since 0.1.0
 */
export const handlerContext = <R>(context: Context.Context<R>, logger: PinoLogger): Context.Context<R> => {
  const loggers = Context.get(context, Logger.CurrentLoggers)
  if (!loggers.has(Logger.defaultLogger)) return context
  const next = new Set(loggers)
  next.delete(Logger.defaultLogger)
  next.add(effectLogger(logger))
  return Context.add(context, Logger.CurrentLoggers, next)
}
