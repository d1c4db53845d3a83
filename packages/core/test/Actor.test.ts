import { assert, describe, it } from "@effect/vitest"
import { Context, Deferred, Effect, Exit, Fiber, Option, Schema, Scope } from "effect"
import * as Actor from "../src/Actor.ts"
import * as ActorRef from "../src/ActorRef.ts"
import { CurrentCall } from "../src/CallContext.ts"
import * as Contract from "../src/Contract.ts"
import * as Node from "../src/Node.ts"
import { RpcError } from "../src/RpcError.ts"
import { zmqNode } from "./fixtures.ts"

// ---- contracts and behaviours ----------------------------------------------------------------------------------

class Insufficient extends Schema.TaggedError<Insufficient>()("Insufficient", {
  balance: Schema.Number,
  wanted: Schema.Number,
}) {}

const Empty = Schema.Struct({})

const Account = Contract.make("Account", {
  deposit: Contract.unary({ payload: Schema.Struct({ amount: Schema.Number }), success: Schema.Number }),
  balance: Contract.unary({ payload: Empty, success: Schema.Number }),
  withdraw: Contract.unary({
    payload: Schema.Struct({ amount: Schema.Number }),
    success: Schema.Number,
    error: Insufficient,
  }),
  rejected: Contract.unary({ payload: Empty, success: Schema.Number }),
  crash: Contract.unary({ payload: Empty, success: Schema.Number }),
  stopSelf: Contract.unary({ payload: Empty, success: Schema.String }),
})

interface AccountState {
  readonly balance: number
  readonly rejected: number
}

const AccountActor = Actor.make(Account, {
  initialState: { balance: 0, rejected: 0 } as AccountState,
  handlers: {
    deposit: ({ amount }, ctx) =>
      Effect.sync(() => {
        ctx.setState({ ...ctx.state, balance: ctx.state.balance + amount })
        return ctx.state.balance
      }),
    balance: (_, ctx) => Effect.succeed(ctx.state.balance),
    withdraw: ({ amount }, ctx) =>
      Effect.gen(function* () {
        if (amount > ctx.state.balance) {
          // A typed failure commits the state it set: the rejection is counted.
          ctx.setState({ ...ctx.state, rejected: ctx.state.rejected + 1 })
          return yield* Effect.fail(new Insufficient({ balance: ctx.state.balance, wanted: amount }))
        }
        ctx.setState({ ...ctx.state, balance: ctx.state.balance - amount })
        return ctx.state.balance
      }),
    rejected: (_, ctx) => Effect.succeed(ctx.state.rejected),
    crash: (_, ctx) =>
      Effect.suspend(() => {
        // A defect discards the state it set.
        ctx.setState({ balance: -1, rejected: -1 })
        return Effect.die(new Error("boom"))
      }),
    stopSelf: (_, ctx) => Effect.as(Actor.stop(ctx.self), "stopping"),
  },
})

/** A probe: records what it handles and how many handlers overlap; `block` waits for a gate the test opens. */
const Probe = Contract.make("Probe", {
  work: Contract.unary({ payload: Schema.Struct({ seq: Schema.Number, ms: Schema.Number }), success: Schema.Number }),
  block: Contract.unary({ payload: Schema.Struct({ seq: Schema.Number }), success: Schema.Number }),
  note: Contract.unary({ payload: Schema.Struct({ seq: Schema.Number }), success: Schema.Number }),
  log: Contract.unary({ payload: Empty, success: Schema.Array(Schema.Number) }),
})

const makeProbe = (options: { readonly mailboxCapacity?: number; readonly overflow?: Actor.Overflow } = {}) =>
  Effect.gen(function* () {
    const gate = yield* Deferred.make<void>()
    const probe = {
      active: 0,
      maxActive: 0,
      blocked: 0,
      interrupted: 0,
      log: [] as Array<number>,
      gate,
    }
    const enter = (seq: number) =>
      Effect.sync(() => {
        probe.active++
        probe.maxActive = Math.max(probe.maxActive, probe.active)
        probe.log.push(seq)
      })
    const leave = Effect.sync(() => {
      probe.active--
    })
    const behavior = Actor.make(Probe, {
      initialState: 0,
      ...options,
      handlers: {
        work: ({ seq, ms }) =>
          enter(seq).pipe(Effect.andThen(Effect.sleep(ms)), Effect.ensuring(leave), Effect.as(seq)),
        block: ({ seq }) =>
          enter(seq).pipe(
            Effect.tap(() => Effect.sync(() => probe.blocked++)),
            Effect.andThen(Deferred.await(gate)),
            Effect.onInterrupt(() => Effect.sync(() => probe.interrupted++)),
            Effect.ensuring(leave),
            Effect.as(seq),
          ),
        note: ({ seq }) => enter(seq).pipe(Effect.andThen(leave), Effect.as(seq)),
        log: () => Effect.succeed([...probe.log]),
      },
    })
    return { probe, behavior }
  })

