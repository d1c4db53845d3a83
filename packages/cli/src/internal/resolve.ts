/**
 * Which nodes a command argument names: an endpoint (`tcp://...`), a node id, a service name, or `@actor`.
 * Static entries do not say what they serve: those nodes are asked (their WELCOME lists their services).
 */
import { Effect } from "effect"
import { type CliFailure, failed } from "./output.ts"
import type { Member, Session } from "./session.ts"

/** One node to talk to. */
export interface Instance {
  readonly endpoint: string
  /** Its node id, when known before connecting. */
  readonly nodeId: string | undefined
}

/** Whether a command argument is an endpoint rather than a name. */
export const isEndpoint = (text: string): boolean => /^[a-z]+:\/\//.test(text)

const serves = (services: ReadonlyArray<string>, actors: ReadonlyArray<string>, name: string): boolean =>
  name.startsWith("@") ? actors.includes(name.slice(1)) : services.includes(name)

/** The instances `name` (endpoint, node id, service or `@actor`) stands for; fails when there are none. */
export const instances = (session: Session, name: string): Effect.Effect<ReadonlyArray<Instance>, CliFailure> =>
  Effect.gen(function* () {
    if (isEndpoint(name)) return [{ endpoint: name, nodeId: undefined }]
    const members = yield* session.members
    const known = members.filter((member) => member.nodeId === name || serves(member.services, member.actors, name))
    if (known.length > 0) return known.map((member) => ({ endpoint: member.endpoint, nodeId: member.nodeId }))
    // Members whose services are unknown (static entries): ask them.
    const unknown = members.filter((member) => member.services.includes("*"))
    const asked = yield* Effect.forEach(unknown, (member) => greet(session, member), { concurrency: 16 })
    const matching: Array<Instance> = []
    for (const instance of asked) {
      if (instance?.matches(name)) matching.push({ endpoint: instance.endpoint, nodeId: instance.nodeId })
    }
    if (matching.length > 0) return matching
    const where =
      members.length === 0
        ? `no members found (${session.source})`
        : `${members.length} member(s) found (${session.source})`
    return yield* Effect.fail(failed(`no node is, or serves, "${name}": ${where}`))
  })

/** Connects to a member and reads its WELCOME; `undefined` when it does not answer. */
const greet = (session: Session, member: Member) =>
  session.node.connect(member.endpoint, { serverPublicKey: serverKeyOf(session, member.endpoint) }).pipe(
    Effect.map((remote) => {
      const info = remote.info
      return {
        endpoint: member.endpoint,
        nodeId: info?.id,
        matches: (name: string) => info !== undefined && (info.id === name || serves(info.services, info.actors, name)),
      }
    }),
    Effect.orElseSucceed(() => undefined),
  )

const serverKeyOf = (session: Session, endpoint: string): string | undefined => {
  const target = session.target(endpoint)
  return "serverPublicKey" in target ? target.serverPublicKey : undefined
}
