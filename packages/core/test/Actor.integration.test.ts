import { assert, describe, it } from "@effect/vitest"
import * as Harness from "@zactor/transport/testing/harness"
import { Effect } from "effect"
import { afterEach } from "vitest"
import * as ActorRef from "../src/ActorRef.ts"
import { RpcError } from "../src/RpcError.ts"
import { Collector, Directory, Squarer } from "./fixtures/actorContracts.ts"
import { zmqNode } from "./fixtures.ts"

const fixture = new URL("./fixtures/actor-node.ts", import.meta.url).pathname

afterEach(() => Harness.stopAll())

describe("actors across processes", () => {
  it.live("a ref made on one process travels through a second and is used on a third", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const [a, b] = yield* Effect.all(
          [
            Effect.promise(() => Harness.start(fixture, { args: ["a", "collector"] })),
            Effect.promise(() => Harness.start(fixture, { args: ["b", "squarer"] })),
          ],
          { concurrency: 2 },
        )
        const c = yield* zmqNode({ id: "c" })
        const refOn = <C extends Parameters<typeof ActorRef.make>[0]>(
          contract: C,
          name: string,
          p: Harness.FixtureProcess,
        ) => ActorRef.make(contract, { name, node: String(p.ready.node), endpoints: [String(p.ready.endpoint)] })
        // C asks A's directory for the collector's ref: made on A, decoded here on C.
        const collector = yield* ActorRef.ask(c, refOn(Directory, "directory", a)).collector({})
        assert.strictEqual(collector.node, "a")
        // C hands the ref to B's squarer, which decodes it on B and tells A's collector directly.
        for (const n of [3, 4, 5])
          yield* ActorRef.ask(c, refOn(Squarer, "squarer", b)).square({ n, replyTo: collector })
        const results = ActorRef.ask(c, collector)
        yield* Effect.promise(() =>
          Harness.waitUntil(
            async () => (await Effect.runPromise(results.results({}))).length === 3,
            5000,
            "three results at the collector",
            20,
          ),
        )
        assert.deepStrictEqual(yield* results.results({}), [9, 16, 25])
      }),
    ),
  )

  it.live("asks to an actor whose process died fail with unavailable, promptly", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const a = yield* Effect.promise(() => Harness.start(fixture, { args: ["a", "collector"] }))
        const c = yield* zmqNode({ id: "c" })
        const collector = ActorRef.make(Collector, {
          name: "collector",
          node: "a",
          endpoints: [String(a.ready.endpoint)],
        })
        assert.deepStrictEqual(yield* ActorRef.ask(c, collector).results({}), [])
        yield* Effect.promise(() => a.kill())
        const started = Date.now()
        const error = yield* Effect.flip(ActorRef.ask(c, collector).results({}, { timeout: 5000 }))
        assert.isTrue(RpcError.is(error))
        assert.strictEqual((error as RpcError).code, "unavailable")
        assert.isBelow(Date.now() - started, 3000, "well before the 5 s deadline")
      }),
    ),
  )
})
