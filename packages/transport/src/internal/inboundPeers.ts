/**
 * The inbound peers of a ROUTER, keyed by routing id: their `Peer` records (with the CURVE key proven on the
 * connection) and their outboxes for replies. Bounded, because every connecting client mints a routing id and
 * ZeroMQ's monitor does not say which one disconnected: the oldest idle entries are evicted past the bound.
 */

import * as Peer from "../Peer.ts"
import type { TransportEvent } from "../TransportEvent.ts"
import type { MutableTransportMetrics } from "../TransportMetrics.ts"
import type { ResolvedTransportOptions } from "../TransportOptions.ts"
import { Outbox, type WriteGate } from "./outbox.ts"
import * as SocketOptions from "./zmqSocketOptions.ts"

/** Most inbound peers remembered at once. */
const MAX_INBOUND_PEERS = 65_536

interface InboundEntry {
  peer: Peer.Peer
  /** The routing id (a copy owned by the entry). */
  readonly rid: Buffer
  readonly outbox: Outbox
}

/** Registry of a ROUTER's inbound peers. */
export class InboundPeers {
  private readonly entries = new Map<string, InboundEntry>()
  /** The entry of the last batch, to recognise the next one from the same peer cheaply. */
  private last: InboundEntry | undefined = undefined

  private readonly options: ResolvedTransportOptions
  private readonly metrics: MutableTransportMetrics
  private readonly emit: (event: TransportEvent) => void
  private readonly write: (routingId: Buffer, frame: Buffer) => Promise<void>
  private readonly gate: WriteGate | undefined

  constructor(
    options: ResolvedTransportOptions,
    metrics: MutableTransportMetrics,
    emit: (event: TransportEvent) => void,
    write: (routingId: Buffer, frame: Buffer) => Promise<void>,
    gate?: WriteGate,
  ) {
    this.options = options
    this.metrics = metrics
    this.emit = emit
    this.write = write
    this.gate = gate
  }

  /** The peer a batch came from, created (and announced) on first sight or when its proven key changes. */
  touch(routingId: Buffer, publicKey: string | undefined): Peer.Peer {
    // Consecutive batches mostly come from one peer: compare bytes rather than build its id string again.
    const last = this.last
    if (last !== undefined && last.peer.publicKey === publicKey && routingId.equals(last.rid)) {
      if (this.entries.get(last.peer.id) === last) return last.peer
    }
    const id = Peer.makeId("inbound", routingId.toString("hex"))
    const entry = this.entries.get(id)
    if (entry !== undefined) {
      if (entry.peer.publicKey !== publicKey) {
        entry.peer = { id, direction: "inbound", publicKey }
        this.emit({ _tag: "PeerSeen", peer: id, publicKey })
      }
      this.last = entry
      return entry.peer
    }
    if (this.entries.size >= MAX_INBOUND_PEERS) this.evictIdle()
    const peer: Peer.Peer = { id, direction: "inbound", publicKey }
    const rid = Buffer.from(routingId)
    const outbox = new Outbox(
      this.options,
      {
        write: (frame) => this.write(rid, frame),
        classify: SocketOptions.classifyWrite,
        onDropped: (messages, reason) => {
          this.emit({ _tag: "SendFailed", peer: id, messages, reason })
          // EHOSTUNREACH: ZeroMQ no longer knows this routing id, so the connection is gone.
          if (reason === "Unreachable") this.entries.delete(id)
        },
      },
      this.metrics,
      undefined,
      this.gate,
    )
    const created: InboundEntry = { peer, rid, outbox }
    this.entries.set(id, created)
    this.last = created
    this.emit({ _tag: "PeerSeen", peer: id, publicKey })
    return peer
  }

  /** The reply outbox of a known inbound peer. */
  outboxOf(id: Peer.PeerId): Outbox | undefined {
    return this.entries.get(id)?.outbox
  }

  /** Every reply outbox, for close. */
  outboxes(): Array<Outbox> {
    return [...this.entries.values()].map((entry) => entry.outbox)
  }

  private evictIdle(): void {
    for (const [id, entry] of this.entries) {
      if (entry.outbox.size === 0) {
        this.entries.delete(id)
        return
      }
    }
  }
}
