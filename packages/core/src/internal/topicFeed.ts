/**
 * A node's receiving side of one topic, shared by the node's subscriptions to it: finds the topic's publishers,
 * connects the node's SUB socket to them, watches their liveness, and hands every envelope to each subscription.
 *
 * Finding publishers (no endpoint is configured): a publishing node serves the topic's control contract at
 * `topic:<name>`, so discovery lists it under that service name. The feed follows the `Discovery` watch when the
 * node has one, and also scans the nodes it is connected to (static peers) and itself. For each publisher found it
 * calls `describe` (which answers the XPUB endpoint and asks for a heartbeat at once), connects the SUB socket,
 * and asks again for heartbeats (briefly backing off) until it hears from the publisher, so a new subscriber's
 * first contact takes milliseconds rather than a heartbeat interval. A discovery update (a restart elsewhere, a
 * new port), or a publisher silent for a while, is described and connected again: subscriptions survive restarts.
 *
 * Liveness: a publisher not heard from (event or heartbeat) for `missedHeartbeats` of its announced heartbeat
 * intervals is reported down (`Silent`); a closing heartbeat reports `Closed`, discovery's `Left` reports `Left`.
 * The next message from it brings it back up (each subscription emits `PublisherUp`), except a closing heartbeat,
 * which never does. A closing publisher sends its closing heartbeat (PUB/SUB) just before discovery announces its
 * departure (another socket): the two may be read in either order, so discovery's `Left` for a publisher that is
 * up waits briefly (`LEAVE_GRACE_MS`) for the closing heartbeat, and a clean close reads `Closed` every time.
 */
import { Duration, Effect, FiberMap, Result, type Scope, Stream } from "effect"
import type * as Discovery from "../Discovery.ts"
import { watchService } from "../Discovery.ts"
import type * as Topic from "../Topic.ts"
import type { Description } from "./topicControl.ts"
import type { BatchDecoder, Subscription } from "./topicSubscriber.ts"
import * as TopicWire from "./topicWire.ts"

/** Feed counters (part of the node's topic metrics). */
export interface FeedCounters {
  eventsReceived: number
  heartbeatsReceived: number
  malformed: number
  publishersDown: number
}

/** What a feed needs from its node. */
export interface FeedHost {
  /** `topic:<name>`: the service name publishers are listed under. */
  readonly address: string
  /** Calls a publisher's `describe` (directly when it is this node). */
  readonly describe: (publisher: string, beat: boolean) => Effect.Effect<Description, unknown>
  /** Connects the node's SUB socket to a publisher's XPUB endpoint, once per endpoint. */
  readonly connect: (endpoint: string, publisherId: string) => Effect.Effect<void, unknown>
  /** Ids of the publishers of this topic among the connected nodes and this node. */
  readonly candidates: () => ReadonlyArray<string>
  readonly discovery: Discovery.DiscoveryShape | undefined
  readonly scanIntervalMs: number
  readonly missedHeartbeats: number
  readonly counters: FeedCounters
}

interface FeedPublisher {
  readonly id: string
  /** When a message from it last arrived (epoch ms); 0 before the first. */
  lastHeard: number
  intervalMs: number
  down: boolean
  described: boolean
  /** Describe-and-connect attempts running (while one runs, only discovery's news replaces it). */
  connecting: number
  lastDescribeAt: number
  /** Discovery reported it gone; its closing heartbeat may still be on the way (see `left`). */
  leaving: boolean
}

/** A publisher just found or first heard: not heard, described or connected yet. */
const newPublisher = (id: string): FeedPublisher => ({
  id,
  lastHeard: 0,
  intervalMs: 0,
  down: false,
  described: false,
  connecting: 0,
  lastDescribeAt: 0,
  leaving: false,
})

/** Delays between heartbeat requests while waiting to hear from a newly connected publisher. */
const POKE_DELAYS_MS = [10, 25, 50, 100, 200, 400, 800, 1600]
/** A publisher silent (or never heard) this long is described again: it may have moved. */
const REDESCRIBE_AFTER_MS = 2000
const LIVENESS_CHECK_MS = 50
/** A liveness check this late means this process was not running (frozen, starved), not that publishers were. */
const STALLED_AFTER_MS = 250
/** How long discovery's `Left` waits for a closing heartbeat (at most one heartbeat interval). */
const LEAVE_GRACE_MS = 250

/** One topic's receiving side on this node. */
export class TopicFeed {
  readonly subscriptions = new Set<Subscription<unknown>>()
  private readonly publishers = new Map<string, FeedPublisher>()
  private runKeyed: ((key: string, effect: Effect.Effect<void>) => void) | undefined = undefined
  private lastCheckAt = Date.now()

  readonly topicName: string
  private readonly host: FeedHost