// ---- helpers ---------------------------------------------------------------------------------------------------

/** Polls `predicate` until it holds, failing the test after `timeoutMs`. */
const waitUntil = (what: string, predicate: () => boolean, timeoutMs = 3000) =>
  Effect.promise(async () => {
    const until = Date.now() + timeoutMs
    while (!predicate()) {
      if (Date.now() > until) return false
      await new Promise((resolve) => setTimeout(resolve, 2))
    }
    return true
  }).pipe(Effect.flatMap((ok) => (ok ? Effect.void : Effect.die(new Error(`timed out waiting for ${what}`)))))

const statsOf = (ref: ActorRef.ActorRef): Actor.ActorStats => {
  const stats = Actor.stats(ref)
  if (stats === undefined) throw new Error(`no stats for ${ref.name}`)
  return stats
}

const codeOf = (error: unknown): string | undefined => (RpcError.is(error) ? error.code : undefined)

/** A server node hosting actors and a client node connected to it. */
const pair = Effect.gen(function* () {
  const server = yield* zmqNode({ id: "server" })
  const client = yield* zmqNode({ id: "client" })
  yield* client.connect(server.endpoints()[0]!)
  return { server, client }
})

/** A service some spawns provide and others do not. */
class Greeting extends Context.Service<Greeting, { readonly text: string }>()("test/Greeting") {}

/** What a handler sees of its environment: the call it serves, the spawn's services, and its scope. */
const Environment = Contract.make("Environment", {
  whoami: Contract.unary({
    payload: Empty,
    success: Schema.Struct({ method: Schema.String, greeting: Schema.String }),
  }),
  acquire: Contract.unary({ payload: Empty, success: Schema.Boolean }),
})

/** `acquire` adds a finalizer to the handler's scope that records the actor's name when it runs. */
const environmentActor = (released: Array<string>) =>
  Actor.make(Environment, {
    initialState: 0,
    handlers: {
      whoami: () =>
        Effect.gen(function* () {
          const call = yield* CurrentCall
          const greeting = yield* Effect.serviceOption(Greeting)
          return {
            method: call?.method ?? "none",
            greeting: Option.match(greeting, { onNone: () => "none", onSome: (g) => g.text }),
          }
        }),
      acquire: (_, ctx) =>
        Effect.as(
          Effect.addFinalizer(() => Effect.sync(() => released.push(ctx.self.name))),
          true,
        ),
    },
  })

/** A service whose handler spawns an actor: the spawn runs inside a call, with a service of its own. */
const Spawner = Contract.make("Spawner", {
  spawn: Contract.unary({ payload: Schema.Struct({ name: Schema.String }), success: Schema.String }),
})

// ---- tests -----------------------------------------------------------------------------------------------------

