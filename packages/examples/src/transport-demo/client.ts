/**
 * The demo's client role: connects a ZmqTransport to the server and keeps `concurrency` `add` calls in flight
 * (a closed loop: each reply sends the next call). Calls unanswered after `callTimeoutMs` are given up, which
 * is how calls lost with a killed server show up. It forwards the connection events it sees (Connected,
 * Disconnected, ConnectRetried, SendFailed, ...) and a progress sample every `progressIntervalMs` to `main.ts`,
 * and on `stop` drains what is in flight and reports a final tally.
 *
 * Run alone: `node --conditions=@zactor/source --import tsx src/transport-demo/client.ts <endpoint> [concurrency]`.
 *
 * @since 0.1.0
 */
import { ZmqTransport } from "@zactor/transport"
import { Effect, Schedule, Stream } from "effect"
import { type Command, decodeReply, encodeRequest, type Progress, report, runRole, type Tally } from "./protocol.ts"

const endpoint = process.argv[2]
if (endpoint === undefined) {
  console.error("usage: client.ts <endpoint> [concurrency]")
  process.exit(2)
}
const concurrency = Number(process.argv[3] ?? 32)
if (!Number.isInteger(concurrency) || concurrency < 1) {
  console.error(`concurrency must be a positive integer, got "${process.argv[3]}"`)
  process.exit(2)
}
const callTimeoutMs = 1000
/** A pause in replies longer than this is an outage: the first reply after it is reported as `resumed`. */
const resumeAfterGapMs = 500
const progressIntervalMs = 250
const standalone = process.send === undefined

// Enough samples for stable percentiles; past it a uniform reservoir keeps memory flat for long manual runs.
const maxLatencySamples = 1_000_000

const percentile = (sorted: Float64Array, p: number): number | undefined =>
  sorted.length === 0 ? undefined : sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]

// A typed array sorts numerically (and faster than an Array with a comparator).
const sortedCopy = (samples: ReadonlyArray<number>): Float64Array => Float64Array.from(samples).sort()

/** Resolves when `main.ts` sends `stop`; never resolves for a client started by hand (Ctrl-C ends it). */
const stopRequested = Effect.callback<void>((resume) => {
  const onMessage = (message: unknown): void => {
    if ((message as Partial<Command> | null)?.type === "stop") resume(Effect.void)
  }
  process.on("message", onMessage)
  return Effect.sync(() => process.off("message", onMessage))
})

