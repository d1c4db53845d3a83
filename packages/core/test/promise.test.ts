// The Promise facade over real ZeroMQ: two nodes in one process, async handlers, AbortSignal, lifecycle, and the
// same flow through the Effect API and the Promise API side by side.

import { assert, describe, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { afterEach } from "vitest"
import * as Contract from "../src/Contract.ts"
import * as Node from "../src/Node.ts"
import { type PromiseNode, type StartOptions, start } from "../src/promise.ts"
import { RpcError } from "../src/RpcError.ts"
import { Calculator, DivisionByZero, zmqNode } from "./fixtures.ts"

const open: Array<PromiseNode> = []
afterEach(async () => {
  await Promise.all(open.splice(0).map((node) => node.close()))
})

/** Starts a node that is closed after the test. */
const started = async (options: StartOptions = {}): Promise<PromiseNode> => {
  const node = await start(options)
  open.push(node)
  return node
}

const waitUntil = async (predicate: () => boolean, deadlineMs = 2000): Promise<void> => {
  const until = Date.now() + deadlineMs
  while (!predicate() && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 5))
}

/** What a promise rejected with (fails the test if it resolved). */
const rejection = async (promise: Promise<unknown>): Promise<unknown> =>
  promise.then(
    (value) => assert.fail(`expected a rejection, got ${JSON.stringify(value)}`),
    (error: unknown) => error,
  )

/** A server serving Calculator with async handlers, and a client connected to it. */
const pair = async () => {
  const server = await started({ id: "server" })
  const aborted: Array<string> = []
  const added: Array<number> = []
  const serving = await server.serve(Calculator, {
    add: async ({ a, b }) => {
      added.push(a + b)
      return a + b
    },
    divide: async ({ a, b }) => {
      if (b === 0) throw new DivisionByZero({ dividend: a })
      return a / b
    },
    sleep: ({ ms }, context) =>
      new Promise((resolve) => {
        const timer = setTimeout(() => resolve(`slept ${ms}`), ms)
        context.signal.addEventListener("abort", () => {
          clearTimeout(timer)
          aborted.push(context.method)
        })
      }),
  })
  const client = await started({ id: "client" })
  const remote = await client.connect(server.endpoints()[0]!)
  return { server, serving, client, remote, aborted, added, calculator: client.client(Calculator) }
}

