import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Transport, type TransportShape, ZmqTransport } from "@zactor/transport"
import * as Harness from "@zactor/transport/testing/harness"
import { Effect, Exit, Fiber, Schema, Scope, Stream } from "effect"
import * as Actor from "../src/Actor.ts"
import * as ActorRef from "../src/ActorRef.ts"
import * as Contract from "../src/Contract.ts"
import type { DeadLetter } from "../src/DeadLetter.ts"
import * as DedupeStore from "../src/DedupeStore.ts"
import * as Envelope from "../src/Envelope.ts"
import * as FileDedupeStore from "../src/FileDedupeStore.ts"
import * as Node from "../src/Node.ts"
import type { NodeOptions } from "../src/NodeOptions.ts"
import * as Prometheus from "../src/Prometheus.ts"
import type { RpcError } from "../src/RpcError.ts"

const Ledger = Contract.make("Ledger", {
  append: Contract.unary({
    payload: Schema.Struct({ entry: Schema.String }),
    success: Schema.Number,
    delivery: "at-least-once",
  }),
  slowAppend: Contract.unary({
    payload: Schema.Struct({ entry: Schema.String, ms: Schema.Number }),
    success: Schema.Number,
  }),
})

const wait = (condition: () => boolean, what: string) =>
  Effect.promise(async () => {
    const until = Date.now() + 5000
    while (!condition()) {
      if (Date.now() > until) throw new Error(`timed out waiting for ${what}`)
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
  })

/** A node serving Ledger whose handler appends to `entries`, with an injectable dedupe store and endpoint. */
const ledgerNode = (id: string, store?: DedupeStore.DedupeStoreShape, endpoint?: string) =>
  Effect.gen(function* () {
    const entries: Array<string> = []
    const transport = yield* ZmqTransport.make({})
    const make = Node.make({ id, ...(endpoint === undefined ? {} : { bind: [endpoint] }) }).pipe(
      Effect.provideService(Transport, transport),
    )
    const node = yield* store === undefined ? make : make.pipe(Effect.provideService(DedupeStore.DedupeStore, store))
    yield* node.serve(Ledger, {
      append: ({ entry }) => Effect.sync(() => entries.push(entry)),
      slowAppend: ({ entry, ms }) => Effect.as(Effect.sleep(ms), entries.push(entry)),
    })
    return { node, entries }
  })

const clientNode = (options: NodeOptions = {}) =>
  Effect.flatMap(ZmqTransport.make({}), (transport) =>
    Node.make(options).pipe(Effect.provideService(Transport, transport)),
  )

describe("idempotency keys and the dedupe window", () => {
  it.live("the same key runs the handler once; duplicates get the stored reply; another payload conflicts", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { node, entries } = yield* ledgerNode("ledger")
        const client = yield* clientNode()
        const ledger = client.client(Ledger, { endpoint: node.endpoints()[0]! })
        const first = yield* ledger.append({ entry: "a" }, { idempotencyKey: "k1" })
        for (let i = 0; i < 5; i++)
          assert.strictEqual(yield* ledger.append({ entry: "a" }, { idempotencyKey: "k1" }), first)
        assert.deepStrictEqual(entries, ["a"])
        assert.strictEqual(node.metrics().deduplicated, 5)
        const conflict = yield* Effect.flip(ledger.append({ entry: "b" }, { idempotencyKey: "k1" }))
        assert.strictEqual((conflict as RpcError).code, "idempotency_conflict")
        assert.deepStrictEqual(entries, ["a"])
      }),
    ),
  )

  it.live("concurrent duplicates wait for the first attempt's outcome instead of running again", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { node, entries } = yield* ledgerNode("ledger")
        const client = yield* clientNode()
        const ledger = client.client(Ledger, { endpoint: node.endpoints()[0]! })
        const results = yield* Effect.all(
          Array.from({ length: 10 }, () => ledger.slowAppend({ entry: "x", ms: 100 }, { idempotencyKey: "same" })),
          { concurrency: "unbounded" },
        )
        assert.deepStrictEqual(entries, ["x"])
        assert.deepStrictEqual(new Set(results).size, 1)
        assert.strictEqual(node.metrics().deduplicated, 9)
      }),
    ),
  )

  it.live("just inside the window a duplicate is answered from the store; just outside it runs again", () =>
    Effect.scoped(
      Effect.gen(function* () {
        let now = 1_000_000
        const store = DedupeStore.memory({ ttl: 1000, now: () => now })
        const { node, entries } = yield* ledgerNode("ledger", store)
        const client = yield* clientNode()
        const ledger = client.client(Ledger, { endpoint: node.endpoints()[0]! })
        yield* ledger.append({ entry: "w" }, { idempotencyKey: "window" })
        now += 999
        yield* ledger.append({ entry: "w" }, { idempotencyKey: "window" })
        assert.deepStrictEqual(entries, ["w"])
        now += 2
        yield* ledger.append({ entry: "w" }, { idempotencyKey: "window" })
        assert.deepStrictEqual(entries, ["w", "w"], "outside the window the key is new again")
      }),
    ),
  )

  it.live("a keyed handler interrupted after it started is not run again: duplicates get outcome unknown", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const entries: Array<string> = []
        const server = yield* clientNode({ id: "ledger" })
        yield* server.serve(Ledger, {
          append: ({ entry }) => Effect.sync(() => entries.push(entry)),
          // The effect and what follows it cannot be interrupted. Effect still reports the fiber as interrupted
          // once the region ends, so the node cannot know the outcome, only that the handler started.
          slowAppend: ({ entry, ms }) =>
            Effect.uninterruptible(
              Effect.andThen(
                Effect.sync(() => entries.push(entry)),
                Effect.as(Effect.sleep(ms), 1),
              ),
            ),
        })
        const client = yield* clientNode()
        const ledger = client.client(Ledger, { endpoint: server.endpoints()[0]! })
        const late = yield* Effect.flip(
          ledger.slowAppend({ entry: "once", ms: 300 }, { idempotencyKey: "k", timeout: 50 }),
        )
        assert.strictEqual((late as RpcError).code, "deadline_exceeded")
        // The first attempt is still running: this duplicate waits for it, the next finds its outcome stored.
        for (let i = 0; i < 2; i++) {
          const duplicate = yield* Effect.flip(ledger.slowAppend({ entry: "once", ms: 300 }, { idempotencyKey: "k" }))
          assert.strictEqual((duplicate as RpcError).code, "internal")
          assert.include((duplicate as RpcError).message, DedupeStore.OUTCOME_UNKNOWN)
          // Stopped by its deadline on the server or by the caller's CANCEL at its own deadline, whichever came first.
          assert.match(
            (duplicate as RpcError).message,
            /interrupted after its handler started \((its deadline passed|its caller cancelled it)\)/,
          )
        }
        assert.deepStrictEqual(entries, ["once"])
        assert.strictEqual(server.metrics().deduplicated, 2)
      }),
    ),
  )

  it.effect("the window is bounded by count: the oldest finished keys go first", () =>
    Effect.sync(() => {
      const store = DedupeStore.memory({ maxEntries: 3 })
      for (const key of ["a", "b", "c", "d"]) {
        assert.strictEqual(store.begin(key, "f")._tag, "New")
        store.complete(key, { _tag: "Reply", body: key })
      }
      assert.strictEqual(store.size(), 3)
      assert.strictEqual(store.begin("a", "f")._tag, "New", "a was evicted")
      assert.strictEqual(store.begin("d", "f")._tag, "Done")
      // A running key is never evicted by size.
      store.abandon("a")
      assert.strictEqual(store.begin("a", "f")._tag, "New")
    }),
  )
})

