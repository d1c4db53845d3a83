/**
 * A process of the topics benchmark (topics.bench.ts), one of four roles:
 * - `bare-pub` / `bare-sub`: the plain use of zeromq.js PUB/SUB: one ZeroMQ message per event, the event
 *   `{ n }` encoded with msgpackr; the subscriber counts losses from jumps in `n`.
 * - `zactor-pub` / `zactor-sub`: a zactor node publishing the topic `Ticks` (`{ n }`, Effect Schema, validated on
 *   both ends) and a node subscribing to it; losses are the `missed` of the gap notices.
 *
 * Control (IPC): `warmup` (publishers: 2,000 events/s until `run`), `run` (publishers: as fast as they can, a
 * burst of events per event-loop turn), `idle` (publishers: stop publishing), `mark` (report counters and CPU
 * time), `stop`. Reports: `ready`
 * (publishers: the endpoint to connect to), `receiving` (subscribers: the first event arrived), `mark`.
 *
 * @since 0.1.0
 */
import { setImmediate as nextTurn } from "node:timers/promises"
import { Node, Topic } from "@zactor/core"
import { Effect, Schema, Stream } from "effect"
import { pack, unpack } from "msgpackr"
import * as zmq from "zeromq"

/** The benchmark topic. @since 0.1.0 */
export const Ticks = Topic.make("ticks", { schema: Schema.Struct({ n: Schema.Number }) })

/** Events per publishing turn when running flat out. */
const BURST = 1000

type Control = { readonly type: "warmup" | "run" | "idle" | "mark" | "stop" }

const role = process.argv[2] ?? ""
const endpoint = process.argv[3] ?? ""
const report = (message: Record<string, unknown>) => process.send?.(message)
const die = (error: unknown): never => {
  console.error(`topics bench role ${role} failed:`, error)
  process.exit(1)
}

let lastCpu = process.cpuUsage()
const cpuSinceLastMark = (): number => {
  const cpu = process.cpuUsage()
  const us = cpu.user - lastCpu.user + (cpu.system - lastCpu.system)
  lastCpu = cpu
  return us
}

/** Publishing: a warm-up trickle, then flat out; `publishOne` returns false when the event was refused. */
const servePublisher = (publishOne: (n: number) => Promise<boolean> | boolean) => {
  let mode: "idle" | "warmup" | "run" = "idle"
  let published = 0
  let refused = 0
  const loop = async () => {
    for (;;) {
      if (mode === "warmup") {
        await new Promise((resolve) => setTimeout(resolve, 1))
        if (!(await publishOne(++published))) refused++
        continue
      }
      if (mode === "run") {
        for (let i = 0; i < BURST; i++) {
          const accepted = publishOne(++published)
          // Only a Promise is awaited: a synchronous publisher pays no microtask per event.
          if (accepted instanceof Promise ? !(await accepted) : !accepted) refused++
        }
        await nextTurn()
        continue
      }
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
  }
  loop().catch(die)
  process.on("message", (control: Control) => {
    if (control.type === "warmup" || control.type === "run" || control.type === "idle") mode = control.type
    if (control.type === "mark")
      report({ type: "mark", at: performance.now(), count: published, refused, cpuUs: cpuSinceLastMark() })
    if (control.type === "stop") process.exit(0)
  })
}

/** Subscribing: counts events and losses; reports `receiving` on the first event. */
const subscriberCounters = () => {
  const counters = { received: 0, missed: 0 }
  let receiving = false
  process.on("message", (control: Control) => {
    if (control.type === "mark")
      report({
        type: "mark",
        at: performance.now(),
        count: counters.received,
        missed: counters.missed,
        cpuUs: cpuSinceLastMark(),
      })
    if (control.type === "stop") process.exit(0)
  })
  return {
    counters,
    first: () => {
      if (receiving) return
      receiving = true
      report({ type: "receiving" })
    },
  }
}

process.once("disconnect", () => process.exit(0))

switch (role) {
  case "bare-pub": {
    const socket = new zmq.Publisher({ linger: 0 })
    await socket.bind("tcp://127.0.0.1:*")
    // One ZeroMQ message per event, one send in flight (zeromq.js allows no more); PUB drops at the high-water mark.
    servePublisher(async (n) => {
      await socket.send(pack({ n }))
      return true
    })
    report({ type: "ready", endpoint: socket.lastEndpoint })
    break
  }
  case "bare-sub": {
    const socket = new zmq.Subscriber({ linger: 0 })
    socket.connect(endpoint)
    socket.subscribe()
    const { counters, first } = subscriberCounters()
    report({ type: "ready" })
    let last = 0
    for await (const [frame] of socket) {
      const { n } = unpack(frame!) as { readonly n: number }
      first()
      counters.received++
      if (last !== 0 && n > last + 1) counters.missed += n - last - 1
      last = n
    }
    break
  }
  case "zactor-pub": {
    await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const node = yield* Node.makeZmq({ id: "bench-pub" })
          const publisher = yield* node.topics.publisher(Ticks)
          servePublisher((n) => publisher.offer({ n }) === undefined)
          report({ type: "ready", endpoint: node.endpoints()[0] })
          return yield* Effect.never
        }),
      ),
    ).catch(die)
    break
  }
  case "zactor-sub": {
    const { counters, first } = subscriberCounters()
    await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const node = yield* Node.makeZmq({ id: `bench-sub-${process.pid}` })
          yield* node.connect(endpoint)
          report({ type: "ready" })
          yield* Stream.runForEachArray(node.topics.subscribe(Ticks, { bufferSize: 100_000 }), (messages) =>
            Effect.sync(() => {
              for (const message of messages) {
                if (message._tag === "Event") {
                  first()
                  counters.received++
                } else if (message._tag === "Gap") {
                  counters.missed += message.missed
                }
              }
            }),
          )
        }),
      ),
    ).catch(die)
    break
  }
  default:
    die(new Error(`unknown role "${role}"`))
}
