/**
 * `zactor ls`: the members discovered (LAN beacon by default, `--static`, `--etcd`), each asked for its
 * description through the admin service. A node that answers is `alive`. For one that does not, the state is
 * what the cluster's own failure detection says: the nodes that did answer report their liveness view of the
 * nodes they connect to (`peers`: alive, suspect, dead; docs/LIVENESS.md) and their discovery view
 * (`members`: alive, joining, unreachable, unregistered, passive, incompatible), and `ls` shows the worst of
 * them. Without any such view, a member the registry lists is `suspect` (announced recently, silent now) and a
 * static entry that nothing answers at is `dead`. Members the answering nodes know but the source no longer lists
 * (a frozen node stops announcing itself on the beacon) are listed too, with what those nodes say of them.
 */
import type { Admin, Discovery } from "@zactor/core"
import { Effect } from "effect"
import { Command } from "effect/cli"
import * as Flags from "../internal/flags.ts"
import * as Output from "../internal/output.ts"
import * as Session from "../internal/session.ts"

/** Liveness as `ls` reports it. */
export type State = "alive" | "suspect" | "dead"

/** What one other node says about a member, from its description. */
export interface View {
  /** The node whose view it is. */
  readonly by: string
  /** Its liveness state of the member (`alive`, `suspect`, `dead`, `joining`), if it connects to it. */
  readonly liveness: string | null
  /** Its discovery state of the member (`Discovery.MemberState`), if it follows the same registry. */
  readonly membership: string | null
}

/** One member as `ls` reports it. */
export interface Listed {
  readonly node: string
  readonly state: State
  /** The worst discovery state the other nodes report for it, `null` when none reports one. */
  readonly membership: string | null
  readonly endpoint: string
  readonly services: ReadonlyArray<string>
  readonly actors: ReadonlyArray<string>
  /** What the node said about itself, when it answered. */
  readonly description: Admin.Description | null
  /** What the nodes that answered say about it. */
  readonly views: ReadonlyArray<View>
  readonly error: string | null
}

/** The views of a member held by the nodes that answered (by node id, or by endpoint for unnamed entries). */
export const viewsOf = (
  member: { readonly node: string; readonly endpoint: string },
  descriptions: ReadonlyArray<Admin.Description>,
): Array<View> => {
  const views: Array<View> = []
  for (const description of descriptions) {
    if (description.node === member.node || description.endpoints.includes(member.endpoint)) continue
    const peer = description.peers.find((p) => p.node === member.node || p.endpoint === member.endpoint)
    const known = description.members.find((m) => m.node === member.node || m.endpoints.includes(member.endpoint))
    if (peer === undefined && known === undefined) continue
    views.push({ by: description.node, liveness: peer?.state ?? null, membership: known?.state ?? null })
  }
  return views
}

/**
 * Discovery states, most telling first (a disagreement with the registry is what an operator looks for); typed
 * against `Discovery.MemberState`, so a state added there must be ranked here.
 */
const membershipRank: Readonly<Record<Discovery.MemberState, number>> = {
  incompatible: 0,
  untrusted: 1,
  unreachable: 2,
  unregistered: 3,
  draining: 4,
  joining: 5,
  passive: 6,
  alive: 7,
}

/** The rank of a state a node reported, -1 for one this version does not know. */
const rankOf = (state: string): number =>
  Object.hasOwn(membershipRank, state) ? membershipRank[state as Discovery.MemberState] : -1

/** The most telling discovery state among the views, `null` when none has one. */
export const membershipOf = (views: ReadonlyArray<View>): string | null => {
  let worst: string | null = null
  for (const { membership } of views) {
    if (membership === null) continue
    const rank = rankOf(membership)
    if (worst === null || (rank >= 0 && rank < rankOf(worst))) worst = membership
  }
  return worst
}

