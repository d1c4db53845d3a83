import { assert, describe, it } from "@effect/vitest"
import { Discovery as Contract, RpcError } from "@zactor/core"
import { Effect, Fiber, Stream } from "effect"
import * as MemoryDiscovery from "../src/MemoryDiscovery.ts"
import { Echo, eventually, Greeter, inScope, nodeWith, serveGreeter, stateOf } from "./fixtures.ts"

describe("memory discovery and the node's discovery link", () => {
  it.live("a client calls a service by name with no endpoint configured, balanced over its instances", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const registry = MemoryDiscovery.makeRegistry()
        const discovery = MemoryDiscovery.make(registry)
        const a = yield* nodeWith(discovery, { id: "a" })
        const b = yield* nodeWith(discovery, { id: "b" })
        yield* serveGreeter(a)
        yield* serveGreeter(b)
        const client = yield* nodeWith(discovery, { id: "client" })
        const greeter = client.client(Greeter)
        assert.strictEqual(yield* greeter.greet({ name: "x" }).pipe(Effect.map((s) => s.startsWith("hello x"))), true)
        yield* eventually(
          () => stateOf(client, "a") === "alive" && stateOf(client, "b") === "alive",
          2000,
          "both alive",
        )
        const answers = yield* Effect.all(
          Array.from({ length: 40 }, () => greeter.whoami({})),
          { concurrency: 8 },
        )
        assert.deepStrictEqual([...new Set(answers)].sort(), ["a", "b"])
        const view = client.members()
        assert.deepStrictEqual(view.map((m) => m.nodeId).sort(), ["a", "b"])
        assert.isTrue(view.every((m) => m.registered && m.services.includes("Greeter")))
        // The registry includes the client itself (it serves nothing, so nobody connects to it).
        assert.strictEqual(stateOf(a, "client"), "passive")
        assert.deepStrictEqual((yield* discovery.resolve("Greeter")).map((m) => m.nodeId).sort(), ["a", "b"])
      }),
    ),
  )

  it.live("serving something new republishes the record, and callers find it", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const discovery = MemoryDiscovery.make(MemoryDiscovery.makeRegistry())
        const server = yield* nodeWith(discovery, { id: "server" })
        yield* serveGreeter(server)
        const client = yield* nodeWith(discovery, { id: "client" })
        yield* eventually(() => stateOf(client, "server") === "alive", 2000, "server alive")
        yield* server.serve(Echo, { echo: ({ text }) => Effect.succeed(text.toUpperCase()) })
        assert.strictEqual(yield* client.client(Echo).echo({ text: "hi" }), "HI")
        yield* eventually(
          () =>
            client
              .members()
              .find((m) => m.nodeId === "server")
              ?.services.includes("Echo") === true,
          2000,
          "the record to list Echo",
        )
      }),
    ),
  )

  it.live("a call made before any instance exists waits for one to be discovered (bounded)", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const discovery = MemoryDiscovery.make(MemoryDiscovery.makeRegistry())
        const client = yield* nodeWith(discovery, { id: "early" })
        const call = yield* Effect.forkChild(client.client(Greeter).whoami({}))
        yield* Effect.sleep(200)
        const late = yield* nodeWith(discovery, { id: "late" })
        yield* serveGreeter(late)
        assert.strictEqual(yield* Fiber.join(call), "late")
        // Nothing serves Echo: the call fails unavailable after waitForInstance (default 2 s), not the deadline.
        const started = Date.now()
        const error = yield* Effect.flip(client.client(Echo).echo({ text: "x" }, { timeout: 60_000 }))
        assert.isTrue(RpcError.is(error) && error.code === "unavailable")
        assert.isBelow(Date.now() - started, 3000)
      }),
    ),
  )

  it.live("a goodbye stops routing at once; an expiry while still connected shows as unregistered", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const registry = MemoryDiscovery.makeRegistry()
        const discovery = MemoryDiscovery.make(registry)
        const a = yield* inScope(Effect.tap(nodeWith(discovery, { id: "a" }), serveGreeter))
        const b = yield* inScope(Effect.tap(nodeWith(discovery, { id: "b" }), serveGreeter))
        const client = yield* nodeWith(discovery, { id: "client" })
        yield* eventually(() => stateOf(client, "a") === "alive" && stateOf(client, "b") === "alive", 2000, "alive")
        yield* b.close
        yield* eventually(() => stateOf(client, "b") === "absent", 2000, "b gone after its goodbye")
        const answers = yield* Effect.all(
          Array.from({ length: 10 }, () => client.client(Greeter).whoami({})),
          { concurrency: 4 },
        )
        assert.deepStrictEqual([...new Set(answers)], ["a"])
        // The registry loses a (as after a lost lease) while a still answers: still routed, shown as such.
        assert.isTrue(MemoryDiscovery.expire(registry, "a"))
        yield* eventually(() => stateOf(client, "a") === "unregistered", 2000, "a unregistered")
        assert.strictEqual(yield* client.client(Greeter).whoami({}), "a")
        yield* a.close
        yield* eventually(() => stateOf(client, "a") === "absent", 2000, "a dropped once its connection drops")
      }),
    ),
  )

  it.live("watchService follows one service's instances", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const discovery = MemoryDiscovery.make(MemoryDiscovery.makeRegistry())
        const events: Array<string> = []
        yield* Stream.runForEach(Contract.watchService(discovery, "Echo"), (event) =>
          Effect.sync(() => events.push(`${event._tag}:${event.member.nodeId}`)),
        ).pipe(Effect.forkScoped)
        const node = yield* inScope(nodeWith(discovery, { id: "n" }))
        const echo = yield* inScope(node.value.serve(Echo, { echo: ({ text }) => Effect.succeed(text) }))
        yield* eventually(() => events.length === 1, 2000, "Joined")
        yield* echo.close
        yield* eventually(() => events.length === 2, 2000, "Left")
        yield* node.close
        assert.deepStrictEqual(events, ["Joined:n", "Left:n"])
      }),
    ),
  )

  it.effect("records that break the limits are refused with InvalidRecord", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const discovery = MemoryDiscovery.make(MemoryDiscovery.makeRegistry())
        const error = yield* Effect.flip(
          discovery.register({
            nodeId: "",
            endpoints: [],
            services: [],
            actors: [],
            meta: {},
            protocolVersion: 1,
          }),
        )
        assert.strictEqual(error.reason, "InvalidRecord")
      }),
    ),
  )
})