describe("Actor over ZeroMQ", () => {
  it.live("answers asks and tells, keeping its state between messages", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { server, client } = yield* pair
        const ref = yield* Actor.spawnOn(server, AccountActor, "account-1")
        assert.strictEqual(ref.name, "account-1")
        assert.strictEqual(ref.node, "server")
        assert.deepStrictEqual(ref.endpoints, server.endpoints())
        const account = ActorRef.ask(client, ref)
        assert.strictEqual(yield* account.deposit({ amount: 2 }), 2)
        const teller = ActorRef.tell(client, ref)
        for (let i = 0; i < 3; i++) yield* teller.deposit({ amount: 3 })
        // Tells and asks share one connection and one mailbox: the ask is handled after the three tells.
        assert.strictEqual(yield* account.balance({}), 11)
        assert.strictEqual(yield* account.withdraw({ amount: 4 }), 7)
        assert.strictEqual(statsOf(ref).processed, 6)
      }),
    ),
  )

  it.live("spawns through the Node service and serves local calls through the node", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { server } = yield* pair
        const ref = yield* Actor.spawn(AccountActor, "account-2", {
          initialState: { balance: 100, rejected: 0 },
        }).pipe(Effect.provideService(Node.Node, server))
        const account = yield* ActorRef.client(ref).pipe(Effect.provideService(Node.Node, server))
        assert.strictEqual(yield* account.balance({}), 100)
      }),
    ),
  )

  it.live("handlers see their own call and their spawn's services; what they acquire is released at stop", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { server, client } = yield* pair
        const released: Array<string> = []
        const behavior = environmentActor(released)
        // The first spawn registers the actors of the node with its services; the others bring their own.
        const plain = yield* Actor.spawnOn(server, behavior, "plain")
        const greeted = yield* Actor.spawnOn(server, behavior, "greeted").pipe(
          Effect.provideService(Greeting, { text: "from the spawn" }),
        )
        const spawnerScope = yield* Scope.make()
        const spawned: Array<ActorRef.ActorRef<typeof Environment>> = []
        yield* server
          .serve(Spawner, {
            spawn: ({ name }) =>
              Actor.spawnOn(server, behavior, name).pipe(
                Effect.provideService(Greeting, { text: "from a handler" }),
                Effect.provideService(Scope.Scope, spawnerScope),
                Effect.map((ref) => {
                  spawned.push(ref)
                  return name
                }),
              ),
          })
          .pipe(Scope.provide(spawnerScope))
        yield* client.client(Spawner, { endpoint: server.endpoints()[0]! }).spawn({ name: "inner" })
        const inner = spawned[0]!

        const ask = (ref: ActorRef.ActorRef<typeof Environment>) => ActorRef.ask(client, ref)
        assert.deepStrictEqual(yield* ask(plain).whoami({}), { method: "@plain/whoami", greeting: "none" })
        assert.deepStrictEqual(yield* ask(greeted).whoami({}), {
          method: "@greeted/whoami",
          greeting: "from the spawn",
        })
        // Spawned inside the call `Spawner/spawn`: its messages still see the calls they serve.
        assert.deepStrictEqual(yield* ask(inner).whoami({}), { method: "@inner/whoami", greeting: "from a handler" })

        // A handler's finalizers belong to its actor: they run when the actor stops, not with the spawner.
        for (const ref of [plain, greeted, inner]) assert.isTrue(yield* ask(ref).acquire({}))
        assert.deepStrictEqual(released, [])
        yield* Actor.stop(greeted)
        yield* Actor.stop(inner)
        assert.deepStrictEqual(released, ["greeted", "inner"])
        yield* Actor.stop(plain)
        assert.deepStrictEqual(released, ["greeted", "inner", "plain"])
      }),
    ),
  )

  it.live("handles one message at a time, in arrival order", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { server, client } = yield* pair
        const { probe, behavior } = yield* makeProbe()
        const ref = yield* Actor.spawnOn(server, behavior, "probe")
        const calls = ActorRef.ask(client, ref)
        const results = yield* Effect.all(
          Array.from({ length: 50 }, (_, seq) => calls.work({ seq, ms: seq % 3 })),
          { concurrency: "unbounded" },
        )
        assert.deepStrictEqual(
          results,
          Array.from({ length: 50 }, (_, seq) => seq),
        )
        assert.strictEqual(probe.maxActive, 1)
        assert.deepStrictEqual(
          probe.log,
          Array.from({ length: 50 }, (_, seq) => seq),
        )
      }),
    ),
  )

  it.live("a full mailbox fails asks with overloaded at once and drops tells, counting them", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { server, client } = yield* pair
        const { probe, behavior } = yield* makeProbe({ mailboxCapacity: 2 })
        const ref = yield* Actor.spawnOn(server, behavior, "small")
        const calls = ActorRef.ask(client, ref)
        const running = yield* Effect.forkChild(calls.block({ seq: 0 }))
        yield* waitUntil("the first message to run", () => probe.blocked === 1)
        const queued = yield* Effect.forkChild(
          Effect.all([calls.work({ seq: 1, ms: 0 }), calls.work({ seq: 2, ms: 0 })], { concurrency: "unbounded" }),
        )
        yield* waitUntil("two messages to wait", () => statsOf(ref).mailbox === 2)
        const started = Date.now()
        const error = yield* Effect.flip(calls.work({ seq: 3, ms: 0 }))
        assert.strictEqual(codeOf(error), "overloaded")
        assert.isBelow(Date.now() - started, 1000)
        yield* ActorRef.tell(client, ref).work({ seq: 4, ms: 0 })
        // The refused ask and the dropped tell are both dead letters, on the actor's stats and the node's stream.
        yield* waitUntil("the tell to be dropped", () => statsOf(ref).deadLetters === 2)
        assert.strictEqual(server.metrics().deadLettered, 2)
        yield* Deferred.succeed(probe.gate, undefined)
        assert.strictEqual(yield* Fiber.join(running), 0)
        assert.deepStrictEqual(yield* Fiber.join(queued), [1, 2])
        assert.deepStrictEqual(probe.log, [0, 1, 2])
      }),
    ),
  )

  it.live("a long line of waiting messages drains in order without growing the stack", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { server, client } = yield* pair
        const { probe, behavior } = yield* makeProbe({ mailboxCapacity: 10_000 })
        const ref = yield* Actor.spawnOn(server, behavior, "long-line")
        const running = yield* Effect.forkChild(ActorRef.ask(client, ref).block({ seq: 0 }))
        yield* waitUntil("the first message to run", () => probe.blocked === 1)
        const teller = ActorRef.tell(client, ref)
        // Synchronous handlers: each hands the turn to the next as it ends.
        for (let seq = 1; seq <= 5000; seq++) yield* teller.note({ seq })
        yield* waitUntil("5000 messages to wait", () => statsOf(ref).mailbox === 5000)
        yield* Deferred.succeed(probe.gate, undefined)
        yield* Fiber.join(running)
        const log = yield* ActorRef.ask(client, ref).log({})
        assert.deepStrictEqual(
          log,
          Array.from({ length: 5001 }, (_, seq) => seq),
        )
        assert.strictEqual(probe.maxActive, 1)
      }),
    ),
  )

  it.live('overflow "drop" makes room by failing the oldest waiting message', () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { server, client } = yield* pair
        const { probe, behavior } = yield* makeProbe({ mailboxCapacity: 1, overflow: "drop" })
        const ref = yield* Actor.spawnOn(server, behavior, "latest")
        const calls = ActorRef.ask(client, ref)
        const running = yield* Effect.forkChild(calls.block({ seq: 0 }))
        yield* waitUntil("the first message to run", () => probe.blocked === 1)
        const oldest = yield* Effect.forkChild(calls.work({ seq: 1, ms: 0 }))
        yield* waitUntil("one message to wait", () => statsOf(ref).mailbox === 1)
        const newest = yield* Effect.forkChild(calls.work({ seq: 2, ms: 0 }))
        const dropped = yield* Fiber.await(oldest)
        assert.isTrue(Exit.isFailure(dropped))
        assert.strictEqual(codeOf(yield* Effect.flip(Fiber.join(oldest))), "overloaded")
        yield* Deferred.succeed(probe.gate, undefined)
        assert.strictEqual(yield* Fiber.join(running), 0)
        assert.strictEqual(yield* Fiber.join(newest), 2)
        assert.deepStrictEqual(probe.log, [0, 2])
      }),
    ),
  )

  it.live("onStart runs before the first message and onStop after the last, with the final state", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { server, client } = yield* pair
        const events: Array<string> = []
        const behavior = Actor.make(Account, {
          initialState: { balance: 0, rejected: 0 } as AccountState,
          onStart: (ctx) =>
            Effect.gen(function* () {
              events.push("start")
              // A message to itself arrives while onStart holds the turn: it waits, then sees onStart's state.
              yield* ctx.tell(ctx.self).deposit({ amount: 1 })
              yield* waitUntil("the tell to wait for onStart", () => statsOf(ctx.self).mailbox === 1)
              ctx.setState({ balance: 100, rejected: 0 })
            }),
          // Stopping itself from onStop is a no-op, not a wait for its own end.
          onStop: (ctx) =>
            Actor.stop(ctx.self).pipe(Effect.andThen(Effect.sync(() => events.push(`stop:${ctx.state.balance}`)))),
          handlers: {
            ...AccountActor.handlers,
            deposit: ({ amount }, ctx) =>
              Effect.sync(() => {
                events.push(`deposit:${amount}`)
                ctx.setState({ ...ctx.state, balance: ctx.state.balance + amount })
                return ctx.state.balance
              }),
          },
        })
        const scope = yield* Scope.make()
        const ref = yield* Actor.spawnOn(server, behavior, "lifecycle").pipe(Scope.provide(scope))
        const account = ActorRef.ask(client, ref)
        assert.strictEqual(yield* account.deposit({ amount: 10 }), 111)
        yield* Scope.close(scope, Exit.void)
        assert.deepStrictEqual(events, ["start", "deposit:1", "deposit:10", "stop:111"])
        assert.strictEqual(statsOf(ref).status, "stopped")
        assert.strictEqual(codeOf(yield* Effect.flip(account.balance({}))), "not_found")
      }),
    ),
  )

  it.live("a failing onStart fails the spawn and frees the name", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { server } = yield* pair
        let stopped = false
        const failing = Actor.make(Account, {
          initialState: { balance: 0, rejected: 0 } as AccountState,
          onStart: () => Effect.fail("no database" as const),
          onStop: () => Effect.sync(() => (stopped = true)),
          handlers: AccountActor.handlers,
        })
        assert.strictEqual(yield* Effect.flip(Actor.spawnOn(server, failing, "doomed")), "no database")
        assert.isFalse(stopped)
        const ref = yield* Actor.spawnOn(server, AccountActor, "doomed")
        assert.strictEqual(ref.name, "doomed")
      }),
    ),
  )

  it.live("stop: waiting asks fail not_found, the running one is interrupted, later asks fail fast", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { server, client } = yield* pair
        const { probe, behavior } = yield* makeProbe()
        const ref = yield* Actor.spawnOn(server, behavior, "stoppable")
        const calls = ActorRef.ask(client, ref)
        const running = yield* Effect.forkChild(calls.block({ seq: 0 }))
        yield* waitUntil("the first message to run", () => probe.blocked === 1)
        const waiting = yield* Effect.forkChild(calls.work({ seq: 1, ms: 0 }))
        yield* waitUntil("a message to wait", () => statsOf(ref).mailbox === 1)
        yield* Actor.stop(ref)
        assert.strictEqual(probe.interrupted, 1)
        assert.strictEqual(codeOf(yield* Effect.flip(Fiber.join(running))), "cancelled")
        assert.strictEqual(codeOf(yield* Effect.flip(Fiber.join(waiting))), "not_found")
        const started = Date.now()
        assert.strictEqual(codeOf(yield* Effect.flip(calls.log({}))), "not_found")
        assert.isBelow(Date.now() - started, 1000)
        yield* Actor.stop(ref)
        assert.deepStrictEqual(probe.log, [0])
      }),
    ),
  )

  it.live("an actor can stop itself from its handler; the reply still goes out", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { server, client } = yield* pair
        const ref = yield* Actor.spawnOn(server, AccountActor, "quitter")
        const account = ActorRef.ask(client, ref)
        assert.strictEqual(yield* account.stopSelf({}), "stopping")
        yield* waitUntil("the actor to stop", () => statsOf(ref).status === "stopped")
        assert.strictEqual(codeOf(yield* Effect.flip(account.balance({}))), "not_found")
      }),
    ),
  )

  it.live("cancelling an ask skips it while it waits and interrupts it while it runs", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { server, client } = yield* pair
        const { probe, behavior } = yield* makeProbe()
        const ref = yield* Actor.spawnOn(server, behavior, "cancellable")
        const calls = ActorRef.ask(client, ref)
        const running = yield* Effect.forkChild(calls.block({ seq: 0 }))
        yield* waitUntil("the first message to run", () => probe.blocked === 1)
        const skipped = yield* Effect.forkChild(calls.work({ seq: 99, ms: 0 }))
        yield* waitUntil("a message to wait", () => statsOf(ref).mailbox === 1)
        yield* Fiber.interrupt(skipped)
        yield* waitUntil("the cancel to reach the actor", () => statsOf(ref).mailbox === 0)
        yield* Fiber.interrupt(running)
        yield* waitUntil("the running handler to be interrupted", () => probe.interrupted === 1)
        // The actor goes on: the next message runs, and the skipped one never did.
        assert.strictEqual(yield* calls.work({ seq: 1, ms: 0 }), 1)
        assert.deepStrictEqual(yield* calls.log({}), [0, 1])
        assert.strictEqual(probe.maxActive, 1)
      }),
    ),
  )

  it.live("typed errors travel back and commit their state; defects answer internal and keep the old state", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { server, client } = yield* pair
        const ref = yield* Actor.spawnOn(server, AccountActor, "account-3")
        const account = ActorRef.ask(client, ref)
        yield* account.deposit({ amount: 5 })
        const error = yield* Effect.flip(account.withdraw({ amount: 8 }))
        assert.instanceOf(error, Insufficient)
        assert.deepStrictEqual(
          { balance: (error as Insufficient).balance, wanted: (error as Insufficient).wanted },
          {
            balance: 5,
            wanted: 8,
          },
        )
        assert.strictEqual(yield* account.rejected({}), 1)
        const defect = yield* Effect.flip(account.crash({}))
        assert.strictEqual(codeOf(defect), "internal")
        assert.include((defect as RpcError).message, "boom")
        assert.strictEqual(yield* account.balance({}), 5)
        assert.strictEqual(yield* account.rejected({}), 1)
        const stats = statsOf(ref)
        assert.strictEqual(stats.failed, 1)
        assert.strictEqual(stats.defects, 1)
        assert.strictEqual(stats.status, "running")
      }),
    ),
  )

  it.live("a ref sent in a message through a third node is used there to reply", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const Collector = Contract.make("Collector", {
          result: Contract.unary({ payload: Schema.Struct({ value: Schema.Number }) }),
          results: Contract.unary({ payload: Empty, success: Schema.Array(Schema.Number) }),
        })
        const Directory = Contract.make("Directory", {
          collector: Contract.unary({ payload: Empty, success: ActorRef.schema(Collector) }),
        })
        const Squarer = Contract.make("Squarer", {
          square: Contract.unary({
            payload: Schema.Struct({ n: Schema.Number, replyTo: ActorRef.schema(Collector) }),
          }),
        })
        const collectorBehavior = Actor.make(Collector, {
          initialState: [] as ReadonlyArray<number>,
          handlers: {
            result: ({ value }, ctx) => Effect.sync(() => ctx.setState([...ctx.state, value])),
            results: (_, ctx) => Effect.succeed(ctx.state),
          },
        })
        const squarerBehavior = Actor.make(Squarer, {
          initialState: null,
          handlers: {
            square: ({ n, replyTo }, ctx) => ctx.tell(replyTo).result({ value: n * n }),
          },
        })
        const nodeA = yield* zmqNode({ id: "a" })
        const nodeB = yield* zmqNode({ id: "b" })
        const nodeC = yield* zmqNode({ id: "c" })
        const collector = yield* Actor.spawnOn(nodeA, collectorBehavior, "collector")
        const directory = yield* Actor.spawnOn(
          nodeA,
          Actor.make(Directory, {
            initialState: collector,
            handlers: { collector: (_, ctx) => Effect.succeed(ctx.state) },
          }),
          "directory",
        )
        const squarer = yield* Actor.spawnOn(nodeB, squarerBehavior, "squarer")
        // C learns the collector's ref from A (decoded on C), then hands it to B's actor (decoded again on B).
        const received = yield* ActorRef.ask(nodeC, directory).collector({})
        assert.isTrue(ActorRef.isActorRef(received))
        assert.notStrictEqual(received, collector)
        assert.isTrue(ActorRef.equals(received, collector))
        assert.deepStrictEqual(ActorRef.encode(received), ActorRef.encode(collector))
        assert.strictEqual(received[ActorRef.ContractKey], Collector)
        yield* ActorRef.ask(nodeC, squarer).square({ n: 7, replyTo: received })
        const results = ActorRef.ask(nodeC, received)
        let seen: ReadonlyArray<number> = []
        const until = Date.now() + 3000
        while (seen.length === 0 && Date.now() < until) {
          seen = yield* results.results({})
          if (seen.length === 0) yield* Effect.sleep(5)
        }
        assert.deepStrictEqual(seen, [49])
      }),
    ),
  )

  it.effect("refs encode to plain JSON-safe data and decode only for their contract", () =>
    Effect.sync(() => {
      const ref = ActorRef.make(Account, { name: "acc", node: "n1", endpoints: ["tcp://127.0.0.1:5555"] })
      const Payload = Schema.Struct({ replyTo: ActorRef.schema(Account) })
      const codec = Schema.toCodecJson(Payload)
      const encoded = Schema.encodeSync(codec)({ replyTo: ref }) as unknown as {
        readonly replyTo: ActorRef.ActorRefEncoded
      }
      assert.deepStrictEqual(JSON.parse(JSON.stringify(encoded)), {
        replyTo: {
          _tag: "ActorRef",
          name: "acc",
          node: "n1",
          endpoints: ["tcp://127.0.0.1:5555"],
          contract: "Account",
        },
      })
      const decoded = Schema.decodeUnknownSync(codec)(JSON.parse(JSON.stringify(encoded)))
      assert.isTrue(ActorRef.equals(decoded.replyTo, ref))
      assert.strictEqual(decoded.replyTo[ActorRef.ContractKey], Account)
      assert.deepStrictEqual(ActorRef.encode(decoded.replyTo), encoded.replyTo)
      const other = { replyTo: { ...encoded.replyTo, contract: "Probe" } }
      assert.throws(() => Schema.decodeUnknownSync(codec)(other))
      assert.strictEqual(ActorRef.schema(Account), ActorRef.schema(Account))
    }),
  )

  it.live("names are validated and unique per node; a stopped actor's name can be reused", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { server } = yield* pair
        assert.strictEqual(
          codeOf(yield* Effect.flip(Actor.spawnOn(server, AccountActor, "bad/name"))),
          "invalid_argument",
        )
        assert.strictEqual(codeOf(yield* Effect.flip(Actor.spawnOn(server, AccountActor, ""))), "invalid_argument")
        const ref = yield* Actor.spawnOn(server, AccountActor, "unique")
        assert.strictEqual(
          codeOf(yield* Effect.flip(Actor.spawnOn(server, AccountActor, "unique"))),
          "invalid_argument",
        )
        yield* Actor.stop(ref)
        const again = yield* Actor.spawnOn(server, AccountActor, "unique")
        assert.strictEqual(statsOf(again).status, "running")
        assert.strictEqual(statsOf(ref).status, "stopped")
      }),
    ),
  )
})

