/**
 * `zactor ping <endpoint|node|service>`: proves that the nodes answer, not just that a port is open. Each
 * ping is a zactor PING answered by the node's receive loop (`node.ping`), so it needs the process, its
 * event loop and the zactor protocol to work. Exit status 0 when at least one ping was answered, 1 when
 * none was: usable as a health check.
 */
import { Effect } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import * as Flags from "../internal/flags.ts"
import * as Output from "../internal/output.ts"
import { type Instance, instances } from "../internal/resolve.ts"
import * as Session from "../internal/session.ts"

/** One ping's outcome. */
interface Reply {
  readonly seq: number
  readonly endpoint: string
  readonly node: string | null
  readonly rttMs: number | null
  readonly error: string | null
}

const pingOnce = (session: Session.Session, instance: Instance, seq: number): Effect.Effect<Reply> =>
  session.node.ping(session.target(instance.endpoint), { timeout: session.timeoutMs }).pipe(
    Effect.map(
      (result): Reply => ({
        seq,
        endpoint: instance.endpoint,
        node: result.nodeId ?? instance.nodeId ?? null,
        rttMs: result.rttMs,
        error: null,
      }),
    ),
    Effect.catch((error) =>
      Effect.succeed<Reply>({
        seq,
        endpoint: instance.endpoint,
        node: instance.nodeId ?? null,
        rttMs: null,
        error: `${error.code}: ${error.message}`,
      }),
    ),
  )

const describeReply = (reply: Reply): string =>
  reply.rttMs === null
    ? `no answer from ${reply.node ?? reply.endpoint} (${reply.endpoint}) seq=${reply.seq}: ${reply.error}`
    : `answer from ${reply.node ?? "?"} (${reply.endpoint}) seq=${reply.seq} time=${Output.ms(reply.rttMs)}`

/** The `ping` command. */
export const command = Command.make(
  "ping",
  {
    target: Argument.String("target").pipe(
      Argument.withDescription("An endpoint (tcp://host:port), a node id, a service name, or @actor"),
    ),
    count: Flag.Int("count").pipe(
      Flag.withAlias("c"),
      Flag.withDescription("Pings to send to each node (default 1)"),
      Flag.withDefault(1),
    ),
    interval: Flag.String("interval").pipe(
      Flag.withDescription("Time between rounds of pings, e.g. 1s (default 1s)"),
      Flag.withDefault("1s"),
    ),
    json: Flags.json,
    ...Flags.connection,
  },
  (flags) =>
    Output.guard(
      "ping",
      flags.json,
      Effect.scoped(
        Effect.gen(function* () {
          if (flags.count < 1) return yield* Effect.fail(Output.usage("--count must be at least 1"))
          const interval = Flags.parseDuration(flags.interval, "interval")
          if (typeof interval === "string") return yield* Effect.fail(Output.usage(interval))
          const session = yield* Session.open(flags)
          const targets = yield* instances(session, flags.target)
          if (!flags.json) {
            yield* Output.line(
              `PING ${flags.target}: ${targets.length} node(s), timeout ${Output.ms(session.timeoutMs)}`,
            )
          }
          // Connect (and exchange HELLO/WELCOME) first, so the round trips measure answers, not connection set-up.
          yield* Effect.forEach(
            targets,
            (instance) => {
              const target = session.target(instance.endpoint)
              const serverPublicKey = "serverPublicKey" in target ? target.serverPublicKey : undefined
              return Effect.ignore(session.node.connect(instance.endpoint, { serverPublicKey }))
            },
            { concurrency: "unbounded", discard: true },
          )
          const replies: Array<Reply> = []
          for (let seq = 1; seq <= flags.count; seq++) {
            if (seq > 1) yield* Effect.sleep(interval)
            const round = yield* Effect.forEach(targets, (instance) => pingOnce(session, instance, seq), {
              concurrency: "unbounded",
            })
            for (const reply of round) {
              replies.push(reply)
              if (!flags.json) yield* Output.line(describeReply(reply))
            }
          }
          const rtts = replies.flatMap((reply) => (reply.rttMs === null ? [] : [reply.rttMs]))
          const summary = {
            target: flags.target,
            sent: replies.length,
            received: rtts.length,
            lost: replies.length - rtts.length,
            rttMs:
              rtts.length === 0
                ? null
                : {
                    min: Math.min(...rtts),
                    avg: rtts.reduce((sum, rtt) => sum + rtt, 0) / rtts.length,
                    max: Math.max(...rtts),
                  },
            replies,
          }
          if (flags.json) yield* Output.json(summary)
          else {
            const loss = Math.round((100 * summary.lost) / summary.sent)
            const times =
              summary.rttMs === null
                ? ""
                : `, round trip min/avg/max ${Output.ms(summary.rttMs.min)} / ${Output.ms(summary.rttMs.avg)} / ${Output.ms(summary.rttMs.max)}`
            yield* Output.line(`--- ${summary.sent} sent, ${summary.received} answered, ${loss}% lost${times}`)
          }
          if (summary.received === 0) yield* Output.exitWith(1)
        }),
      ),
    ),
).pipe(
  Command.withDescription(
    "Check that nodes answer: sends zactor PINGs (answered by the node's event loop) and prints round-trip times. Exit status 0 when answered, 1 when not.",
  ),
)
