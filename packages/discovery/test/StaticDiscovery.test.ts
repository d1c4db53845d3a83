import { assert, describe, it } from "@effect/vitest"
import { Discovery as Contract } from "@zactor/core"
import { ConfigProvider, Effect, Layer } from "effect"
import * as StaticDiscovery from "../src/StaticDiscovery.ts"
import { eventually, Greeter, nodeWith, serveGreeter, stateOf } from "./fixtures.ts"

describe("static discovery", () => {
  it.effect("parses [nodeId@]endpoint lists and refuses what is not one", () =>
    Effect.gen(function* () {
      const peers = yield* StaticDiscovery.parse(" a@tcp://10.0.0.2:5000,tcp://10.0.0.3:5000\n ipc:///tmp/x ")
      assert.deepStrictEqual(peers, [
        { nodeId: "a", endpoint: "tcp://10.0.0.2:5000" },
        { endpoint: "tcp://10.0.0.3:5000" },
        { endpoint: "ipc:///tmp/x" },
      ])
      const error = yield* Effect.flip(StaticDiscovery.parse("tcp://ok:1, 10.0.0.4:5000"))
      assert.strictEqual(error.reason, "InvalidOptions")
      assert.include(error.message, "10.0.0.4:5000")
    }),
  )

  it.effect("parses a peer's CURVE public key after #, and refuses a key that is not one", () =>
    Effect.gen(function* () {
      // A Z85 key may hold "@", "#" and ":" itself: only the last 40 characters after a "#" are the key.
      const key = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
      const other = "#Zm[8eH^s=6B.#!5TcEXK?Ag0&}k>o2OrQAw8)3z"
      const peers = yield* StaticDiscovery.parse(`a@tcp://10.0.0.2:5000#${key} tcp://10.0.0.3:5000#${other}`)
      assert.deepStrictEqual(peers, [
        { nodeId: "a", endpoint: "tcp://10.0.0.2:5000", publicKey: key },
        { endpoint: "tcp://10.0.0.3:5000", publicKey: other },
      ])
      const discovery = yield* StaticDiscovery.make([`b@tcp://10.0.0.4:5000#${key}`])
      assert.strictEqual((yield* discovery.members)[0]?.publicKey, key)
      for (const bad of ["tcp://10.0.0.2:5000#short", `tcp://10.0.0.2:5000#${key.slice(1)}~`]) {
        const error = yield* Effect.flip(StaticDiscovery.parse(bad))
        assert.strictEqual(error.reason, "InvalidOptions")
        assert.include(error.message, "public key")
      }
    }),
  )

  it.effect("reads ZACTOR_PEERS through Config", () =>
    Effect.gen(function* () {
      const discovery = yield* Contract.Discovery.pipe(
        Effect.provide(
          StaticDiscovery.layerFromEnv().pipe(
            Layer.provide(
              ConfigProvider.layer(ConfigProvider.fromEnv({ env: { ZACTOR_PEERS: "x@tcp://10.9.9.9:1" } })),
            ),
          ),
        ),
      )
      const members = yield* discovery.members
      assert.deepStrictEqual(
        members.map((m) => [m.nodeId, m.endpoints[0], m.services[0]]),
        [["x", "tcp://10.9.9.9:1", Contract.ANY_SERVICE]],
      )
      assert.strictEqual((yield* discovery.resolve("Anything")).length, 1)
    }),
  )

  it.live("a node connects to listed peers, learns what they serve from HELLO, and skips itself", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const server = yield* nodeWith(yield* StaticDiscovery.make([]), { id: "server" })
        yield* serveGreeter(server)
        const endpoint = server.endpoints()[0]!
        // The same list on every node, including the client's own entry (skipped by its id).
        const list = `server@${endpoint}, client@tcp://127.0.0.1:1`
        const client = yield* nodeWith(yield* StaticDiscovery.make([list]), { id: "client" })
        assert.strictEqual(yield* client.client(Greeter).greet({ name: "s" }), "hello s from server")
        yield* eventually(() => stateOf(client, "server") === "alive", 2000, "server alive")
        assert.deepStrictEqual(
          client.members().map((m) => m.nodeId),
          ["server"],
        )
      }),
    ),
  )
})