describe("a duplicate after the receiver restarted", () => {
  /**
   * Serves Ledger at one endpoint with the store `storeOf()` gives, calls it with key "k", restarts the node (a
   * new node and a new store object at the same endpoint, as a restarted process would have), and sends the
   * same call again from the same client. Returns each instance's effects and metrics.
   */
  const callAcrossRestart = (storeOf: () => DedupeStore.DedupeStoreShape | undefined) =>
    Effect.gen(function* () {
      const endpoint = `tcp://127.0.0.1:${yield* Effect.promise(() => Harness.freePort())}`
      const client = yield* clientNode()
      const connected = () =>
        client.metricsSnapshot().peers.some((peer) => peer.endpoint === endpoint && peer.connected)
      const ledger = client.client(Ledger, { endpoint })
      const firstScope = yield* Scope.make()
      const first = yield* Scope.provide(firstScope)(ledgerNode("before", storeOf(), endpoint))
      const firstReply = yield* ledger.append({ entry: "a" }, { idempotencyKey: "k" })
      assert.strictEqual(yield* ledger.append({ entry: "a" }, { idempotencyKey: "k" }), firstReply)
      assert.strictEqual(first.node.metrics().deduplicated, 1, "a duplicate before the restart: from the window")
      yield* Scope.close(firstScope, Exit.void)
      yield* wait(() => !connected(), "the client to see the receiver go")
      const second = yield* ledgerNode("after", storeOf(), endpoint)
      yield* wait(connected, "the client to reconnect to the restarted receiver")
      const secondReply = yield* ledger.append({ entry: "a" }, { idempotencyKey: "k" })
      return { first, second, firstReply, secondReply }
    })

  it.live("in memory: the window died with the receiver, so the handler runs again (as DELIVERY.md says)", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { first, second } = yield* callAcrossRestart(() => undefined)
        assert.deepStrictEqual(first.entries, ["a"])
        assert.deepStrictEqual(second.entries, ["a"], "the duplicate ran the handler on the restarted receiver")
        assert.strictEqual(second.node.metrics().deduplicated, 0)
        assert.strictEqual(second.node.metrics().requestsServed, 1)
      }),
    ),
  )

  it.live("file store: the duplicate is answered from the store with the first reply, the handler not run", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const directory = mkdtempSync(join(tmpdir(), "zactor-delivery-"))
        yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(directory, { recursive: true, force: true })))
        const stores: Array<FileDedupeStore.FileDedupeStoreShape> = []
        const { first, second, firstReply, secondReply } = yield* callAcrossRestart(() => {
          const store = FileDedupeStore.makeUnsafe({ directory })
          stores.push(store)
          return store
        })
        assert.deepStrictEqual(first.entries, ["a"])
        assert.deepStrictEqual(second.entries, [], "the restarted receiver did not run the handler")
        assert.strictEqual(secondReply, firstReply)
        assert.strictEqual(second.node.metrics().deduplicated, 1)
        assert.strictEqual(second.node.metrics().requestsServed, 0)
        assert.strictEqual(stores[1]!.stats().answeredFromStore, 1)
      }),
    ),
  )
})

