import { assert, describe, it } from "@effect/vitest"
import type { Discovery } from "@zactor/core"
import { Effect, Stream } from "effect"
import { Etcd3 } from "etcd3"
import { afterAll, beforeAll } from "vitest"
import * as EtcdDiscovery from "../src/EtcdDiscovery.ts"
import { record } from "./beaconHelpers.ts"
import { type EtcdServer, etcdAvailable, startEtcd } from "./etcdServer.ts"
import { eventually, inScope } from "./fixtures.ts"

if (!etcdAvailable) console.warn("etcd tests skipped: no `etcd` binary (apt-get install -y etcd-server)")

let etcd: EtcdServer
beforeAll(async () => {
  if (etcdAvailable) etcd = await startEtcd()
})
afterAll(async () => {
  await etcd?.dispose()
})

let clusters = 0
/** Options for one test: its own cluster under the shared server, short timings. */
const optionsFor = () => ({
  endpoints: [etcd.endpoint],
  cluster: `unit-${process.pid}-${clusters++}`,
  leaseTtl: 2000,
  requestTimeout: 1000,
  retryInterval: 100,
})

const watchLog = (discovery: Discovery.DiscoveryShape) =>
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

const raw = () =>
  Effect.acquireRelease(
    Effect.sync(() => new Etcd3({ hosts: etcd.endpoint })),
    (c) => Effect.sync(() => c.close()),
  )

describe.skipIf(!etcdAvailable)("etcd discovery (real etcd on 127.0.0.1)", () => {
  it.live("registrations appear in every watcher; updates and goodbyes too", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const options = optionsFor()
        const a = yield* EtcdDiscovery.make(options)
        const seen = yield* watchLog(a)
        const registration = yield* a.register(record("a"))
        const b = yield* inScope(
          Effect.flatMap(EtcdDiscovery.make(options), (b) => Effect.as(b.register(record("b")), b)),
        )
        yield* eventually(() => seen.includes("Joined:a") && seen.includes("Joined:b"), 3000, "both to join")
        yield* registration.update({ ...record("a"), services: ["Greeter", "Echo"] })
        yield* eventually(() => seen.includes("Updated:a"), 3000, "the update")
        assert.deepStrictEqual(
          (yield* a.resolve("Echo")).map((m) => m.nodeId),
          ["a"],
        )
        yield* b.close
        yield* eventually(() => seen.includes("Left:b:Goodbye"), 3000, "b's goodbye")
        assert.strictEqual(a.stats().registrations, 1)
      }),
    ),
  )

  it.live("a member whose keepalives stop expires with its lease", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const options = optionsFor()
        const a = yield* EtcdDiscovery.make(options)
        const seen = yield* watchLog(a)
        // A registration whose process "crashed": the lease is granted, then its keepalives stop.
        const client = yield* raw()
        const lease = client.lease(2, { autoKeepAlive: false })
        const key = `/zactor/${options.cluster}/members/ghost`
        yield* Effect.promise(() => lease.put(key).value(JSON.stringify({ v: 1, ...record("ghost") })))
        yield* eventually(() => seen.includes("Joined:ghost"), 3000, "ghost to join")
        const crashed = Date.now()
        yield* eventually(() => seen.includes("Left:ghost:Expired"), 6000, "the lease to expire")
        const took = Date.now() - crashed
        assert.isBelow(took, 4000)
      }),
    ),
  )

  it.live("garbage under the prefix is ignored and counted", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const options = optionsFor()
        const a = yield* EtcdDiscovery.make(options)
        yield* a.register(record("real"))
        const client = yield* raw()
        const base = `/zactor/${options.cluster}/members/`
        yield* Effect.promise(async () => {
          await client.put(`${base}junk`).value("not json {")
          await client.put(`${base}v2`).value(JSON.stringify({ v: 2, ...record("v2") }))
          await client.put(`${base}liar`).value(JSON.stringify({ v: 1, ...record("someone-else") }))
          await client.put(`${base}huge`).value(Buffer.alloc(300 * 1024, 0x61))
          await client.put(`${base}typed`).value(JSON.stringify({ v: 1, ...record("typed"), endpoints: [1, 2] }))
        })
        yield* eventually(() => (a.stats().garbage ?? 0) >= 5, 3000, "five garbage values")
        // Garbage present at start-up is counted too, and the real member is unaffected.
        const b = yield* EtcdDiscovery.make(options)
        assert.deepStrictEqual(
          (yield* b.members).map((m) => m.nodeId),
          ["real"],
        )
        assert.strictEqual(b.stats().garbage, 5)
      }),
    ),
  )

  it.live("etcd restarts: the view stays meanwhile, registrations come back, the watch resumes", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const options = optionsFor()
        const a = yield* EtcdDiscovery.make(options)
        const seen = yield* watchLog(a)
        yield* a.register(record("a"))
        const b = yield* EtcdDiscovery.make(options)
        yield* b.register(record("b"))
        yield* eventually(() => a.stats().members === 2, 3000, "a to see both")
        yield* Effect.promise(() => etcd.kill())
        // Down for longer than the lease TTL's keepalive horizon: the cached view must not change.
        yield* Effect.sleep(1500)
        assert.deepStrictEqual((yield* a.members).map((m) => m.nodeId).sort(), ["a", "b"])
        yield* Effect.promise(() => etcd.restart())
        const c = yield* EtcdDiscovery.make(options)
        yield* c.register(record("c"))
        yield* eventually(() => seen.includes("Joined:c"), 8000, "the watch to resume and see c")
        yield* eventually(() => c.stats().members === 3, 8000, "c to see a and b registered")
        assert.notInclude(seen, "Left:a:Expired")
      }),
    ),
  )

  it.live("etcd comes back empty (store lost): every registration is written again", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const options = optionsFor()
        const a = yield* EtcdDiscovery.make(options)
        yield* a.register(record("a"))
        const b = yield* EtcdDiscovery.make(options)
        yield* b.register(record("b"))
        yield* eventually(() => a.stats().members === 2, 3000, "a to see both")
        yield* Effect.promise(() => etcd.restart({ wipe: true }))
        const c = yield* EtcdDiscovery.make(options)
        yield* eventually(() => c.stats().members === 2, 10_000, "both registrations rewritten")
        // A keeper counts its re-registration once etcd has acknowledged the write; c may see the key first.
        yield* eventually(
          () => (a.stats().reregistrations ?? 0) + (b.stats().reregistrations ?? 0) >= 2,
          2000,
          "both keepers to count a re-registration",
        )
        yield* c.register(record("c"))
        yield* eventually(() => a.stats().members === 3, 8000, "a's watch to resume on the new store")
      }),
    ),
  )

  it.live("invalid options are refused; an unreachable etcd does not block start-up", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const error = yield* Effect.flip(EtcdDiscovery.make({ endpoints: ["127.0.0.1:2379"], prefix: "x" }))
        assert.strictEqual(error.reason, "InvalidOptions")
        const started = Date.now()
        const nowhere = yield* EtcdDiscovery.make({ endpoints: ["http://127.0.0.1:1"], requestTimeout: 300 })
        yield* nowhere.register(record("lonely"))
        assert.isBelow(Date.now() - started, 2000)
        assert.deepStrictEqual(yield* nowhere.members, [])
      }),
    ),
  )
})
