import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Result, Schema } from "effect"
import * as Contract from "../src/Contract.ts"
import * as Envelope from "../src/Envelope.ts"
import { RpcError } from "../src/RpcError.ts"
import { Calculator, DivisionByZero, zmqNode } from "./fixtures.ts"

/** A server node serving Calculator and a client node connected to it. */
const pair = Effect.gen(function* () {
  const server = yield* zmqNode({ id: "server" })
  const started: Array<string> = []
  const interrupted: Array<string> = []
  yield* server.serve(Calculator, {
    add: ({ a, b }) => Effect.succeed(a + b),
    divide: ({ a, b }) => (b === 0 ? Effect.fail(new DivisionByZero({ dividend: a })) : Effect.succeed(a / b)),
    sleep: ({ ms }, context) =>
      Effect.sleep(ms).pipe(
        Effect.as(`slept ${ms}`),
        Effect.onInterrupt(() => Effect.sync(() => interrupted.push(context.method))),
        Effect.tap(() => Effect.sync(() => started.push(context.method))),
      ),
  })
  const client = yield* zmqNode({ id: "client" })
  const remote = yield* client.connect(server.endpoints()[0]!)
  return { server, client, remote, interrupted, calculator: client.client(Calculator) }
})

describe("Node RPC over ZeroMQ", () => {
  it.live("greets peers and calls by service name", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { remote, calculator, server } = yield* pair
        assert.strictEqual(remote.info?.id, "server")
        assert.deepStrictEqual(remote.info?.services, ["Calculator"])
        assert.strictEqual(yield* calculator.add({ a: 2, b: 3 }), 5)
        const many = yield* Effect.all(
          Array.from({ length: 500 }, (_, i) => calculator.add({ a: i, b: 1 })),
          { concurrency: "unbounded" },
        )
        assert.deepStrictEqual(
          many,
          Array.from({ length: 500 }, (_, i) => i + 1),
        )
        assert.strictEqual(server.metrics().requestsServed, 501)
      }),
    ),
  )

  it.live("application errors travel back as themselves", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { calculator } = yield* pair
        const error = yield* Effect.flip(calculator.divide({ a: 7, b: 0 }))
        assert.instanceOf(error, DivisionByZero)
        assert.strictEqual((error as DivisionByZero).dividend, 7)
      }),
    ),
  )

  it.live("unknown services and methods get not_found at once, not a timeout", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { client, server } = yield* pair
        const { Calculator: _, ...rest } = { Calculator: 1 }
        void rest
        const Other = (yield* Effect.promise(() => import("./fixtures.ts"))).Calculator
        const renamed = { ...Other, name: "Nope" }
        const started = Date.now()
        const error = yield* Effect.flip(
          client.client(renamed, { endpoint: server.endpoints()[0]! }).add({ a: 1, b: 1 }),
        )
        assert.isTrue(RpcError.is(error))
        assert.strictEqual((error as RpcError).code, "not_found")
        assert.isBelow(Date.now() - started, 1000)
      }),
    ),
  )

  it.live("payloads are validated on both ends, naming the method and field", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { calculator } = yield* pair
        const error = yield* Effect.flip(calculator.add({ a: 1, b: "x" as unknown as number }))
        assert.strictEqual((error as RpcError).code, "invalid_argument")
        assert.deepStrictEqual((error as RpcError).path, ["b"])
        assert.include((error as RpcError).message, "Calculator/add")
      }),
    ),
  )

  it.live("the deadline is carried on the wire and enforced on both sides", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { calculator, interrupted, server } = yield* pair
        const error = yield* Effect.flip(calculator.sleep({ ms: 2000 }, { timeout: 100 }))
        assert.strictEqual((error as RpcError).code, "deadline_exceeded")
        yield* Effect.promise(async () => {
          const until = Date.now() + 2000
          while (interrupted.length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 5))
        })
        assert.deepStrictEqual(interrupted, ["Calculator/sleep"])
        assert.isAtLeast(server.metrics().requestsExpired + server.metrics().requestsCancelled, 1)
      }),
    ),
  )

  it.live("a server whose handlers wait answers concurrent calls in few messages, not one each", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { server, calculator } = yield* pair
        yield* calculator.add({ a: 1, b: 1 })
        const before = server.transport.metrics()
        // 64 handlers each waiting on a timer: they finish in separate timer callbacks.
        const answers = yield* Effect.all(
          Array.from({ length: 64 }, () => calculator.sleep({ ms: 20 })),
          { concurrency: "unbounded" },
        )
        assert.strictEqual(answers.length, 64)
        const after = server.transport.metrics()
        const replies = after.messagesSent - before.messagesSent
        const messages = after.batchesSent - before.batchesSent
        assert.isAtLeast(replies, 64)
        // One ZeroMQ message per answer before answers waited for each other (TransportShape.offer's `more`).
        assert.isAtMost(messages, 8, `${replies} answers left in ${messages} messages`)
      }),
    ),
  )

  it.live("interrupting the caller cancels the callee's handler", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { calculator, interrupted, server } = yield* pair
        const fiber = yield* Effect.forkChild(calculator.sleep({ ms: 5000 }))
        yield* Effect.sleep(100)
        yield* Fiber.interrupt(fiber)
        yield* Effect.promise(async () => {
          const until = Date.now() + 2000
          while (interrupted.length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 5))
        })
        assert.deepStrictEqual(interrupted, ["Calculator/sleep"])
        assert.strictEqual(server.metrics().requestsCancelled, 1)
      }),
    ),
  )

  it.live("malformed envelopes are counted and answered when possible; the node keeps serving", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { client, server, calculator } = yield* pair
        const transport = client.transport
        const peer = yield* transport.connect(server.endpoints()[0]!)
        yield* transport.send(peer.id, Uint8Array.from([0xc1]))
        yield* transport.send(
          peer.id,
          Envelope.encode([1, 99 as 2, 5, "x", null, 1000, null] as unknown as Envelope.Envelope),
        )
        yield* transport.send(
          peer.id,
          Envelope.encode([7, 2, 9, "Calculator/add", {}, 1000, null] as unknown as Envelope.Envelope),
        )
        yield* Effect.promise(async () => {
          const until = Date.now() + 2000
          while (server.metrics().malformed < 3 && Date.now() < until) await new Promise((r) => setTimeout(r, 5))
        })
        assert.strictEqual(server.metrics().malformed, 3)
        assert.strictEqual(yield* calculator.add({ a: 1, b: 2 }), 3)
      }),
    ),
  )

  it.live("received bytes kept by the handler and the caller stay intact while later calls arrive", () =>
    Effect.scoped(
      Effect.gen(function* () {
        // Larger than 64 bytes, so decoded as views of the frames they came in: no frame may be reused.
        const Store = Contract.make("Store", {
          put: Contract.unary({ payload: Schema.Uint8Array, success: Schema.Uint8Array }),
        })
        const kept: Array<Uint8Array> = []
        const server = yield* zmqNode({ id: "store" })
        yield* server.serve(Store, {
          put: (bytes) =>
            Effect.sync(() => {
              kept.push(bytes)
              return bytes.map((b) => b ^ 0xff)
            }),
        })
        const client = yield* zmqNode({ id: "store-client" })
        yield* client.connect(server.endpoints()[0]!)
        const store = client.client(Store)
        const pattern = (i: number) => Uint8Array.from({ length: 1000 + (i % 7) * 300 }, (_, j) => (i * 31 + j) & 0xff)
        const answers: Array<Uint8Array> = []
        for (let round = 0; round < 4; round++) {
          const batch = yield* Effect.all(
            Array.from({ length: 100 }, (_, i) => store.put(pattern(round * 100 + i))),
            { concurrency: "unbounded" },
          )
          answers.push(...batch)
        }
        assert.strictEqual(kept.length, 400)
        const key = (bytes: Uint8Array) => bytes.join()
        assert.deepStrictEqual(kept.map(key).sort(), Array.from({ length: 400 }, (_, i) => key(pattern(i))).sort())
        answers.forEach((answer, i) => {
          assert.deepStrictEqual([...answer], [...pattern(i).map((b) => b ^ 0xff)], `answer ${i}`)
        })
      }),
    ),
  )

  it.live("a body nested too deeply fails invalid_argument at once, on either side: no timeout, no defect", () =>
    Effect.scoped(
      Effect.gen(function* () {
        interface Tree {
          readonly children: ReadonlyArray<Tree>
        }
        const Tree: Schema.Codec<Tree> = Schema.Struct({
          children: Schema.Array(Schema.suspend((): Schema.Codec<Tree> => Tree)),
        })
        const Trees = Contract.make("Trees", { depth: Contract.unary({ payload: Tree, success: Schema.Number }) })
        const depthOf = (tree: Tree): number => 1 + Math.max(0, ...tree.children.map(depthOf))
        const nested = (levels: number): Tree => {
          let tree: Tree = { children: [] }
          for (let i = 1; i < levels; i++) tree = { children: [tree] }
          return tree
        }
        const server = yield* zmqNode({ id: "trees" })
        yield* server.serve(Trees, { depth: (tree) => Effect.succeed(depthOf(tree)) })
        const client = yield* zmqNode({ id: "planter" })
        yield* client.connect(server.endpoints()[0]!)
        const trees = client.client(Trees)
        assert.strictEqual(yield* trees.depth(nested(200)), 200)

        // 300 levels of {children: [...]} are 600 levels of msgpack: the server reads no deeper than 512, and
        // answers the request, whose id it still reads, instead of leaving it to time out (10 s by default).
        let started = Date.now()
        const wire = yield* Effect.flip(trees.depth(nested(300)))
        assert.isBelow(Date.now() - started, 2000)
        assert.instanceOf(wire, RpcError)
        assert.strictEqual((wire as RpcError).code, "invalid_argument")
        assert.include(wire.message, "nested deeper than 512")

        // 5,000 levels overflow the stack of the Schema encoder on the caller: a typed error, not a defect.
        started = Date.now()
        const local = yield* Effect.flip(trees.depth(nested(5000)))
        assert.isBelow(Date.now() - started, 2000)
        assert.instanceOf(local, RpcError)
        assert.strictEqual((local as RpcError).code, "invalid_argument")
        assert.include(local.message, "nested too deeply")

        assert.strictEqual(yield* trees.depth(nested(3)), 3)
        assert.strictEqual(server.metrics().defects, 0)
        assert.strictEqual(client.metrics().defects, 0)
      }),
    ),
  )

  it.live(
    "a codec that throws on one call costs that call alone, on either side: the rest of its batch is served",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const base = Contract.unary({ payload: Schema.String, success: Schema.String })
          // Hand-written codecs (as generated code may bring) with a bug: each throws on one value.
          const buggy = (bad: string): Contract.BodyCodec<string> => ({
            encode: base.payload.encode,
            decode: (wire) => {
              if (wire === bad) throw new Error("codec bug")
              return base.payload.decode(wire)
            },
          })
          // The server's payload codec throws on "boom"; the caller's success codec on "BANG".
          const Shouter = Contract.make("Shouter", {
            shout: { ...base, payload: buggy("boom"), success: buggy("BANG") },
          })
          const server = yield* zmqNode({ id: "shouter" })
          yield* server.serve(Shouter, { shout: (text) => Effect.succeed(text.toUpperCase()) })
          const client = yield* zmqNode({ id: "listener" })
          yield* client.connect(server.endpoints()[0]!)
          const shouter = client.client(Shouter)
          const words = Array.from({ length: 20 }, (_, i) => (i === 5 ? "boom" : i === 9 ? "bang" : `word${i}`))
          const started = Date.now()
          // Issued in one turn: one batch each way, with the bad calls in the middle.
          const results = yield* Effect.all(
            words.map((word) => Effect.result(shouter.shout(word))),
            { concurrency: "unbounded" },
          )
          assert.isBelow(Date.now() - started, 2000, "no call waited for its deadline")
          results.forEach((result, i) => {
            if (i === 5 || i === 9) {
              assert.isTrue(Result.isFailure(result) && result.failure instanceof RpcError, `call ${i}`)
              assert.strictEqual(((result as Result.Failure<string, RpcError>).failure as RpcError).code, "internal")
            } else assert.deepStrictEqual(result, Result.succeed(`WORD${i}`))
          })
          assert.include(
            ((results[9] as Result.Failure<string, RpcError>).failure as RpcError).message,
            "broke its codec: codec bug",
          )
          assert.strictEqual(server.metrics().defects, 1)
          assert.strictEqual(client.metrics().defects, 0)
        }),
      ),
  )
})