describe("at-least-once delivery", () => {
  it.live("a request whose ACK never comes is sent again with the same key; the second attempt is answered", () =>
    Effect.scoped(
      Effect.gen(function* () {
        // A hand-written callee that loses the first attempt (no ACK, no reply) and answers the second.
        const server = yield* ZmqTransport.make({})
        const endpoint = yield* server.bind("tcp://127.0.0.1:*")
        const attempts: Array<Envelope.Headers | null> = []
        yield* Stream.runForEach(server.received, (received) =>
          Effect.sync(() => {
            for (const payload of received.payloads) {
              const envelope = Envelope.decode(payload)
              if (Envelope.isMalformed(envelope) || envelope[1] !== Envelope.Kind.Request) continue
              attempts.push(envelope[6])
              if (attempts.length === 1) continue
              server.offer(received.peer.id, Envelope.encode([1, Envelope.Kind.Ack, envelope[2]]))
              server.offer(received.peer.id, Envelope.encode([1, Envelope.Kind.Reply, envelope[2], 7]))
            }
          }),
        ).pipe(Effect.forkScoped)
        const client = yield* clientNode({ retry: { ackTimeout: 100, initialBackoff: 10 } })
        const result = yield* client.client(Ledger, { endpoint }).append({ entry: "e" })
        assert.strictEqual(result, 7)
        assert.strictEqual(attempts.length, 2)
        assert.strictEqual(attempts[0]?.at, 1)
        assert.strictEqual(attempts[1]?.at, 2)
        assert.strictEqual(attempts[0]?.ak, 1)
        assert.isString(attempts[0]?.ik, "a generated idempotency key for a non-idempotent method")
        assert.strictEqual(attempts[0]?.ik, attempts[1]?.ik)
        assert.strictEqual(client.metrics().sent, 2, "both attempts were written")
        assert.strictEqual(client.metrics().retried, 1)
        assert.strictEqual(client.metrics().acked, 1)
      }),
    ),
  )

  it.live("every call attempt and every tell written to the wire is counted as sent", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { node, entries } = yield* ledgerNode("ledger")
        const client = yield* clientNode()
        const endpoint = node.endpoints()[0]!
        const ledger = client.client(Ledger, { endpoint })
        const teller = client.teller(Ledger, { endpoint })
        for (let i = 0; i < 3; i++) yield* ledger.slowAppend({ entry: `call${i}`, ms: 0 })
        yield* teller.slowAppend({ entry: "tell0", ms: 0 })
        yield* teller.slowAppend({ entry: "tell1", ms: 0 })
        // Declared at-least-once: one attempt, answered at once.
        yield* ledger.append({ entry: "acked" })
        yield* wait(() => entries.length === 6, "the tells to run")
        // Refused before the wire (payload invalid): not sent.
        yield* Effect.flip(ledger.slowAppend({ entry: 1 } as unknown as { entry: string; ms: number }))
        assert.strictEqual(client.metrics().sent, 6)
        assert.strictEqual(client.metricsSnapshot().counters.sent, 6)
        assert.include(Prometheus.render([client.metricsSnapshot()]), `zactor_sent_total{node="${client.id}"} 6`)
        assert.strictEqual(node.metrics().sent, 0, "answers are not counted as sent")
      }),
    ),
  )

  it.live("retries go to another instance when one dies; a plain at-most-once call is not retried", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const a = yield* ledgerNode("a")
        const b = yield* ledgerNode("b")
        const client = yield* clientNode({ retry: { initialBackoff: 5, maxBackoff: 20 } })
        yield* client.connect(a.node.endpoints()[0]!)
        yield* client.connect(b.node.endpoints()[0]!)
        yield* a.node.transport.close
        yield* wait(() => client.remotes().some((r) => r.info?.id === "a" && r.outstanding === 0), "a known")
        const ledger = client.client(Ledger)
        const results = yield* Effect.all(
          Array.from({ length: 20 }, (_, i) => ledger.append({ entry: `e${i}` }, { timeout: 5000 })),
          { concurrency: 4 },
        )
        assert.lengthOf(results, 20)
        assert.lengthOf(b.entries, 20)
        // The same dead instance, at most once: one attempt, a typed failure, no retry.
        const once = client.client(Ledger, { endpoint: a.node.endpoints()[0]! })
        const before = client.metrics().retried
        const error = yield* Effect.flip(once.slowAppend({ entry: "never", ms: 0 }, { timeout: 1000 }))
        assert.include(["unavailable", "deadline_exceeded"], (error as RpcError).code)
        assert.strictEqual(client.metrics().retried, before)
      }),
    ),
  )
})

