// Draining a node before it stops (NodeShape.drain), over real ZeroMQ sockets on loopback: its callers hear of it
// and route new calls to other instances, the calls it serves finish, and what still reaches it is refused
// `unavailable`, except duplicates of keyed calls it already answered (sent elsewhere, they could run twice).
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import * as Admin from "../src/Admin.ts"
import type * as Node from "../src/Node.ts"
import { RpcError } from "../src/RpcError.ts"
import { Calculator, waitFor, zmqNode } from "./fixtures.ts"

/** A Calculator instance answering `sleep` with its node id, so a caller sees which instance served it. */
const instance = (id: string) =>
  Effect.gen(function* () {
    const node = yield* zmqNode({ id })
    yield* node.serve(Calculator, {
      add: ({ a, b }) => Effect.succeed(a + b),
      divide: ({ a, b }) => Effect.succeed(a / b),
      sleep: ({ ms }) => Effect.as(Effect.sleep(ms), id),
    })
    return node
  })

const remoteAt = (caller: Node.NodeShape, endpoint: string) => caller.remotes().find((r) => r.endpoint === endpoint)

describe("draining a node", () => {
  it.live(
    "callers stop routing to a draining node, its calls in flight finish, late calls are refused unavailable",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const [a, b] = [yield* instance("a"), yield* instance("b")]
          const caller = yield* zmqNode({ id: "caller" })
          const endpointA = a.endpoints()[0]!
          yield* caller.connect(endpointA)
          yield* caller.connect(b.endpoints()[0]!)
          const onA = caller.client(Calculator, { endpoint: endpointA })
          // A keyed call answered by `a` before the drain: its duplicates must still get the stored answer.
          assert.strictEqual(yield* onA.divide({ a: 6, b: 3 }, { idempotencyKey: "k-1" }), 2)
          // A slow call in flight on `a` when the drain starts.
          const slow = yield* Effect.forkChild(onA.sleep({ ms: 600 }))
          yield* waitFor(() => a.metrics().requestsServed === 2, 2000, "the slow call to reach a")

          const drained = yield* Effect.forkChild(a.drain({ timeout: "5 seconds" }))
          yield* waitFor(() => remoteAt(caller, endpointA)?.info?.draining === true, 2000, "the caller to hear")

          // New calls by service name (not safe to repeat: a refusal would fail them) all go to `b`, even 20 at
          // once (least outstanding would otherwise spread them over both).
          const served = yield* Effect.forEach(
            Array.from({ length: 20 }),
            () => caller.client(Calculator).sleep({ ms: 20 }),
            { concurrency: "unbounded" },
          )
          assert.deepStrictEqual(new Set(served), new Set(["b"]))
          // A call sent to `a` by endpoint regardless is refused at once, retryable, naming the drain.
          const refused = yield* Effect.flip(onA.sleep({ ms: 1 }))
          assert.isTrue(RpcError.is(refused) && refused.code === "unavailable", String(refused))
          assert.include((refused as RpcError).message, "draining")
          // A duplicate of a keyed call `a` answered gets its stored answer, not a refusal.
          assert.strictEqual(yield* onA.divide({ a: 6, b: 3 }, { idempotencyKey: "k-1" }), 2)
          // Operators can still look in: the admin service answers.
          const admin = caller.client(Admin.Admin, { endpoint: endpointA })
          assert.strictEqual((yield* admin.describe({})).node, "a")

          // The call in flight finished on `a`; the drain ended once it had, with nothing left running.
          assert.strictEqual(yield* Fiber.join(slow), "a")
          assert.strictEqual(yield* Fiber.join(drained), 0)
          // Handlers run on `a`: divide, the slow sleep, describe; the duplicate came from the store.
          assert.strictEqual(a.metrics().requestsServed, 3)
          assert.strictEqual(a.metrics().deduplicated, 1)
        }),
      ),
    20_000,
  )

  it.live("a drain that outlasts its timeout reports the calls still running", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const a = yield* instance("a")
        const caller = yield* zmqNode({ id: "caller" })
        yield* caller.connect(a.endpoints()[0]!)
        const pending = yield* Effect.forkChild(caller.client(Calculator).sleep({ ms: 2000 }))
        yield* waitFor(() => a.metrics().requestsServed === 1, 2000, "the call to reach a")
        const startedAt = Date.now()
        assert.strictEqual(yield* a.drain({ timeout: "200 millis" }), 1)
        assert.isBelow(Date.now() - startedAt, 1000)
        // Draining again (already draining) waits the same way, and does not announce twice.
        assert.strictEqual(yield* a.drain({ timeout: 0 }), 1)
        yield* Fiber.interrupt(pending)
      }),
    ),
  )
})
