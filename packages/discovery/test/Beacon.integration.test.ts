import { assert, describe, it } from "@effect/vitest"
import * as Harness from "@zactor/transport/testing/harness"
import { Effect } from "effect"
import { afterEach } from "vitest"
import * as BeaconDiscovery from "../src/BeaconDiscovery.ts"
import { loopbackBeacon } from "./beaconHelpers.ts"
import { Greeter, nodeWith, stateOf } from "./fixtures.ts"

const fixture = new URL("./fixtures/discovery-node.ts", import.meta.url).pathname

afterEach(() => Harness.stopAll())

describe("beacon discovery across processes on one host", () => {
  it.live(
    "processes find each other; a SIGKILLed one disappears within the bound and reappears on restart",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          // Loopback broadcast: beacons never leave this machine. Default interval (250 ms) and expiry (1250 ms).
          const options = loopbackBeacon({ interval: undefined, expiry: undefined })
          const env = {
            ZACTOR_BEACON_ADDRESS: options.address!,
            ZACTOR_BEACON_PORT: String(options.port),
            ZACTOR_BEACON_CLUSTER: options.cluster!,
            ZACTOR_TEST_SERVE: "1",
          }
          const start = (id: string) => Harness.start(fixture, { args: [id], env })
          const servers = yield* Effect.promise(() => Promise.all(["s1", "s2", "s3"].map(start)))
          const client = yield* nodeWith(yield* BeaconDiscovery.make(options), { id: "client" })
          const allAlive = () => ["s1", "s2", "s3"].every((id) => stateOf(client, id) === "alive")
          const found = yield* Effect.promise(() => Harness.waitUntil(allAlive, 5000, "all three alive", 5))
          assert.isBelow(found, 1000)
          // Calls by service name, no endpoint configured, spread over the three.
          const answers = yield* Effect.all(
            Array.from({ length: 30 }, () => client.client(Greeter).whoami({})),
            { concurrency: 6 },
          )
          assert.deepStrictEqual([...new Set(answers)].sort(), ["s1", "s2", "s3"])
          // The processes see each other too, not just the client.
          const s1 = servers[0]!
          s1.send({ type: "members" })
          const view = yield* Effect.promise(() => s1.waitForMessage((m) => m.type === "members", 5000))
          assert.includeMembers(
            (view.members as Array<{ nodeId: string }>).map((m) => m.nodeId),
            ["s2", "s3"],
          )

          // Crash: the registry entry goes after the expiry (1250 ms) plus at most one sweep interval.
          const killedAt = Date.now()
          yield* Effect.promise(() => servers[1]!.kill())
          yield* Effect.promise(() =>
            Harness.waitUntil(() => stateOf(client, "s2") === "absent", 5000, "s2 to disappear", 5),
          )
          const gone = Date.now() - killedAt
          assert.isAtLeast(gone, 900)
          assert.isBelow(gone, 1250 + 300 + 250)
          const after = yield* Effect.all(
            Array.from({ length: 12 }, () => client.client(Greeter).whoami({})),
            { concurrency: 4 },
          )
          assert.notInclude(after, "s2")

          // Restart: back within about one round trip of its first beacon.
          const restartedAt = Date.now()
          yield* Effect.promise(() => start("s2"))
          yield* Effect.promise(() =>
            Harness.waitUntil(() => stateOf(client, "s2") === "alive", 5000, "s2 to reappear", 5),
          )
          assert.isBelow(Date.now() - restartedAt, 5000)

          // Graceful stop: the goodbye removes it at once, well before any expiry.
          const stoppedAt = Date.now()
          yield* Effect.promise(() => servers[2]!.stop())
          yield* Effect.promise(() =>
            Harness.waitUntil(() => stateOf(client, "s3") === "absent", 5000, "s3 to leave", 5),
          )
          assert.isBelow(Date.now() - stoppedAt, 900)
        }),
      ),
    60_000,
  )
})