/** Idempotent and plain methods, served by `workNode`. */
const Work = Contract.make("Work", {
  idempotent: Contract.unary({ payload: Schema.Struct({}), success: Schema.String, idempotent: true }),
  plain: Contract.unary({ payload: Schema.Struct({}), success: Schema.String }),
})

/** A node serving Work whose handlers take `workMs` and answer its id; `started` counts them by method. */
const workNode = (id: string, workMs: number) =>
  Effect.gen(function* () {
    const started = { idempotent: 0, plain: 0 }
    const node = yield* clientNode({ id })
    const work = (method: keyof typeof started) =>
      Effect.andThen(
        Effect.sync(() => started[method]++),
        Effect.as(Effect.sleep(workMs), id),
      )
    yield* node.serve(Work, { idempotent: () => work("idempotent"), plain: () => work("plain") })
    return { node, started }
  })

describe("at-most-once calls that are safe to repeat", () => {
  it.live("idempotent and keyed calls caught by a dying instance are retried on another; plain ones fail", () =>
    Effect.scoped(
      Effect.gen(function* () {
        // `a` would take 30 s to answer; `b` answers at once.
        const a = yield* workNode("a", 30_000)
        const b = yield* workNode("b", 0)
        const client = yield* clientNode({ retry: { initialBackoff: 5, maxBackoff: 20 } })
        const letters: Array<DeadLetter> = []
        yield* Stream.runForEach(client.deadLetters, (letter) => Effect.sync(() => letters.push(letter))).pipe(
          Effect.forkScoped,
        )
        // Only `a` is known while the calls start, so all three run there.
        yield* client.connect(a.node.endpoints()[0]!)
        const work = client.client(Work)
        const options = { timeout: 10_000 }
        const idempotent = yield* Effect.forkScoped(work.idempotent({}, options))
        const keyed = yield* Effect.forkScoped(work.plain({}, { ...options, idempotencyKey: "k1" }))
        const plain = yield* Effect.forkScoped(Effect.flip(work.plain({}, options)))
        yield* wait(() => a.started.idempotent === 1 && a.started.plain === 2, "the three calls to run on a")
        yield* client.connect(b.node.endpoints()[0]!)
        // `a` goes away mid-call: its sockets close, the client sees the connection lost.
        yield* a.node.transport.close
        assert.strictEqual(yield* Fiber.join(idempotent), "b")
        assert.strictEqual(yield* Fiber.join(keyed), "b")
        const error = (yield* Fiber.join(plain)) as RpcError
        assert.strictEqual(error.code, "unavailable")
        assert.isUndefined(error.attempts, "sent once")
        assert.deepStrictEqual(b.started, { idempotent: 1, plain: 1 }, "b ran the retried calls, not the plain one")
        assert.strictEqual(client.metrics().retried, 2)
        assert.strictEqual(client.metrics().sent, 5)
        assert.strictEqual(client.metrics().acked, 0, "no ACKs asked for")
        assert.deepStrictEqual(letters, [])
      }),
    ),
  )

  it.live("retried within maxAttempts, then given up on as retries-exhausted with the last error's code", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const a = yield* workNode("a", 0)
        const client = yield* clientNode({ retry: { initialBackoff: 5, maxBackoff: 20, maxAttempts: 3 } })
        const letters: Array<DeadLetter> = []
        yield* Stream.runForEach(client.deadLetters, (letter) => Effect.sync(() => letters.push(letter))).pipe(
          Effect.forkScoped,
        )
        yield* client.connect(a.node.endpoints()[0]!)
        yield* a.node.transport.close
        yield* wait(() => client.metricsSnapshot().peers.every((peer) => !peer.connected), "a to be seen gone")
        const error = (yield* Effect.flip(client.client(Work).idempotent({}, { timeout: 5000 }))) as RpcError
        assert.strictEqual(error.code, "unavailable")
        assert.strictEqual(error.attempts, 3)
        yield* wait(() => letters.length === 1, "the dead letter")
        assert.deepInclude(letters[0]!, {
          reason: "retries-exhausted",
          target: "Work/idempotent",
          direction: "outbound",
          attempt: 3,
          count: 1,
        })
        assert.strictEqual(client.metrics().retried, 2)
        assert.strictEqual(client.metrics().deadLettered, 1)
        assert.strictEqual(client.metrics().sent, 0, "refused before the wire: no instance is connected")
      }),
    ),
  )
})