  constructor(topicName: string, host: FeedHost) {
    this.topicName = topicName
    this.host = host
  }

  /** Whether a publisher is known (found, or heard from) and has not left. */
  knows(publisher: string): boolean {
    return this.publishers.has(publisher)
  }

  /** Adds a subscription; known publishers are asked for a heartbeat so it makes contact at once. */
  add(subscription: Subscription<unknown>): void {
    this.subscriptions.add(subscription)
    for (const id of this.publishers.keys()) {
      this.runKeyed?.(`poke:${id}`, Effect.ignore(this.host.describe(id, true)))
    }
  }

  // ---- receiving ---------------------------------------------------------------------------------------------

  /** Every payload published on the topic, in arrival order. */
  onPayloads(payloads: ReadonlyArray<Uint8Array>): void {
    const now = Date.now()
    for (const payload of payloads) {
      const envelope = TopicWire.decode(payload)
      if (envelope === undefined) {
        this.host.counters.malformed++
        continue
      }
      if (envelope[1] !== TopicWire.KIND_EVENTS && envelope[6]) {
        this.onClosing(envelope)
        continue
      }
      const publisher = this.heard(envelope[2], now)
      if (envelope[1] === TopicWire.KIND_EVENTS) {
        this.host.counters.eventsReceived += envelope[5].length
        const decoders = new Map<Topic.Topic<unknown>["codec"], BatchDecoder<unknown>>()
        for (const subscription of this.subscriptions) {
          const codec = subscription.topic.codec
          let decoder = decoders.get(codec)
          if (decoder === undefined) {
            decoder = memoDecoder(codec, envelope[5])
            decoders.set(codec, decoder)
          }
          subscription.onEvents(envelope, decoder)
        }
      } else {
        this.host.counters.heartbeatsReceived++
        publisher.intervalMs = envelope[5]
        for (const subscription of this.subscriptions) subscription.onBeat(envelope)
      }
    }
  }

  /** A closing heartbeat: its last sequence number still counts, but it never brings a publisher up. */
  private onClosing(envelope: TopicWire.BeatEnvelope): void {
    this.host.counters.heartbeatsReceived++
    const publisher = this.publishers.get(envelope[2])
    // Unknown, down, or never heard (a new instance found while the old one's closing heartbeat was on its way).
    if (publisher === undefined || publisher.down || publisher.lastHeard === 0) return
    for (const subscription of this.subscriptions) subscription.onBeat(envelope)
    this.markDown(publisher, "Closed")
    if (publisher.leaving) this.forget(publisher)
  }

  private heard(id: string, now: number): FeedPublisher {
    let publisher = this.publishers.get(id)
    if (publisher === undefined) {
      publisher = newPublisher(id)
      this.publishers.set(id, publisher)
    }
    publisher.lastHeard = now
    publisher.down = false
    return publisher
  }

  private markDown(publisher: FeedPublisher, reason: Topic.PublisherDown["reason"]): void {
    if (publisher.down) return
    publisher.down = true
    this.host.counters.publishersDown++
    for (const subscription of this.subscriptions) subscription.onDown(publisher.id, reason)
  }

  // ---- finding publishers ------------------------------------------------------------------------------------

  /** Starts finding publishers and watching their liveness, until the scope closes. */
  start(): Effect.Effect<void, never, Scope.Scope> {
    return Effect.gen({ self: this }, function* () {
      const fibers = yield* FiberMap.make<string, void, never>()
      const run = yield* FiberMap.runtime(fibers)<never>()
      this.runKeyed = (key, effect) => {
        run(key, effect)
      }
      const host = this.host
      if (host.discovery !== undefined) {
        yield* Stream.runForEach(watchService(host.discovery, host.address), (event) =>
          Effect.sync(() =>
            event._tag === "Left" ? this.left(event.member.nodeId) : this.found(event.member.nodeId, true),
          ),
        ).pipe(
          Effect.catchCause((cause) => Effect.logWarning(`topic ${this.topicName}: discovery watch ended`, cause)),
          Effect.forkScoped,
        )
      }
      yield* Effect.forever(
        Effect.andThen(
          Effect.sync(() => this.scan()),
          Effect.sleep(Duration.millis(host.scanIntervalMs)),
        ),
      ).pipe(Effect.forkScoped)
      yield* Effect.forever(
        Effect.andThen(
          Effect.sync(() => this.checkLiveness()),
          Effect.sleep(Duration.millis(LIVENESS_CHECK_MS)),
        ),
      ).pipe(Effect.forkScoped)
    })
  }

  private scan(): void {
    const now = Date.now()
    for (const id of this.host.candidates()) this.found(id, false)
    for (const publisher of this.publishers.values()) {
      const quiet = publisher.lastHeard === 0 || publisher.down
      if (quiet && now - publisher.lastDescribeAt > REDESCRIBE_AFTER_MS) this.found(publisher.id, true)
    }
  }

