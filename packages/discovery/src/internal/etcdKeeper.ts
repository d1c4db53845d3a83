/**
 * Keeps one registration alive in etcd: a lease with keepalive and the member's key attached to it. When the
 * lease is lost (etcd unreachable for twice its TTL, or restarted without its data) or the key disappears, it
 * grants a new lease and writes the key again, retrying until etcd answers. Stopping writes a goodbye value
 * and revokes the lease, so watchers tell a graceful exit from a crash.
 */
import type { Discovery } from "@zactor/core"
import type { Etcd3, Lease } from "etcd3"
import type { ResolvedEtcdOptions } from "../EtcdOptions.ts"
import { encodeValue } from "./etcdValue.ts"
import type { Membership } from "./membership.ts"

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** One registration's lease and key. */
export class EtcdKeeper {
  private lease: Lease | undefined
  private stopped = false
  private establishing: Promise<void> | undefined
  private everRegistered = false
  private readonly client: Etcd3
  private readonly options: ResolvedEtcdOptions
  private readonly membership: Membership
  readonly key: string
  record: Discovery.MemberRecord

  constructor(
    client: Etcd3,
    options: ResolvedEtcdOptions,
    membership: Membership,
    key: string,
    record: Discovery.MemberRecord,
  ) {
    this.client = client
    this.options = options
    this.membership = membership
    this.key = key
    this.record = record
  }

  /** Whether the key is believed written under a live lease. */
  get registered(): boolean {
    return this.lease !== undefined && this.establishing === undefined
  }

  /** (Re-)establishes the registration, retrying until it succeeds or the keeper stops. Coalesced. */
  establish(): Promise<void> {
    if (this.establishing === undefined) {
      this.establishing = this.loop().finally(() => {
        this.establishing = undefined
      })
    }
    return this.establishing
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      try {
        await this.attempt()
        this.membership.count(this.everRegistered ? "reregistrations" : "registrations")
        this.everRegistered = true
        return
      } catch {
        this.membership.count("registerFailures")
        await sleep(this.options.retryIntervalMs)
      }
    }
  }

  private async attempt(): Promise<void> {
    const previous = this.lease
    this.lease = undefined
    // Stop the old keepalive without asking etcd (it may be the reason we are here); it expires on its own.
    previous?.release()
    const lease = this.client.lease(this.options.leaseTtlSeconds)
    lease.on("lost", () => {
      if (this.lease !== lease || this.stopped) return
      this.membership.count("leasesLost")
      void this.establish()
    })
    try {
      await lease.grant()
      await lease.put(this.key).value(encodeValue(this.record))
    } catch (error) {
      lease.release()
      throw error
    }
    if (this.stopped) {
      await lease.revoke().catch(() => lease.release())
      return
    }
    this.lease = lease
  }

  /** Publishes a new record under the current lease (or with the next re-registration). */
  async update(record: Discovery.MemberRecord): Promise<void> {
    this.record = record
    const lease = this.lease
    if (lease === undefined || this.establishing !== undefined) return // the loop writes the latest record
    try {
      await lease.put(this.key).value(encodeValue(record))
    } catch {
      this.membership.count("registerFailures")
      void this.establish()
    }
  }

  /** Writes the goodbye and revokes the lease; when etcd is unreachable the lease simply expires. */
  async stop(): Promise<void> {
    this.stopped = true
    const lease = this.lease
    this.lease = undefined
    if (lease === undefined) return
    try {
      await lease.put(this.key).value(encodeValue(this.record, true))
      await lease.revoke()
    } catch {
      lease.release()
    }
  }
}