/** The one envelope a lossy node loses: the first whose direction and kind match (and target, for requests). */
interface Loss {
  readonly direction: "in" | "out"
  readonly kind: Envelope.Kind
  readonly targetPrefix?: string
}

/**
 * A real ZeroMQ transport that loses one envelope, as a dying connection would: the node above it never sees a
 * lost inbound one, and a lost outbound one never leaves. `lost` counts what it lost.
 */
const lossyTransport = (inner: TransportShape, loss: Loss) => {
  const state = { lost: 0 }
  const loses = (direction: Loss["direction"], payload: Uint8Array): boolean => {
    if (state.lost > 0 || direction !== loss.direction) return false
    const envelope = Envelope.decode(payload)
    if (Envelope.isMalformed(envelope) || envelope[1] !== loss.kind) return false
    if (
      loss.targetPrefix !== undefined &&
      !(envelope[1] === Envelope.Kind.Request && envelope[3].startsWith(loss.targetPrefix))
    )
      return false
    state.lost++
    return true
  }
  const transport: TransportShape = {
    ...inner,
    offer: (peer, payload) => (loses("out", payload) ? undefined : inner.offer(peer, payload)),
    pollReceived: () => {
      const received = inner.pollReceived()
      if (received === undefined) return undefined
      return { ...received, payloads: received.payloads.filter((payload) => !loses("in", payload)) }
    },
  }
  return { transport, state }
}

const Counter = Contract.make("Counter", {
  add: Contract.unary({ payload: Schema.Struct({ by: Schema.Number }), success: Schema.Number }),
  total: Contract.unary({ payload: Schema.Struct({}), success: Schema.Number }),
})

/** Counts every message it processes, so a duplicate effect would show in `total`. */
const CounterActor = Actor.make(Counter, {
  initialState: 0,
  handlers: {
    add: ({ by }, context) =>
      Effect.sync(() => {
        context.setState(context.state + by)
        return context.state
      }),
    total: (_, context) => Effect.succeed(context.state),
  },
})

