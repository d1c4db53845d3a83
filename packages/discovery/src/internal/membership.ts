/**
 * A backend's view of the cluster: members by node id, change events for watchers, and counters. Plain data
 * and synchronous methods, so socket callbacks (beacon) and client callbacks (etcd) update it without a
 * fiber per packet; watchers get events through an unbounded queue each (membership changes are few).
 */
import { Discovery } from "@zactor/core"
import { Effect, Queue, Stream } from "effect"

const { sameRecord, serves } = Discovery

type MemberRecord = Discovery.MemberRecord
type MembershipEvent = Discovery.MembershipEvent

/** Members, watchers and counters of one backend instance. */
export class Membership {
  private readonly members = new Map<string, MemberRecord>()
  private readonly listeners = new Set<(event: MembershipEvent) => void>()
  private readonly counters: Record<string, number> = {}

  constructor(counterNames: ReadonlyArray<string>) {
    for (const name of counterNames) this.counters[name] = 0
  }

  /** Adds to a counter. */
  count(name: string, by = 1): void {
    this.counters[name] = (this.counters[name] ?? 0) + by
  }

  /** A snapshot of the counters. */
  stats(): Discovery.DiscoveryStats {
    return { ...this.counters, members: this.members.size }
  }

  get(nodeId: string): MemberRecord | undefined {
    return this.members.get(nodeId)
  }

  has(nodeId: string): boolean {
    return this.members.has(nodeId)
  }

  list(): ReadonlyArray<MemberRecord> {
    return [...this.members.values()]
  }

  resolve(service: string): ReadonlyArray<MemberRecord> {
    return this.list().filter((member) => serves(member, service))
  }

  /** Adds or replaces a member; emits `Joined` or `Updated` when something changed. */
  upsert(record: MemberRecord): "joined" | "updated" | "same" {
    const previous = this.members.get(record.nodeId)
    if (previous !== undefined && sameRecord(previous, record)) return "same"
    this.members.set(record.nodeId, record)
    this.emit(
      previous === undefined ? { _tag: "Joined", member: record } : { _tag: "Updated", member: record, previous },
    )
    return previous === undefined ? "joined" : "updated"
  }

  /** Removes a member; emits `Left`. Returns whether it was known. */
  remove(nodeId: string, reason: Discovery.LeftReason): boolean {
    const previous = this.members.get(nodeId)
    if (previous === undefined) return false
    this.members.delete(nodeId)
    this.emit({ _tag: "Left", member: previous, reason })
    return true
  }

  /** Node ids known now. */
  ids(): ReadonlyArray<string> {
    return [...this.members.keys()]
  }

  /** The snapshot as `Joined` events, then live changes; the snapshot and the subscription are atomic. */
  readonly watch: Stream.Stream<MembershipEvent> = Stream.callback<MembershipEvent>((queue) =>
    Effect.acquireRelease(
      Effect.sync(() => {
        for (const member of this.members.values()) Queue.offerUnsafe(queue, { _tag: "Joined", member })
        const listener = (event: MembershipEvent) => {
          Queue.offerUnsafe(queue, event)
        }
        this.listeners.add(listener)
        return listener
      }),
      (listener) => Effect.sync(() => this.listeners.delete(listener)),
    ),
  )

  private emit(event: MembershipEvent): void {
    for (const listener of this.listeners) listener(event)
  }
}

/** The read side of a backend (`members`, `resolve`, `watch`, `stats`), answered from its membership. */
export const queriesOf = (
  membership: Membership,
): Pick<Discovery.DiscoveryShape, "members" | "resolve" | "watch" | "stats"> => ({
  members: Effect.sync(() => membership.list()),
  resolve: (service) => Effect.sync(() => membership.resolve(service)),
  watch: membership.watch,
  stats: () => membership.stats(),
})

/**
 * A registration whose updates are checked before `publish` runs. The node id is the registration's identity:
 * a record for another id is refused as invalid.
 */
export const checkedRegistration = (
  nodeId: string,
  check: (record: MemberRecord) => Discovery.DiscoveryError | undefined,
  publish: (record: MemberRecord) => Effect.Effect<void>,
): Discovery.Registration => ({
  update: (next) =>
    Effect.suspend(() => {
      const invalid = next.nodeId === nodeId ? check(next) : check({ ...next, nodeId: "" })
      return invalid === undefined ? publish(next) : Effect.fail(invalid)
    }),
})
