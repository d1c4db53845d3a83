import { assert, describe, it } from "@effect/vitest"
import * as Harness from "@zactor/transport/testing/harness"
import { Effect, Fiber, Ref } from "effect"
import { afterAll, afterEach, beforeAll } from "vitest"
import * as EtcdDiscovery from "../src/EtcdDiscovery.ts"
import { type EtcdServer, etcdAvailable, startEtcd } from "./etcdServer.ts"
import { Greeter, nodeWith, stateOf } from "./fixtures.ts"

const fixture = new URL("./fixtures/discovery-node.ts", import.meta.url).pathname

if (!etcdAvailable) console.warn("etcd integration tests skipped: no `etcd` binary (apt-get install -y etcd-server)")

let etcd: EtcdServer
beforeAll(async () => {
  if (etcdAvailable) etcd = await startEtcd()
})
afterAll(async () => {
  await etcd?.dispose()
})
afterEach(() => Harness.stopAll())

describe.skipIf(!etcdAvailable)("etcd discovery across processes (real etcd on 127.0.0.1)", () => {
  it.live(
    "three nodes register; kill -9 one: its entry expires with the lease and calls stop going there",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const options = { endpoints: [etcd.endpoint], cluster: "kill", leaseTtl: 2000, retryInterval: 100 }
          const env = {
            ZACTOR_TEST_DISCOVERY: "etcd",
            ZACTOR_ETCD_ENDPOINTS: etcd.endpoint,
            ZACTOR_ETCD_CLUSTER: options.cluster,
            ZACTOR_ETCD_LEASE_TTL_MS: "2000",
            ZACTOR_TEST_SERVE: "1",
          }
          const servers = yield* Effect.promise(() =>
            Promise.all(["e1", "e2", "e3"].map((id) => Harness.start(fixture, { args: [id], env }))),
          )
          const registry = yield* EtcdDiscovery.make(options)
          const client = yield* nodeWith(registry, { id: "client" })
          yield* Effect.promise(() =>
            Harness.waitUntil(
              () => ["e1", "e2", "e3"].every((id) => stateOf(client, id) === "alive"),
              10_000,
              "three alive",
            ),
          )
          const spread = yield* Effect.all(
            Array.from({ length: 30 }, () => client.client(Greeter).whoami({})),
            { concurrency: 6 },
          )
          assert.deepStrictEqual([...new Set(spread)].sort(), ["e1", "e2", "e3"])

          const killedAt = Date.now()
          yield* Effect.promise(() => servers[0]!.kill())
          // The connection drops at once (TCP reset), so calls stop going there before the lease expires.
          yield* Effect.promise(() =>
            Harness.waitUntil(() => stateOf(client, "e1") === "unreachable", 2000, "e1 unreachable"),
          )
          const during = yield* Effect.all(
            Array.from({ length: 12 }, () => client.client(Greeter).whoami({})),
            { concurrency: 4 },
          )
          assert.notInclude(during, "e1")
          // The registry entry goes with the lease: TTL 2 s after the last keepalive (sent every TTL/3).
          yield* Effect.promise(() =>
            Harness.waitUntil(
              async () => !(await Effect.runPromise(registry.members)).some((m) => m.nodeId === "e1"),
              6000,
              "e1's lease to expire",
            ),
          )
          const expired = Date.now() - killedAt
          assert.isAtLeast(expired, 1000)
          assert.isBelow(expired, 3500)
          assert.strictEqual(stateOf(client, "e1"), "absent")
        }),
      ),
    60_000,
  )

  it.live(
    "etcd restarts during a run: calls continue, registrations come back, watches resume",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const options = { endpoints: [etcd.endpoint], cluster: "restart", leaseTtl: 2000, retryInterval: 100 }
          const env = {
            ZACTOR_TEST_DISCOVERY: "etcd",
            ZACTOR_ETCD_ENDPOINTS: etcd.endpoint,
            ZACTOR_ETCD_CLUSTER: options.cluster,
            ZACTOR_ETCD_LEASE_TTL_MS: "2000",
            ZACTOR_TEST_SERVE: "1",
          }
          yield* Effect.promise(() =>
            Promise.all(["r1", "r2", "r3"].map((id) => Harness.start(fixture, { args: [id], env }))),
          )
          const registry = yield* EtcdDiscovery.make(options)
          const client = yield* nodeWith(registry, { id: "client" })
          const alive = (ids: ReadonlyArray<string>) => () => ids.every((id) => stateOf(client, id) === "alive")
          yield* Effect.promise(() => Harness.waitUntil(alive(["r1", "r2", "r3"]), 10_000, "three alive"))

          // Calls run all along, through the outage.
          const outcomes = yield* Ref.make({ ok: 0, failed: 0 })
          const caller = yield* Effect.forever(
            client
              .client(Greeter)
              .whoami({})
              .pipe(
                Effect.matchEffect({
                  onSuccess: () => Ref.update(outcomes, (o) => ({ ...o, ok: o.ok + 1 })),
                  onFailure: () => Ref.update(outcomes, (o) => ({ ...o, failed: o.failed + 1 })),
                }),
              ),
          ).pipe(Effect.forkChild)

          yield* Effect.promise(() => etcd.kill())
          yield* Effect.sleep(2500) // longer than the lease TTL
          const whileDown = yield* Ref.get(outcomes)
          assert.isAbove(whileDown.ok, 50)
          assert.isTrue(alive(["r1", "r2", "r3"])())
          yield* Effect.promise(() => etcd.restart())

          // Registrations are there again (kept or re-established) and the client's watch resumed: a node
          // started after the restart is seen and called.
          yield* Effect.promise(() =>
            Harness.waitUntil(
              async () => (await Effect.runPromise(registry.members)).length === 4,
              10_000,
              "r1-r3 and the client registered again",
            ),
          )
          yield* Effect.promise(() => Harness.start(fixture, { args: ["r4"], env }))
          yield* Effect.promise(() => Harness.waitUntil(alive(["r1", "r2", "r3", "r4"]), 10_000, "r4 alive"))
          yield* Fiber.interrupt(caller)
          const total = yield* Ref.get(outcomes)
          assert.strictEqual(total.failed, 0)
          assert.isAbove(total.ok, whileDown.ok)
        }),
      ),
    60_000,
  )
})
