/**
 * What the demo's processes say to each other: the request/reply payloads that travel through ZmqTransport
 * (msgpack, as in the benchmarks), and the progress messages the roles send to `main.ts` over Node's IPC
 * channel. The transport itself only ever sees the opaque bytes made here.
 *
 * @since 0.1.0
 */
import { Cause, Effect, Exit } from "effect"
import { pack, unpack } from "msgpackr"

/** A call: add the two numbers in `args`. @since 0.1.0 */
export interface AddRequest {
  readonly id: number
  readonly method: "add"
  readonly args: readonly [number, number]
}

/** The answer to the call with the same `id`. @since 0.1.0 */
export interface AddReply {
  readonly id: number
  readonly result: number
}

/** Encodes a request payload. @since 0.1.0 */
export const encodeRequest = (id: number): Uint8Array => pack({ id, method: "add", args: [1, 2] })

/** Decodes a request payload; the demo's peers are trusted, so the shape is not re-checked per message. @since 0.1.0 */
export const decodeRequest = (payload: Uint8Array): AddRequest => unpack(payload) as AddRequest

/** Encodes a reply payload. @since 0.1.0 */
export const encodeReply = (id: number, result: number): Uint8Array => pack({ id, result })

/** Decodes a reply payload. @since 0.1.0 */
export const decodeReply = (payload: Uint8Array): AddReply => unpack(payload) as AddReply

/** Server to main. @since 0.1.0 */
export type ServerReport =
  | { readonly type: "listening"; readonly endpoint: string }
  | { readonly type: "stopped"; readonly served: number }

/** One live sample of the client, sent every `progressIntervalMs`. @since 0.1.0 */
export interface Progress {
  readonly type: "progress"
  /** Replies received in the last interval, per second. */
  readonly callsPerSecond: number
  /** Calls sent and neither answered nor timed out. */
  readonly inFlight: number
  /** Median round trip of the replies in the last interval, in µs; `undefined` when none arrived. */
  readonly p50Us: number | undefined
  /** Payloads waiting in the transport's outbound queue (e.g. while the server is down). */
  readonly queued: number
  readonly completed: number
  readonly timedOut: number
}

/** What the client saw over the whole run. @since 0.1.0 */
export interface Tally {
  readonly durationMs: number
  readonly sent: number
  readonly completed: number
  /** Calls given up after `callTimeoutMs` (lost with the killed server, or dropped by the transport). */
  readonly timedOut: number
  /** Replies that arrived after their call had timed out. */
  readonly late: number
  /** `offer` refusals by reason (e.g. `Overloaded`). */
  readonly refused: Readonly<Record<string, number>>
  /** Transport events seen, by tag. */
  readonly events: Readonly<Record<string, number>>
  /** Payloads the transport reported as dropped in `SendFailed` events. */
  readonly sendFailedMessages: number
  readonly p50Us: number | undefined
  readonly p99Us: number | undefined
  /** Longest time without any reply, in ms: the outage as the client experienced it. */
  readonly longestGapMs: number
}

/** Client to main. @since 0.1.0 */
export type ClientReport =
  | { readonly type: "ready"; readonly peer: string }
  | Progress
  | { readonly type: "event"; readonly text: string }
  /** The first reply after a pause long enough to be an outage (see `resumeAfterGapMs` in client.ts). */
  | { readonly type: "resumed"; readonly gapMs: number }
  | { readonly type: "final"; readonly tally: Tally }

/** Main to a role. @since 0.1.0 */
export type Command = { readonly type: "stop" }

let unsentReports = 0
const onReportsSent: Array<() => void> = []

/** Sends a report to the parent process, if there is one (a role started by hand has no IPC channel). @since 0.1.0 */
export const report = (message: ServerReport | ClientReport): void => {
  if (process.send === undefined || !process.connected) return
  unsentReports++
  process.send(message, undefined, undefined, () => {
    unsentReports--
    if (unsentReports === 0) for (const done of onReportsSent.splice(0)) done()
  })
}

// IPC writes are asynchronous: exiting right after `send` can lose the last report (the final tally).
const reportsSent = (timeoutMs: number): Promise<void> =>
  unsentReports === 0
    ? Promise.resolve()
    : new Promise((done) => {
        onReportsSent.push(done)
        setTimeout(done, timeoutMs).unref()
      })

/**
 * Runs a role's program until it ends or the process is asked to stop (SIGTERM, SIGINT, or the parent's IPC
 * channel closing, so a role never outlives `main.ts`). Interruption closes the role's scope, and with it the
 * transport; any other failure is printed and exits with status 1.
 *
 * @since 0.1.0
 */
export const runRole = (name: string, program: Effect.Effect<void, unknown>): void => {
  const controller = new AbortController()
  const stop = (): void => controller.abort()
  process.once("SIGTERM", stop)
  process.once("SIGINT", stop)
  process.once("disconnect", stop)
  void Effect.runPromiseExit(program, { signal: controller.signal }).then(async (exit) => {
    const failed = Exit.isFailure(exit) && !Cause.hasInterruptsOnly(exit.cause)
    if (failed) console.error(`${name} ${process.pid} failed:\n${Cause.pretty(exit.cause)}`)
    await reportsSent(1000)
    process.exit(failed ? 1 : 0)
  })
}