/** An actor `counter` on a node whose transport loses one envelope; a client node to reach it. */
const lossyActor = (loss: Loss) =>
  Effect.gen(function* () {
    const lossy = lossyTransport(yield* ZmqTransport.make({}), loss)
    const host = yield* Node.make({ id: "host" }).pipe(Effect.provideService(Transport, lossy.transport))
    const ref = yield* Actor.spawnOn(host, CounterActor, "counter")
    const client = yield* clientNode({ retry: { ackTimeout: 150, initialBackoff: 10 } })
    return { host, ref, client, lossy: lossy.state }
  })

describe("at-least-once actor messages", () => {
  it.live("an ask whose reply is lost is sent again with its key and answered from the window: processed once", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { host, ref, client, lossy } = yield* lossyActor({ direction: "out", kind: Envelope.Kind.Reply })
        const counter = ActorRef.ask(client, ref)
        const total = yield* counter.add({ by: 5 }, { delivery: "at-least-once", timeout: 5000 })
        assert.strictEqual(lossy.lost, 1, "the first attempt's reply was lost")
        assert.strictEqual(total, 5, "the stored reply of the first attempt")
        assert.strictEqual(client.metrics().retried, 1)
        assert.strictEqual(client.metrics().sent, 2)
        assert.strictEqual(host.metrics().deduplicated, 1, "the retry did not reach the actor")
        assert.strictEqual(yield* counter.total({}), 5, "the actor processed the message once")
      }),
    ),
  )

  it.live("a tell lost on its way to the actor's node is sent again until ACKed: processed once", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { host, ref, client, lossy } = yield* lossyActor({
          direction: "in",
          kind: Envelope.Kind.Request,
          targetPrefix: "@counter/",
        })
        yield* ActorRef.tell(client, ref).add({ by: 3 }, { delivery: "at-least-once", timeout: 5000 })
        assert.strictEqual(lossy.lost, 1, "the first attempt never reached the actor's node")
        assert.strictEqual(client.metrics().retried, 1)
        assert.strictEqual(client.metrics().sent, 2)
        assert.strictEqual(host.metrics().deduplicated, 0)
        assert.strictEqual(yield* ActorRef.ask(client, ref).total({}), 3, "processed once")
      }),
    ),
  )

  it.live("a tell whose ACK is lost is sent again; the duplicate is answered from the window: processed once", () =>
    Effect.scoped(
      Effect.gen(function* () {
        // `add` finishes at once, so its answer stands for the ACK; that answer is what is lost.
        const { host, ref, client, lossy } = yield* lossyActor({ direction: "out", kind: Envelope.Kind.Reply })
        yield* ActorRef.tell(client, ref).add({ by: 4 }, { delivery: "at-least-once", timeout: 5000 })
        assert.strictEqual(lossy.lost, 1)
        assert.strictEqual(client.metrics().retried, 1)
        assert.strictEqual(host.metrics().deduplicated, 1)
        assert.strictEqual(yield* ActorRef.ask(client, ref).total({}), 4, "processed once")
      }),
    ),
  )
})

