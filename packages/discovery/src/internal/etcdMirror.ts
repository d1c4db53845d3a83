/**
 * Mirrors a cluster's member keys from etcd into a `Membership`: a full read, then a watch from the revision
 * after it. When the watch stream drops (etcd restarting, network), the mirror keeps the last view (calls
 * continue), retries the full read until etcd answers, diffs it against the view (members that vanished
 * meanwhile leave with reason `Removed`), and watches again from there. A store whose revision went back
 * (etcd restored or wiped) resets the per-key revisions, so its writes are not mistaken for stale ones.
 */
import type { Etcd3, IKeyValue, Watcher } from "etcd3"
import type { ResolvedEtcdOptions } from "../EtcdOptions.ts"
import { decodeValue } from "./etcdValue.ts"
import type { Membership } from "./membership.ts"

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** What the mirror tells the registrations: a key of ours went missing. */
export interface MirrorHooks {
  readonly onOwnKeyMissing: (nodeId: string) => void
  readonly isOwn: (nodeId: string) => boolean
  readonly ownIds: () => Iterable<string>
}

/** The watch and resync loop of one backend instance. */
export class EtcdMirror {
  /** Last revision applied per node id (puts and deletes), so reordered or replayed events are ignored. */
  private revisions = new Map<string, number>()
  private highestRevision = 0
  private watcher: Watcher | undefined
  private stopped = false
  private running: Promise<void> | undefined
  private synced: (() => void) | undefined
  private readonly client: Etcd3
  private readonly options: ResolvedEtcdOptions
  private readonly membership: Membership
  private readonly base: string
  private readonly hooks: MirrorHooks

  constructor(client: Etcd3, options: ResolvedEtcdOptions, membership: Membership, base: string, hooks: MirrorHooks) {
    this.client = client
    this.options = options
    this.membership = membership
    this.base = base
    this.hooks = hooks
  }

  /** Starts mirroring; resolves after the first full read, or after `waitMs` if etcd does not answer. */
  start(waitMs: number): Promise<void> {
    const first = new Promise<void>((resolve) => {
      this.synced = resolve
      setTimeout(resolve, waitMs)
    })
    this.restart()
    return first
  }

  stop(): void {
    this.stopped = true
    this.dropWatcher()
  }

  /** Reads everything and watches again, retrying until etcd answers. Coalesced. */
  private restart(): void {
    if (this.running !== undefined || this.stopped) return
    this.running = this.run().finally(() => {
      this.running = undefined
    })
  }

  private async run(): Promise<void> {
    this.dropWatcher()
    while (!this.stopped) {
      try {
        const revision = await this.resync()
        this.synced?.()
        this.synced = undefined
        await this.watch(revision + 1)
        return
      } catch {
        this.membership.count("unavailable")
        await sleep(this.options.retryIntervalMs)
      }
    }
  }

  private nodeIdOf(key: Buffer): string | undefined {
    const text = key.toString("utf8")
    return text.startsWith(this.base) && text.length > this.base.length ? text.slice(this.base.length) : undefined
  }

  private async resync(): Promise<number> {
    const response = await this.client.getAll().prefix(this.base).exec()
    const revision = Number(response.header.revision)
    if (revision < this.highestRevision) {
      // etcd came back with an older store (restored or wiped): earlier revisions no longer order anything.
      this.revisions = new Map()
      this.membership.count("storeResets")
    }
    this.highestRevision = revision
    const present = new Set<string>()
    for (const kv of response.kvs) {
      const nodeId = this.nodeIdOf(kv.key)
      if (nodeId === undefined) continue
      present.add(nodeId)
      this.applyPut(nodeId, kv)
    }
    for (const nodeId of this.membership.ids()) {
      if (present.has(nodeId)) continue
      this.revisions.set(nodeId, revision)
      this.membership.remove(nodeId, "Removed")
    }
    for (const nodeId of this.hooks.ownIds()) if (!present.has(nodeId)) this.hooks.onOwnKeyMissing(nodeId)
    this.membership.count("resyncs")
    return revision
  }

  private async watch(fromRevision: number): Promise<void> {
    const watcher = await this.client.watch().prefix(this.base).startRevision(String(fromRevision)).create()
    if (this.stopped) {
      void watcher.cancel().catch(() => {})
      return
    }
    this.watcher = watcher
    watcher.on("put", (kv) => {
      const nodeId = this.nodeIdOf(kv.key)
      if (nodeId !== undefined) this.applyPut(nodeId, kv)
    })
    watcher.on("delete", (kv) => {
      const nodeId = this.nodeIdOf(kv.key)
      if (nodeId !== undefined) this.applyDelete(nodeId, Number(kv.mod_revision))
    })
    // The client would resume the watch by itself, but not across a wiped store, and not with a diff of
    // what changed meanwhile: resync from scratch instead.
    const again = () => {
      if (this.watcher !== watcher) return
      this.membership.count("watchRestarts")
      this.restart()
    }
    watcher.on("disconnected", again)
    watcher.on("error", again)
    watcher.on("end", again)
  }

  private dropWatcher(): void {
    const watcher = this.watcher
    this.watcher = undefined
    if (watcher === undefined) return
    watcher.removeAllListeners()
    watcher.on("error", () => {})
    void watcher.cancel().catch(() => {})
  }

  private isStale(nodeId: string, revision: number): boolean {
    if (revision > this.highestRevision) this.highestRevision = revision
    const last = this.revisions.get(nodeId)
    if (last !== undefined && revision <= last) return true
    this.revisions.set(nodeId, revision)
    return false
  }

  private applyPut(nodeId: string, kv: IKeyValue): void {
    if (this.isStale(nodeId, Number(kv.mod_revision))) return
    const decoded = decodeValue(nodeId, kv.value)
    if (decoded === undefined) return this.membership.count("garbage")
    if (decoded.goodbye) {
      if (this.membership.remove(nodeId, "Goodbye")) this.membership.count("goodbyes")
      return
    }
    this.membership.upsert(decoded.record)
  }

  private applyDelete(nodeId: string, revision: number): void {
    if (this.isStale(nodeId, revision)) return
    if (this.membership.remove(nodeId, "Expired")) this.membership.count("expired")
    if (this.hooks.isOwn(nodeId)) this.hooks.onOwnKeyMissing(nodeId)
  }
}