const program = Effect.gen(function* () {
  // Shorter than the defaults (5 s each) so that, within a few seconds of demo, calls queued for the dead
  // server are dropped visibly (SendFailed) and the exponential reconnect backoff stays short.
  const transport = yield* ZmqTransport.make({ sendTimeout: "1 second", reconnectIntervalMax: "500 millis" })

  const startedAt = performance.now()
  const calls = new Map<number, number>() // call id -> performance.now() when sent
  const refused: Record<string, number> = {}
  const events: Record<string, number> = {}
  const allLatenciesUs: Array<number> = []
  let windowLatenciesUs: Array<number> = []
  let windowStartedAt = startedAt
  let windowCompleted = 0
  let nextId = 0
  let sent = 0
  let completed = 0
  let timedOut = 0
  let late = 0
  let sendFailedMessages = 0
  let lastReplyAt: number | undefined
  let longestGapMs = 0
  let stopping = false

  // Subscribe before connecting (startImmediately): events reach only subscribers that exist when published.
  yield* Effect.forkScoped(
    Stream.runForEach(transport.events, (event) =>
      Effect.sync(() => {
        events[event._tag] = (events[event._tag] ?? 0) + 1
        let text: string
        switch (event._tag) {
          case "Connected":
            text = `Connected to ${event.endpoint}`
            break
          case "Disconnected":
            text = `Disconnected from ${event.endpoint}`
            break
          case "ConnectRetried":
            text = `ConnectRetried: next attempt in ${event.intervalMs} ms`
            break
          case "SendFailed":
            sendFailedMessages += event.messages
            text = `SendFailed: ${event.messages} queued call(s) dropped (${event.reason})`
            break
          case "HandshakeFailed":
            text = `HandshakeFailed (${event.reason}): ${event.detail}`
            break
          case "InputRejected":
            text = `InputRejected (${event.reason}): ${event.detail}`
            break
          default:
            text = event._tag
        }
        if (standalone) console.log(`client: ${text}`)
        report({ type: "event", text })
      }),
    ),
    { startImmediately: true },
  )

  const peer = yield* transport.connect(endpoint)
  report({ type: "ready", peer: peer.id })

  /** Sends one call; false if the transport refused it (the reason is counted). */
  const issue = (): boolean => {
    const id = nextId++
    const error = transport.offer(peer.id, encodeRequest(id))
    if (error !== undefined) {
      refused[error.reason] = (refused[error.reason] ?? 0) + 1
      return false
    }
    calls.set(id, performance.now())
    sent++
    return true
  }
  const topUp = (): void => {
    while (!stopping && calls.size < concurrency && issue()) {}
  }

  // Replies are handled synchronously, one pass per array of batches, and each frees a slot for the next call.
  yield* Effect.forkScoped(
    Stream.runForEachArray(transport.received, (batches) =>
      Effect.sync(() => {
        const now = performance.now()
        for (const { payloads } of batches) {
          for (const payload of payloads) {
            const { id } = decodeReply(payload)
            const sentAt = calls.get(id)
            if (sentAt === undefined) {
              late++
              continue
            }
            calls.delete(id)
            const latencyUs = (now - sentAt) * 1000
            if (completed < maxLatencySamples) allLatenciesUs.push(latencyUs)
            else {
              const slot = Math.floor(Math.random() * (completed + 1))
              if (slot < maxLatencySamples) allLatenciesUs[slot] = latencyUs
            }
            windowLatenciesUs.push(latencyUs)
            completed++
            windowCompleted++
          }
        }
        if (lastReplyAt !== undefined) {
          const gapMs = now - lastReplyAt
          longestGapMs = Math.max(longestGapMs, gapMs)
          if (gapMs > resumeAfterGapMs) {
            if (standalone) console.log(`client: replies resumed after a ${gapMs.toFixed(0)} ms gap`)
            report({ type: "resumed", gapMs })
          }
        }
        lastReplyAt = now
        topUp()
      }),
    ),
  )

  const sweep = (): void => {
    const now = performance.now()
    for (const [id, sentAt] of calls) {
      // Map iteration follows insertion order, i.e. send order: the first young call ends the scan.
      if (now - sentAt < callTimeoutMs) break
      calls.delete(id)
      timedOut++
    }
    topUp()
  }

  const progress = (): Progress => {
    const now = performance.now()
    const sorted = sortedCopy(windowLatenciesUs)
    const sample: Progress = {
      type: "progress",
      callsPerSecond: Math.round((windowCompleted * 1000) / Math.max(1, now - windowStartedAt)),
      inFlight: calls.size,
      p50Us: percentile(sorted, 0.5),
      queued: transport.metrics().queuedMessages,
      completed,
      timedOut,
    }
    windowLatenciesUs = []
    windowCompleted = 0
    windowStartedAt = now
    return sample
  }

  let ticks = 0
  yield* Effect.forkScoped(
    Effect.repeat(
      Effect.sync(() => {
        sweep()
        ticks++
        if (ticks % (progressIntervalMs / 50) !== 0) return
        const sample = progress()
        if (standalone && ticks % (1000 / 50) === 0) {
          console.log(
            `${sample.callsPerSecond} calls/s, in flight ${sample.inFlight}, p50 ${sample.p50Us?.toFixed(0)} µs`,
          )
        }
        report(sample)
      }),
      Schedule.spaced("50 millis"),
    ),
  )

  topUp()
  yield* stopRequested

  // Drain: no new calls; what is in flight either completes or times out through the sweep.
  stopping = true
  const drainUntil = performance.now() + callTimeoutMs + 100
  while (calls.size > 0 && performance.now() < drainUntil) yield* Effect.sleep("10 millis")
  timedOut += calls.size
  calls.clear()

  const sorted = sortedCopy(allLatenciesUs)
  const tally: Tally = {
    durationMs: performance.now() - startedAt,
    sent,
    completed,
    timedOut,
    late,
    refused,
    events,
    sendFailedMessages,
    p50Us: percentile(sorted, 0.5),
    p99Us: percentile(sorted, 0.99),
    longestGapMs,
  }
  report({ type: "final", tally })
}).pipe(Effect.scoped)

runRole("client", program)