// ---- type-level checks (compiled by tsc, never run) --------------------------------------------------------------

class Db extends Context.Service<Db, { readonly get: Effect.Effect<number> }>()("test/Db") {}
class Log extends Context.Service<Log, { readonly put: (s: string) => Effect.Effect<void> }>()("test/Log") {}

export const typeChecks = (node: Node.NodeShape) => {
  const C = Contract.make("C", {
    a: Contract.unary({ payload: Schema.Struct({ x: Schema.Number }), success: Schema.Number }),
    b: Contract.unary({ payload: Empty, success: Schema.String }),
  })
  // The services a behaviour needs are the union of its handlers' and surface in spawn's requirements.
  const behavior = Actor.make(C, {
    initialState: { n: 0 },
    handlers: {
      a: ({ x }, ctx) => Db.use((db) => Effect.map(db.get, (v) => v + x + ctx.state.n)),
      b: (_, ctx) => Log.use((log) => Effect.as(log.put("x"), String(ctx.state.n))),
    },
  })
  const spawned: Effect.Effect<ActorRef.ActorRef<typeof C>, RpcError, Scope.Scope | Db | Log> = Actor.spawnOn(
    node,
    behavior,
    "x",
  )
  // @ts-expect-error a requirement cannot be dropped
  const dropped: Effect.Effect<ActorRef.ActorRef<typeof C>, RpcError, Scope.Scope | Db> = spawned
  Actor.make(C, {
    initialState: 0,
    handlers: {
      // @ts-expect-error the success type is the contract's
      a: () => Effect.succeed("no"),
      b: () => Effect.succeed("ok"),
    },
  })
  // @ts-expect-error every method needs a handler
  Actor.make(C, { initialState: 0, handlers: { a: () => Effect.succeed(1) } })
  Actor.make(C, {
    initialState: 0,
    handlers: {
      a: (_, ctx) =>
        Effect.sync(() => {
          // @ts-expect-error the state keeps its type
          ctx.setState("s")
          return 1
        }),
      b: () => Effect.succeed("ok"),
    },
  })
  return [spawned, dropped]
}
