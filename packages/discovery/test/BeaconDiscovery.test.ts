import { assert, describe, it } from "@effect/vitest"
import type { Discovery } from "@zactor/core"
import { Effect, Stream } from "effect"
import * as BeaconDiscovery from "../src/BeaconDiscovery.ts"
import * as Packet from "../src/internal/beaconPacket.ts"
import { loopbackBeacon, rawSender, record } from "./beaconHelpers.ts"
import { eventually, Greeter, inScope, nodeWith, serveGreeter } from "./fixtures.ts"

const ids = (discovery: Discovery.DiscoveryShape) =>
  Effect.map(discovery.members, (members) => members.map((m) => m.nodeId).sort())

const events = (discovery: Discovery.DiscoveryShape) =>
  Effect.gen(function* () {
    const seen: Array<string> = []
    yield* Stream.runForEach(discovery.watch, (event) =>
      Effect.sync(() =>
        seen.push(
          event._tag === "Left"
            ? `Left:${event.member.nodeId}:${event.reason}`
            : `${event._tag}:${event.member.nodeId}`,
        ),
      ),
    ).pipe(Effect.forkScoped)
    return seen
  })

describe("beacon discovery (loopback)", () => {
  it.live("members find each other at once, and a goodbye removes one at once", () =>
    Effect.scoped(
      Effect.gen(function* () {
        // A long interval: finding each other must not depend on the periodic beacon.
        const options = loopbackBeacon({ interval: 2000, expiry: 10_000 })
        const a = yield* BeaconDiscovery.make(options)
        const seen = yield* events(a)
        yield* a.register(record("a"))
        const b = yield* inScope(
          Effect.flatMap(BeaconDiscovery.make(options), (b) => Effect.as(b.register(record("b")), b)),
        )
        const found = yield* eventually(() => seen.includes("Joined:b"), 1000, "a to see b")
        assert.isBelow(found, 1000)
        // b learnt of a from a's early answer to b's first beacon, not from a's next periodic one (2 s away).
        yield* eventually(() => b.value.stats().members === 2, 1000, "b to see a")
        assert.deepStrictEqual(yield* ids(a), ["a", "b"])
        yield* b.close
        yield* eventually(() => seen.includes("Left:b:Goodbye"), 500, "b's goodbye")
        assert.strictEqual(a.stats().goodbyes, 1)
      }),
    ),
  )

  it.live("a member whose beacons stop is dropped after the expiry", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const options = loopbackBeacon({ interval: 50, expiry: 300 })
        const a = yield* BeaconDiscovery.make(options)
        const seen = yield* events(a)
        const sender = yield* rawSender(options.port!)
        const beacon = (seq: number) =>
          Packet.encode(
            { cluster: options.cluster!, kind: "alive", incarnation: 1, seq, record: record("ghost") },
            undefined,
          )
        yield* sender.send(beacon(1))
        yield* eventually(() => seen.includes("Joined:ghost"), 1000, "ghost to join")
        const stopped = Date.now()
        yield* eventually(() => seen.includes("Left:ghost:Expired"), 2000, "ghost to expire")
        const detected = Date.now() - stopped
        assert.isAtLeast(detected, 250)
        // expiry + one sweep interval (+10 % jitter), with room for scheduling delay on a loaded machine.
        assert.isBelow(detected, 300 + 55 + 300)
        assert.strictEqual(a.stats().expired, 1)
      }),
    ),
  )

  it.live("bad input is ignored and counted, never fatal", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const options = loopbackBeacon({ secret: "s3cret" })
        const a = yield* BeaconDiscovery.make(options)
        const sender = yield* rawSender(options.port!)
        const cluster = options.cluster!
        const good = (nodeId: string, seq: number, secret: string | undefined) =>
          Packet.encode({ cluster, kind: "alive", incarnation: 7, seq, record: record(nodeId) }, secret)
        yield* sender.send(new Uint8Array([1, 2, 3])) // foreign: no magic
        yield* sender.send(Buffer.from("ZAB\x09\x00garbage")) // foreign: unknown version
        yield* sender.send(Buffer.concat([Buffer.from("ZAB\x01\x00"), Buffer.from([0xc1, 0xff, 0x00])])) // malformed
        yield* sender.send(Buffer.concat([Buffer.from("ZAB\x01\x00"), Buffer.from([0x93, 1, 2, 3])])) // malformed: short
        yield* sender.send(new Uint8Array(2000).fill(0x5a)) // oversized
        yield* sender.send(
          Packet.encode({ cluster: "other", kind: "alive", incarnation: 1, seq: 1, record: record("x") }, "s3cret"),
        )
        yield* sender.send(good("intruder", 1, undefined)) // unsigned
        yield* sender.send(good("intruder", 2, "wrong-secret")) // bad signature
        yield* sender.send(good("friend", 5, "s3cret"))
        yield* sender.send(good("friend", 5, "s3cret")) // replay
        yield* sender.send(good("friend", 4, "s3cret")) // older
        yield* eventually(() => (a.stats().packetsReceived ?? 0) >= 11, 2000, "all packets received")
        const stats = a.stats()
        assert.deepStrictEqual(
          {
            foreign: stats.foreign,
            malformed: stats.malformed,
            oversized: stats.oversized,
            wrongCluster: stats.wrongCluster,
            unauthenticated: stats.unauthenticated,
            stale: stats.stale,
          },
          { foreign: 2, malformed: 2, oversized: 1, wrongCluster: 1, unauthenticated: 2, stale: 2 },
        )
        assert.deepStrictEqual(yield* ids(a), ["friend"])
      }),
    ),
  )

  it.live("clusters sharing a port do not mix; members with the secret do, strangers do not", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const base = loopbackBeacon()
        const blue = yield* BeaconDiscovery.make({ ...base, cluster: "blue", secret: "k" })
        const blue2 = yield* BeaconDiscovery.make({ ...base, cluster: "blue", secret: "k" })
        const red = yield* BeaconDiscovery.make({ ...base, cluster: "red" })
        const stranger = yield* BeaconDiscovery.make({ ...base, cluster: "blue", secret: "guess" })
        yield* blue.register(record("blue-1"))
        yield* blue2.register(record("blue-2"))
        yield* red.register(record("red-1"))
        yield* stranger.register(record("mallory"))
        yield* eventually(() => blue.stats().members === 2 && blue2.stats().members === 2, 1000, "blue to converge")
        yield* Effect.sleep(200)
        assert.deepStrictEqual(yield* ids(blue), ["blue-1", "blue-2"])
        assert.deepStrictEqual(yield* ids(red), ["red-1"])
        assert.isAbove(blue.stats().wrongCluster!, 0)
        assert.isAbove(blue.stats().unauthenticated!, 0)
      }),
    ),
  )

  it.live("wildcard endpoints are announced with the beacon's source address", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const options = loopbackBeacon()
        const a = yield* BeaconDiscovery.make(options)
        const b = yield* BeaconDiscovery.make(options)
        yield* b.register(record("b", ["tcp://0.0.0.0:4567"]))
        yield* eventually(() => a.stats().members === 1, 1000, "a to see b")
        assert.deepStrictEqual((yield* a.members)[0]?.endpoints, ["tcp://127.0.0.1:4567"])
      }),
    ),
  )

  it.live("invalid options and records too large for a beacon are refused", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const bad = yield* Effect.flip(BeaconDiscovery.make({ port: 0, interval: 100, expiry: 150, address: "nope" }))
        assert.strictEqual(bad.reason, "InvalidOptions")
        assert.include(bad.message, "port")
        assert.include(bad.message, "expiry")
        assert.include(bad.message, "address")
        const a = yield* BeaconDiscovery.make(loopbackBeacon())
        const big = { ...record("big"), services: Array.from({ length: 200 }, (_, i) => `Service${i}`) }
        const error = yield* Effect.flip(a.register(big))
        assert.strictEqual(error.reason, "InvalidRecord")
        assert.include(error.message, "maxPacketBytes")
      }),
    ),
  )

  it.live("two nodes in one process: a call by service name over beacon discovery", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const options = loopbackBeacon()
        const server = yield* nodeWith(yield* BeaconDiscovery.make(options), { id: "server" })
        yield* serveGreeter(server)
        const client = yield* nodeWith(yield* BeaconDiscovery.make(options), { id: "client" })
        assert.strictEqual(yield* client.client(Greeter).greet({ name: "lan" }), "hello lan from server")
      }),
    ),
  )
})