describe("at-least-once tells", () => {
  it.live("a tell whose first attempt is lost is sent again with the same key; it completes on the ACK", () =>
    Effect.scoped(
      Effect.gen(function* () {
        // A hand-written callee: loses the first attempt, ACKs the second and never answers it.
        const server = yield* ZmqTransport.make({})
        const endpoint = yield* server.bind("tcp://127.0.0.1:*")
        const attempts: Array<Envelope.Headers | null> = []
        yield* Stream.runForEach(server.received, (received) =>
          Effect.sync(() => {
            for (const payload of received.payloads) {
              const envelope = Envelope.decode(payload)
              if (Envelope.isMalformed(envelope) || envelope[1] !== Envelope.Kind.Request) continue
              attempts.push(envelope[6])
              if (attempts.length > 1)
                server.offer(received.peer.id, Envelope.encode([1, Envelope.Kind.Ack, envelope[2]]))
            }
          }),
        ).pipe(Effect.forkScoped)
        const client = yield* clientNode({ retry: { ackTimeout: 100, initialBackoff: 10 } })
        // `append` is declared at-least-once, so its tells are too.
        yield* client.teller(Ledger, { endpoint }).append({ entry: "e" }, { timeout: 5000 })
        assert.strictEqual(attempts.length, 2)
        assert.strictEqual(attempts[0]?.ak, 1)
        assert.isString(attempts[0]?.ik)
        assert.strictEqual(attempts[0]?.ik, attempts[1]?.ik)
        assert.strictEqual(client.metrics().sent, 2)
        assert.strictEqual(client.metrics().retried, 1)
        assert.strictEqual(client.metrics().acked, 1)
      }),
    ),
  )

  it.live("per call: a tell completes on receipt, before a slow handler finishes, and runs it once", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { node, entries } = yield* ledgerNode("ledger")
        const client = yield* clientNode({ retry: { ackTimeout: 200 } })
        const teller = client.teller(Ledger, { endpoint: node.endpoints()[0]! })
        const started = Date.now()
        yield* teller.slowAppend({ entry: "slow", ms: 1000 }, { delivery: "at-least-once", timeout: 5000 })
        assert.isBelow(Date.now() - started, 900, "completed by the ACK, not by the handler's answer")
        yield* wait(() => entries.length === 1, "the handler to run")
        assert.deepStrictEqual(entries, ["slow"])
        // Its answer arrives later and is dropped quietly: not an unknown correlation.
        yield* Effect.sleep(1200)
        assert.strictEqual(client.metrics().unknownCorrelation, 0)
      }),
    ),
  )

  it.live("a tell to an unknown method fails with a typed error instead of being retried", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { node } = yield* ledgerNode("ledger")
        const client = yield* clientNode()
        const Other = Contract.make("Ledger", {
          missing: Contract.unary({ payload: Schema.Struct({}), delivery: "at-least-once" }),
        })
        const error = yield* Effect.flip(client.teller(Other, { endpoint: node.endpoints()[0]! }).missing({}))
        assert.strictEqual(error.code, "not_found")
        assert.strictEqual(client.metrics().retried, 0)
      }),
    ),
  )
})