describe("Promise facade over ZeroMQ", () => {
  it("serves async handlers and calls by service name after connect", async () => {
    const { server, remote, calculator } = await pair()
    assert.strictEqual(remote.info?.id, "server")
    assert.deepStrictEqual(remote.info?.services, ["Calculator"])
    assert.strictEqual(await calculator.add({ a: 2, b: 3 }), 5)
    const many = await Promise.all(Array.from({ length: 200 }, (_, i) => calculator.add({ a: i, b: 1 })))
    assert.deepStrictEqual(
      many,
      Array.from({ length: 200 }, (_, i) => i + 1),
    )
    assert.strictEqual(await calculator.divide({ a: 6, b: 3 }), 2)
    assert.strictEqual(server.metrics().requestsServed, 202)
  })

  it("a declared application error rejects with the contract's error instance", async () => {
    const { calculator } = await pair()
    const error = await rejection(calculator.divide({ a: 7, b: 0 }))
    assert.instanceOf(error, DivisionByZero)
    assert.strictEqual((error as DivisionByZero)._tag, "DivisionByZero")
    assert.strictEqual((error as DivisionByZero).dividend, 7)
  })

  it("a handler throwing an RpcError sends its code; anything undeclared is internal", async () => {
    const Guarded = Contract.make("Guarded", {
      secret: Contract.unary({ payload: Schema.Struct({}), success: Schema.String }),
      broken: Contract.unary({ payload: Schema.Struct({}), success: Schema.String }),
    })
    const { server, client, remote } = await pair()
    await server.serve(Guarded, {
      secret: async () => {
        throw new RpcError({ code: "permission_denied", message: "not for you" })
      },
      broken: async () => {
        throw new Error("boom")
      },
    })
    const guarded = client.client(Guarded, { endpoint: remote.endpoint })
    const denied = await rejection(guarded.secret({}))
    assert.isTrue(RpcError.is(denied))
    assert.strictEqual((denied as RpcError).code, "permission_denied")
    const broken = await rejection(guarded.broken({}))
    assert.strictEqual((broken as RpcError).code, "internal")
    assert.include((broken as RpcError).message, "boom")
  })

  it("framework failures reject with RpcError codes: not_found, invalid_argument", async () => {
    const { client, server, calculator } = await pair()
    const renamed = { ...Calculator, name: "Nope" }
    const notFound = await rejection(client.client(renamed, { endpoint: server.endpoints()[0]! }).add({ a: 1, b: 1 }))
    assert.instanceOf(notFound, RpcError)
    assert.strictEqual((notFound as RpcError).code, "not_found")

    const invalid = await rejection(calculator.add({ a: 1, b: "x" as unknown as number }))
    assert.isTrue(RpcError.is(invalid))
    assert.strictEqual((invalid as RpcError).code, "invalid_argument")
    assert.deepStrictEqual((invalid as RpcError).path, ["b"])
    assert.include((invalid as RpcError).message, "Calculator/add")
  })

  it("aborting the signal rejects with AbortError and cancels the remote handler", async () => {
    const { calculator, client, server, aborted } = await pair()
    const controller = new AbortController()
    const call = calculator.sleep({ ms: 5000 }, { signal: controller.signal })
    await waitUntil(() => server.metrics().requestsServed === 1)
    controller.abort()
    const error = await rejection(call)
    assert.instanceOf(error, DOMException)
    assert.strictEqual((error as DOMException).name, "AbortError")
    // The caller sent CANCEL; the callee interrupted the handler fiber, which aborted the handler's signal.
    await waitUntil(() => server.metrics().requestsCancelled === 1 && aborted.length === 1)
    assert.strictEqual(client.metrics().callsCancelled, 1)
    assert.strictEqual(server.metrics().requestsCancelled, 1)
    assert.deepStrictEqual(aborted, ["Calculator/sleep"])
  })

  it("an already aborted signal rejects at once, sending nothing", async () => {
    const { calculator, client } = await pair()
    const error = await rejection(calculator.add({ a: 1, b: 2 }, { signal: AbortSignal.abort("no longer needed") }))
    assert.strictEqual((error as DOMException).name, "AbortError")
    assert.strictEqual((error as DOMException).cause, "no longer needed")
    assert.strictEqual(client.metrics().callsStarted, 0)
  })

  it("the deadline rejects with deadline_exceeded and aborts the handler's signal", async () => {
    const { calculator, aborted } = await pair()
    const error = await rejection(calculator.sleep({ ms: 5000 }, { timeout: 100 }))
    assert.strictEqual((error as RpcError).code, "deadline_exceeded")
    await waitUntil(() => aborted.length === 1)
    assert.deepStrictEqual(aborted, ["Calculator/sleep"])
  })

  it("tells are one-way: resolved once queued, handled later", async () => {
    const { client, server, added } = await pair()
    await client.teller(Calculator).add({ a: 20, b: 22 })
    await waitUntil(() => added.length === 1)
    assert.deepStrictEqual(added, [42])
    assert.strictEqual(server.metrics().tellsReceived, 1)
  })

  it("stop() stops serving (idempotent); serving a contract twice rejects with the defect", async () => {
    const { server, serving, client } = await pair()
    const missing = await rejection(server.serve(Calculator, {} as never))
    assert.include((missing as Error).message, "has no handler")
    const twice = await rejection(
      server.serve(Calculator, {
        add: async ({ a, b }) => a + b,
        divide: async ({ a, b }) => a / b,
        sleep: async () => "",
      }),
    )
    assert.instanceOf(twice, Error)
    assert.include((twice as Error).message, "already served")
    await serving.stop()
    await serving.stop()
    const error = await rejection(client.client(Calculator, { endpoint: server.endpoints()[0]! }).add({ a: 1, b: 1 }))
    assert.strictEqual((error as RpcError).code, "not_found")
  })

  it("close() is idempotent; calls in flight and after it reject with unavailable", async () => {
    const { client, calculator, serving, server } = await pair()
    // Observe the rejection from the start: it happens during close, before the assertions look at it.
    const inflight = rejection(calculator.sleep({ ms: 5000 }))
    await waitUntil(() => server.metrics().requestsServed === 1)
    await Promise.all([client.close(), client.close()])
    await client.close()
    const during = await inflight
    assert.isTrue(RpcError.is(during))
    assert.strictEqual((during as RpcError).code, "unavailable")
    const after = await rejection(calculator.add({ a: 1, b: 1 }))
    assert.strictEqual((after as RpcError).code, "unavailable")
    assert.strictEqual(((await rejection(client.connect(server.endpoints()[0]!))) as RpcError).code, "unavailable")
    // Stopping a contract of a closed node is a no-op.
    await server.close()
    await serving.stop()
  })

  it("close({ drainTimeoutMs }) lets the calls being served finish, refuses new ones, then closes", async () => {
    const { client, calculator, server } = await pair()
    const inflight = calculator.sleep({ ms: 300 })
    await waitUntil(() => server.metrics().requestsServed === 1)
    const startedAt = Date.now()
    const closing = server.close({ drainTimeoutMs: 5000 })
    await waitUntil(() => client.remotes()[0]?.info?.draining === true)
    // Refused while draining: unavailable, naming the drain, and the handler never runs.
    const refused = await rejection(calculator.add({ a: 1, b: 2 }))
    assert.strictEqual((refused as RpcError).code, "unavailable")
    assert.strictEqual(await inflight, "slept 300")
    await closing
    assert.isBelow(Date.now() - startedAt, 2000)
    assert.strictEqual(server.metrics().requestsServed, 1)
    assert.strictEqual(((await rejection(server.connect(client.endpoints()[0]!))) as RpcError).code, "unavailable")
    // Closing again, drained or not, is a no-op.
    await server.close({ drainTimeoutMs: 5000 })
  })

  it("await using disposes the node", async () => {
    let escaped: PromiseNode | undefined
    {
      await using node = await start()
      escaped = node
      assert.lengthOf(node.endpoints(), 1)
    }
    const error = await rejection(escaped.connect("tcp://127.0.0.1:1"))
    assert.strictEqual((error as RpcError).code, "unavailable")
  })

  it("start rejects with the options error", async () => {
    const error = await rejection(start({ maxConcurrentCalls: 0 }))
    assert.isTrue(RpcError.is(error))
    assert.strictEqual((error as RpcError).code, "invalid_argument")
    assert.include((error as RpcError).message, "maxConcurrentCalls")
  })

  it("streaming methods are AsyncIterables on both sides; breaking out early cancels the producer", async () => {
    const Ticker = Contract.make("Ticker", {
      ticks: Contract.serverStream({ payload: Schema.Struct({ n: Schema.Number }), element: Schema.Number }),
    })
    const { server, client } = await pair()
    await server.serve(Ticker, {
      ticks: async function* ({ n }) {
        for (let i = 0; i < n; i++) yield i
      },
    })
    // By endpoint: a service served after the nodes met is announced to them a moment later.
    const ticker = client.client(Ticker, { endpoint: server.endpoints()[0]! })
    const ticks: Array<number> = []
    for await (const tick of ticker.ticks({ n: 100 })) ticks.push(tick)
    assert.deepStrictEqual(
      ticks,
      Array.from({ length: 100 }, (_, i) => i),
    )
    const first: Array<number> = []
    for await (const tick of ticker.ticks({ n: 1_000_000 })) {
      first.push(tick)
      if (first.length === 3) break
    }
    assert.deepStrictEqual(first, [0, 1, 2])
    await waitUntil(() => server.metrics().requestsCancelled === 1)
  })

  it("the same flow through the Effect API and the Promise API", async () => {
    // Effect API: handlers are Effects, a client method is an Effect, failures are values in the error channel.
    const viaEffect = await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const server = yield* zmqNode({ id: "effect-server" })
          yield* server.serve(Calculator, {
            add: ({ a, b }) => Effect.succeed(a + b),
            divide: ({ a, b }) => (b === 0 ? Effect.fail(new DivisionByZero({ dividend: a })) : Effect.succeed(a / b)),
            sleep: ({ ms }) => Effect.as(Effect.sleep(ms), `slept ${ms}`),
          })
          const client = yield* zmqNode({ id: "effect-client" })
          yield* client.connect(server.endpoints()[0]!)
          const calculator = client.client(Calculator)
          const sum = yield* calculator.add({ a: 2, b: 3 })
          const error = yield* Effect.flip(calculator.divide({ a: 7, b: 0 }))
          return { sum, error }
        }),
      ),
    )

    // Promise API: the same contract, handlers are async functions, a client method returns a Promise.
    const server = await started({ id: "promise-server" })
    await server.serve(Calculator, {
      add: async ({ a, b }) => a + b,
      divide: async ({ a, b }) => {
        if (b === 0) throw new DivisionByZero({ dividend: a })
        return a / b
      },
      sleep: ({ ms }) => new Promise((resolve) => setTimeout(() => resolve(`slept ${ms}`), ms)),
    })
    const client = await started({ id: "promise-client" })
    await client.connect(server.endpoints()[0]!)
    const calculator = client.client(Calculator)
    const sum = await calculator.add({ a: 2, b: 3 })
    const error = await rejection(calculator.divide({ a: 7, b: 0 }))

    assert.strictEqual(sum, viaEffect.sum)
    assert.instanceOf(viaEffect.error, DivisionByZero)
    assert.instanceOf(error, DivisionByZero)
    assert.strictEqual((error as DivisionByZero).dividend, viaEffect.error.dividend)

    // Both at once: Effect code runs on the facade's own runtime, against the same node.
    const viaRuntime = await client.runtime.runPromise(
      Node.Node.use((node) => node.client(Calculator).add({ a: 2, b: 3 })),
    )
    assert.strictEqual(viaRuntime, sum)
  })
})
