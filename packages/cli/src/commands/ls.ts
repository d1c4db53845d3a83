/**
 * `zactor ls`: the members discovered (LAN beacon by default, `--static`, `--etcd`), each asked for its
 * description through the admin service. State, as this command sees it:
 * - `alive`: answered within `--timeout`;
 * - `suspect`: listed by the registry (so recently announced), or greeted us, but did not answer in time;
 * - `dead`: a static entry that nothing answers at.
 */
import type { Admin } from "@zactor/core"
import { Effect } from "effect"
import { Command } from "effect/cli"
import * as Flags from "../internal/flags.ts"
import * as Output from "../internal/output.ts"
import * as Session from "../internal/session.ts"

/** One member as `ls` reports it. */
export interface Listed {
  readonly node: string
  readonly state: "alive" | "suspect" | "dead"
  readonly endpoint: string
  readonly services: ReadonlyArray<string>
  readonly actors: ReadonlyArray<string>
  /** What the node said about itself, when it answered. */
  readonly description: Admin.Description | null
  readonly error: string | null
}

const list = (session: Session.Session) =>
  Effect.gen(function* () {
    const members = yield* session.members
    return yield* Effect.forEach(
      members,
      (member) =>
        session.describe(member.endpoint).pipe(
          Effect.map(
            (description): Listed => ({
              node: description.node,
              state: "alive",
              endpoint: member.endpoint,
              services: description.services,
              actors: description.actors,
              description,
              error: null,
            }),
          ),
          Effect.catch((error) =>
            Effect.sync((): Listed => {
              const greeted = session.node.remotes().find((remote) => remote.endpoint === member.endpoint)?.info
              const listedByRegistry = session.source !== "static"
              return {
                node: greeted?.id ?? member.nodeId,
                state: greeted !== undefined || listedByRegistry ? "suspect" : "dead",
                endpoint: member.endpoint,
                services: greeted?.services ?? member.services.filter((service) => service !== "*"),
                actors: greeted?.actors ?? member.actors,
                description: null,
                error: `${error.code}: ${error.message}`,
              }
            }),
          ),
        ),
      { concurrency: 16 },
    )
  })

const uptime = (description: Admin.Description | null): string => {
  if (description === null) return "-"
  const seconds = Math.max(0, Math.round((Date.now() - description.startedAt) / 1000))
  if (seconds < 120) return `${seconds}s`
  if (seconds < 7200) return `${Math.round(seconds / 60)}m`
  return `${Math.round(seconds / 3600)}h`
}

const render = (listed: ReadonlyArray<Listed>): string =>
  Output.table(
    ["NODE", "STATE", "ENDPOINT", "SERVICES", "ACTORS", "UP", "PID"],
    listed.map((member) => [
      member.node,
      member.state,
      member.endpoint,
      member.services.join(",") || "-",
      member.actors.join(",") || "-",
      uptime(member.description),
      member.description === null ? "-" : String(member.description.pid),
    ]),
  )

/** The `ls` command. */
export const command = Command.make("ls", { json: Flags.json, ...Flags.connection }, (flags) =>
  Output.guard(
    "ls",
    flags.json,
    Effect.scoped(
      Effect.gen(function* () {
        const session = yield* Session.open(flags)
        const listed = [...(yield* list(session))].sort((a, b) => a.node.localeCompare(b.node))
        if (flags.json) {
          yield* Output.json({ source: session.source, members: listed })
        } else if (listed.length === 0) {
          yield* Output.line(`no members found (${session.source})`)
        } else {
          yield* Output.line(render(listed))
        }
      }),
    ),
  ),
).pipe(
  Command.withDescription(
    "List the members discovered (nodes, services, actors, endpoints) and whether they answer (alive, suspect, dead).",
  ),
)
