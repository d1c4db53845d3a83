import { assert, describe, it } from "@effect/vitest"
import * as Harness from "@zactor/transport/testing/harness"
import { Effect, Stream } from "effect"
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
          const discovery = yield* BeaconDiscovery.make(options)
          const left: Array<string> = []
          yield* Stream.runForEach(discovery.watch, (event) =>
            Effect.sync(() => event._tag === "Left" && left.push(`${event.member.nodeId}:${event.reason}`)),
          ).pipe(Effect.forkScoped)
          const client = yield* nodeWith(discovery, { id: "client" })
          const allAlive = () => ["s1", "s2", "s3"].every((id) => stateOf(client, id) === "alive")
          const found = yield* Effect.promise(() => Harness.waitUntil(allAlive, 5000, "all three alive", 5))
          assert.isBelow(found, 1500)
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

          // Crash: the entry goes between expiry - 1.1 x interval and expiry + 1.1 x interval (0.98-1.53 s, see
          // docs/DISCOVERY.md); the upper check allows 0.7 s of scheduling delay on a loaded 2-core machine.
          const killedAt = Date.now()
          yield* Effect.promise(() => servers[1]!.kill())
          yield* Effect.promise(() =>
            Harness.waitUntil(() => stateOf(client, "s2") === "absent", 5000, "s2 to disappear", 5),
          )
          const gone = Date.now() - killedAt
          assert.isAtLeast(gone, 975)
          assert.isBelow(gone, 1250 + 275 + 700)
          assert.deepStrictEqual(left, ["s2:Expired"])
          const after = yield* Effect.all(
            Array.from({ length: 12 }, () => client.client(Greeter).whoami({})),
            { concurrency: 4 },
          )
          assert.notInclude(after, "s2")

          // Restart: back as soon as its node is up (its first beacon), not after an interval.
          yield* Effect.promise(() => start("s2"))
          const back = yield* Effect.promise(() =>
            Harness.waitUntil(() => stateOf(client, "s2") === "alive", 5000, "s2 to reappear", 5),
          )
          assert.isBelow(back, 1000)

          // Graceful stop: the goodbye removes it (reason Goodbye, not an expiry).
          yield* Effect.promise(() => servers[2]!.stop())
          yield* Effect.promise(() =>
            Harness.waitUntil(() => stateOf(client, "s3") === "absent", 5000, "s3 to leave", 5),
          )
          assert.deepStrictEqual(left, ["s2:Expired", "s3:Goodbye"])
        }),
      ),
    60_000,
  )
})