describe("dead letters", () => {
  it.live("unroutable and retries-exhausted messages are published with reason, target and attempts", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { node } = yield* ledgerNode("ledger")
        const letters: Array<DeadLetter> = []
        yield* Stream.runForEach(node.deadLetters, (letter) => Effect.sync(() => letters.push(letter))).pipe(
          Effect.forkScoped,
        )
        const client = yield* clientNode({ retry: { ackTimeout: 50, initialBackoff: 5, maxAttempts: 3 } })
        const clientLetters: Array<DeadLetter> = []
        const fiber = yield* Stream.runForEach(client.deadLetters, (letter) =>
          Effect.sync(() => clientLetters.push(letter)),
        ).pipe(Effect.forkScoped)
        yield* Effect.sleep(10)
        const renamed = { ...Ledger, name: "NoSuchService" }
        yield* Effect.flip(client.client(renamed, { endpoint: node.endpoints()[0]! }).slowAppend({ entry: "x", ms: 0 }))
        yield* wait(() => letters.some((l) => l.reason === "unroutable"), "an unroutable dead letter")
        assert.strictEqual(letters[0]?.target, "NoSuchService/slowAppend")
        // Nobody listens there: every attempt loses its ACK, then the call is given up on.
        const error = yield* Effect.flip(
          client.client(Ledger, { endpoint: "tcp://127.0.0.1:9" }).append({ entry: "y" }, { timeout: 2000 }),
        )
        assert.strictEqual((error as RpcError).attempts, 3)
        yield* wait(() => clientLetters.some((l) => l.reason === "retries-exhausted"), "retries-exhausted")
        const exhausted = clientLetters.find((l) => l.reason === "retries-exhausted")!
        assert.strictEqual(exhausted.attempt, 3)
        assert.strictEqual(exhausted.target, "Ledger/append")
        assert.strictEqual(exhausted.direction, "outbound")
        assert.deepStrictEqual(
          clientLetters.map((l) => l.reason),
          ["retries-exhausted"],
        )
        assert.strictEqual(client.metrics().deadLettered, 1)
        assert.deepStrictEqual(client.metricsSnapshot().deadLetters, { "retries-exhausted": 1 })
        assert.strictEqual(node.metrics().deadLettered, 1)
        assert.deepStrictEqual(node.metricsSnapshot().deadLetters, { unroutable: 1 })
        yield* Fiber.interrupt(fiber)
      }),
    ),
  )

  it.live("inbound: expired, rejected, over-limit and mailbox-full letters name the reason, target and attempt", () =>
    Effect.scoped(
      Effect.gen(function* () {
        // One call at a time, so that a second call while one runs is refused as over the limit.
        const server = yield* clientNode({ id: "limited", maxConcurrentCalls: 1 })
        yield* server.serve(Ledger, {
          append: () => Effect.succeed(0),
          slowAppend: ({ ms }) => Effect.as(Effect.sleep(ms), 1),
        })
        const letters: Array<DeadLetter> = []
        yield* Stream.runForEach(server.deadLetters, (letter) => Effect.sync(() => letters.push(letter))).pipe(
          Effect.forkScoped,
        )
        const client = yield* clientNode()
        const endpoint = server.endpoints()[0]!
        const ledger = client.client(Ledger, { endpoint })
        const codeOf = (error: unknown) => (error as RpcError).code
        yield* Effect.sleep(10)

        // Expired: a call with no time left arrives expired and is dropped without running.
        assert.strictEqual(
          codeOf(yield* Effect.flip(ledger.slowAppend({ entry: "e", ms: 0 }, { timeout: 0 }))),
          "deadline_exceeded",
        )
        yield* wait(() => letters.length === 1, "the expired letter")

        // Rejected: a payload the served contract refuses (a caller with another version of it).
        const Stale = Contract.make("Ledger", {
          slowAppend: Contract.unary({ payload: Schema.Struct({ entry: Schema.Number }), success: Schema.Number }),
        })
        const invalid = yield* Effect.flip(client.client(Stale, { endpoint }).slowAppend({ entry: 7 }))
        assert.strictEqual(codeOf(invalid), "invalid_argument")

        // Over the limit: the server is already serving its one call.
        const running = yield* Effect.forkScoped(ledger.slowAppend({ entry: "long", ms: 400 }))
        yield* wait(() => server.metricsSnapshot().gauges.inflight === 1, "one call in flight")
        const refused = yield* Effect.flip(ledger.slowAppend({ entry: "one too many", ms: 0 }))
        assert.strictEqual(codeOf(refused), "overloaded")
        assert.strictEqual(yield* Fiber.join(running), 1)

        // Mailbox full: one message runs, one waits (capacity 1), the third tell is refused on arrival.
        const Slow = Actor.make(Counter, {
          initialState: 0,
          mailboxCapacity: 1,
          handlers: {
            add: ({ by }, context) =>
              Effect.andThen(
                Effect.sleep(300),
                Effect.sync(() => {
                  context.setState(context.state + by)
                  return context.state
                }),
              ),
            total: (_, context) => Effect.succeed(context.state),
          },
        })
        const ref = yield* Actor.spawnOn(server, Slow, "slow")
        const teller = ActorRef.tell(client, ref)
        for (const by of [1, 2, 4]) yield* teller.add({ by })
        yield* wait(() => letters.length === 4, "the mailbox-full letter")
        yield* wait(() => server.metrics().tellsReceived === 3, "the tells to arrive")

        const fields = letters.map(({ reason, target, direction, attempt, count }) => ({
          reason,
          target,
          direction,
          attempt,
          count,
        }))
        const inbound = { direction: "inbound", attempt: 1, count: 1 } as const
        assert.deepStrictEqual(fields, [
          { reason: "expired", target: "Ledger/slowAppend", ...inbound },
          { reason: "rejected", target: "Ledger/slowAppend", ...inbound },
          { reason: "over-limit", target: "Ledger/slowAppend", ...inbound },
          { reason: "mailbox-full", target: "@slow/add", ...inbound },
        ])
        assert.include(letters[0]!.detail, "arrived expired")
        assert.include(letters[1]!.detail, "invalid payload")
        assert.include(letters[2]!.detail, "its limit")
        assert.include(letters[3]!.detail, "mailbox full")
        assert.strictEqual(server.metrics().deadLettered, 4)
        assert.deepStrictEqual(server.metricsSnapshot().deadLetters, {
          expired: 1,
          rejected: 1,
          "over-limit": 1,
          "mailbox-full": 1,
        })
        assert.strictEqual(client.metrics().deadLettered, 0, "none of these calls was retried")
        // The two tells that were not refused both ran, the third never: 1 + 2.
        yield* wait(() => Actor.stats(ref)?.processed === 2, "the two accepted tells to run")
        assert.strictEqual(Actor.stats(ref)?.deadLetters, 1)
        assert.strictEqual(yield* ActorRef.ask(client, ref).total({}), 3)
        assert.strictEqual(server.metrics().deadLettered, 4)
      }),
    ),
  )
})