  private checkLiveness(): void {
    const now = Date.now()
    const late = now - this.lastCheckAt > STALLED_AFTER_MS
    this.lastCheckAt = now
    // This process was frozen or starved (the check itself ran late): the silence may be ours, and what the
    // publishers sent meanwhile is waiting to be read. Judge them on the next round, after it has been.
    if (late) return
    for (const publisher of this.publishers.values()) {
      if (publisher.down || publisher.lastHeard === 0 || publisher.intervalMs === 0) continue
      if (now - publisher.lastHeard > publisher.intervalMs * this.host.missedHeartbeats)
        this.markDown(publisher, "Silent")
    }
  }

  /** A publisher was found; it is described and connected unless it already was (`force` does it again). */
  private found(id: string, force: boolean): void {
    let publisher = this.publishers.get(id)
    if (publisher?.leaving === true) {
      // Still connected while its departure is pending: the node is on its way out (its closing heartbeat may
      // yet come), not back. Only discovery's news (`force`) says it was found again.
      if (!force) return
      // Found again while its departure was pending (a restart, usually): the departure is reported now, and
      // what was found starts afresh.
      this.runKeyed?.(`leave:${id}`, Effect.void)
      this.forget(publisher)
      publisher = undefined
    }
    if (publisher === undefined) {
      publisher = newPublisher(id)
      this.publishers.set(id, publisher)
    } else if ((publisher.described || publisher.connecting > 0) && !force) {
      return
    }
    publisher.lastDescribeAt = Date.now()
    this.runKeyed?.(`connect:${id}`, this.connect(publisher))
  }

  /** Discovery no longer lists a publisher. One that is up may have closed cleanly: give its closing heartbeat,
   * sent before the departure was announced but on another socket, a moment to arrive and say `Closed`. */
  private left(id: string): void {
    const publisher = this.publishers.get(id)
    if (publisher === undefined || publisher.leaving) return
    // Replacing the keyed fibers interrupts a connection attempt in progress.
    this.runKeyed?.(`connect:${id}`, Effect.void)
    this.runKeyed?.(`poke:${id}`, Effect.void)
    if (publisher.down || publisher.lastHeard === 0 || this.runKeyed === undefined) return this.forget(publisher)
    publisher.leaving = true
    const graceMs = Math.min(LEAVE_GRACE_MS, publisher.intervalMs || LEAVE_GRACE_MS)
    this.runKeyed(
      `leave:${id}`,
      Effect.andThen(
        Effect.sleep(Duration.millis(graceMs)),
        Effect.sync(() => {
          if (publisher.leaving) this.forget(publisher)
        }),
      ),
    )
  }

  /** Reports a publisher `Left` (unless it is down already) and stops tracking it. */
  private forget(publisher: FeedPublisher): void {
    if (this.publishers.get(publisher.id) !== publisher) return
    this.markDown(publisher, "Left")
    this.publishers.delete(publisher.id)
  }

  private connect(publisher: FeedPublisher): Effect.Effect<void> {
    const host = this.host
    const attempt = Effect.gen(function* () {
      const startedAt = Date.now()
      const description = yield* Effect.result(host.describe(publisher.id, true))
      if (Result.isFailure(description)) return
      if (publisher.intervalMs === 0) publisher.intervalMs = description.success.heartbeatIntervalMs
      const connected = yield* Effect.result(host.connect(description.success.endpoint, publisher.id))
      if (Result.isFailure(connected)) return
      publisher.described = true
      // The heartbeat asked for may have gone out before the SUB connection was up: ask until one arrives.
      for (const delay of POKE_DELAYS_MS) {
        if (publisher.lastHeard > startedAt) return
        yield* Effect.sleep(Duration.millis(delay))
        if (publisher.lastHeard > startedAt) return
        yield* Effect.ignore(host.describe(publisher.id, true))
      }
    })
    return Effect.suspend(() => {
      publisher.connecting++
      return Effect.ensuring(
        attempt,
        Effect.sync(() => {
          publisher.connecting--
        }),
      )
    })
  }
}

/** Decodes each event of a batch at most once. */
const memoDecoder = <A>(
  codec: Topic.Topic<A>["codec"],
  events: ReadonlyArray<TopicWire.WireEvent>,
): BatchDecoder<A> => {
  const cache: Array<ReturnType<typeof codec.decode> | undefined> = []
  return {
    decode: (index) => {
      let decoded = cache[index]
      if (decoded === undefined) {
        decoded = codec.decode(events[index]![1])
        cache[index] = decoded
      }
      return decoded
    },
  }
}