/**
 * A member's state: `alive` if it answered this command; else the worst liveness the other nodes report
 * (`dead`, else `suspect`); else, when they still see it alive or have no view, `suspect` for a member the
 * registry lists and `dead` for a static entry (nothing there answers, and no node knows it).
 */
export const stateOf = (answered: boolean, views: ReadonlyArray<View>, listedByRegistry: boolean): State => {
  if (answered) return "alive"
  if (views.some((view) => view.liveness === "dead")) return "dead"
  if (views.some((view) => view.liveness === "suspect" || view.membership === "unreachable")) return "suspect"
  return listedByRegistry || views.length > 0 ? "suspect" : "dead"
}

/** A member not listed by this command's source but known to a node that answered (a node that went silent). */
const reportedBy = (descriptions: ReadonlyArray<Admin.Description>): Array<Session.Member> => {
  const found: Array<Session.Member> = []
  for (const description of descriptions) {
    for (const member of description.members) {
      if (member.endpoints.length === 0) continue
      found.push({
        nodeId: member.node,
        endpoint: member.endpoints[0]!,
        services: member.services,
        actors: member.actors,
      })
    }
    for (const peer of description.peers) {
      found.push({ nodeId: peer.node ?? peer.endpoint, endpoint: peer.endpoint, services: [], actors: [] })
    }
  }
  return found
}

const list = (session: Session.Session) =>
  Effect.gen(function* () {
    const probe = (members: ReadonlyArray<Session.Member>) =>
      Effect.forEach(
        members,
        (member) =>
          session.describe(member.endpoint).pipe(
            Effect.map((description) => ({ member, description, error: null })),
            Effect.catch((error) => Effect.succeed({ member, description: null, error })),
          ),
        { concurrency: 16 },
      )
    const listed = yield* session.members
    const probed = yield* probe(listed)
    // A node that stopped announcing itself is no longer in the beacon this command listens to, but the nodes it
    // talked to still know it: list it too, with what they say about it.
    const seen = new Set(
      probed.flatMap(({ member, description }) => [member.endpoint, member.nodeId, description?.node]),
    )
    const missing = new Map<string, Session.Member>()
    for (const member of reportedBy(probed.flatMap(({ description }) => (description === null ? [] : [description])))) {
      if (seen.has(member.nodeId) || seen.has(member.endpoint) || member.nodeId === session.node.id) continue
      if (!missing.has(member.nodeId)) missing.set(member.nodeId, member)
    }
    const all = [...probed, ...(yield* probe([...missing.values()]))]
    const descriptions = all.flatMap(({ description }) => (description === null ? [] : [description]))
    const listedByRegistry = session.source !== "static"
    return all.map(({ member, description, error }): Listed => {
      if (description !== null) {
        const views = viewsOf({ node: description.node, endpoint: member.endpoint }, descriptions)
        return {
          node: description.node,
          state: "alive",
          membership: membershipOf(views),
          endpoint: member.endpoint,
          services: description.services,
          actors: description.actors,
          description,
          views,
          error: null,
        }
      }
      const greeted = session.node.remotes().find((remote) => remote.endpoint === member.endpoint)?.info
      const node = greeted?.id ?? member.nodeId
      const views = viewsOf({ node, endpoint: member.endpoint }, descriptions)
      return {
        node,
        state: stateOf(false, views, listedByRegistry),
        membership: membershipOf(views),
        endpoint: member.endpoint,
        services: greeted?.services ?? member.services.filter((service) => service !== "*"),
        actors: greeted?.actors ?? member.actors,
        description: null,
        views,
        error: error === null ? null : `${error.code}: ${error.message}`,
      }
    })
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
    ["NODE", "STATE", "MEMBERSHIP", "ENDPOINT", "SERVICES", "ACTORS", "UP", "PID"],
    listed.map((member) => [
      member.node,
      member.state,
      member.membership ?? "-",
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
    "List the members discovered (nodes, services, actors, endpoints), their liveness (alive, suspect, dead) and membership as the cluster sees them.",
  ),
)
