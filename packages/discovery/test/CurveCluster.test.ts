// A CURVE cluster found through discovery, over real ZeroMQ sockets on loopback: records carry each node's public
// key, so calls by service name and topic subscriptions work with encryption on, and admission still holds.
import { assert, describe, it } from "@effect/vitest"
import { Contract, Discovery, Node, type NodeOptions, RpcError, Topic } from "@zactor/core"
import { Curve, Transport, ZmqTransport } from "@zactor/transport"
import { Effect, Schema, Stream } from "effect"
import * as MemoryDiscovery from "../src/MemoryDiscovery.ts"
import { eventually, stateOf } from "./fixtures.ts"

const Who = Contract.make("Who", {
  whoami: Contract.unary({ payload: Schema.Struct({}), success: Schema.String }),
})

const Ticks = Topic.make("curve-ticks", { schema: Schema.Struct({ n: Schema.Number }) })

/**
 * A CURVE node with `keys`, admitting `allowed` client keys, registered in `discovery`; with `trusted`, it
 * connects only to servers with those keys.
 */
const curveNode = (
  discovery: Discovery.DiscoveryShape,
  keys: Curve.KeyPair,
  allowed: ReadonlyArray<string>,
  options: NodeOptions.NodeOptions,
  trusted?: ReadonlyArray<string>,
) =>
  Effect.flatMap(
    ZmqTransport.make({
      curve: {
        publicKey: keys.publicKey,
        secretKey: keys.secretKey,
        allowedClientKeys: allowed,
        ...(trusted === undefined ? {} : { allowedServerKeys: trusted }),
      },
    }),
    (transport) =>
      Node.make(options).pipe(
        Effect.provideService(Transport, transport),
        Effect.provideService(Discovery.Discovery, discovery),
        Effect.provideService(Topic.TopicsOptions, { heartbeatInterval: 100, missedHeartbeats: 3, scanInterval: 50 }),
      ),
  )

describe("CURVE with discovery", () => {
  it.live("calls by service name and topic subscriptions work encrypted; an unlisted key gets nothing", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const discovery = MemoryDiscovery.make(MemoryDiscovery.makeRegistry())
        const [serverKeys, clientKeys, outsiderKeys] = [
          Curve.generateKeyPair(),
          Curve.generateKeyPair(),
          Curve.generateKeyPair(),
        ]
        const server = yield* curveNode(discovery, serverKeys, [clientKeys.publicKey], { id: "server" })
        yield* server.serve(Who, {
          whoami: (_, context) => Effect.succeed(context.caller.publicKey ?? "anonymous"),
        })
        const ticks = yield* server.topics.publisher(Ticks)
        const client = yield* curveNode(discovery, clientKeys, [serverKeys.publicKey], { id: "client" })

        // The record carries the key; the call finds the server by name and arrives authenticated as the client.
        const record = (yield* discovery.resolve("Who")).find((member) => member.nodeId === "server")
        assert.strictEqual(record?.publicKey, serverKeys.publicKey)
        assert.strictEqual(yield* client.client(Who).whoami({}), clientKeys.publicKey)
        yield* eventually(() => stateOf(client, "server") === "alive", 3000, "server alive")
        assert.strictEqual(client.remotes().find((r) => r.info?.id === "server")?.publicKey, serverKeys.publicKey)

        // Topics: the subscriber connects to the publisher's XPUB with the key of its node.
        const received: Array<number> = []
        yield* Stream.runForEach(client.topics.subscribe(Ticks), (message) =>
          Effect.sync(() => {
            if (Topic.isEvent(message)) received.push(message.value.n)
          }),
        ).pipe(Effect.forkScoped)
        let n = 0
        yield* eventually(
          () => {
            ticks.offer({ n: ++n })
            return received.length >= 5
          },
          5000,
          "encrypted topic events",
        )
        assert.deepStrictEqual(
          received.slice(1).map((value, i) => value - received[i]!),
          received.slice(1).map(() => 1),
          "in order, no loss",
        )

        // A node the server does not admit finds it in the registry but gets no call through.
        const outsider = yield* curveNode(discovery, outsiderKeys, [serverKeys.publicKey], { id: "outsider" })
        const started = Date.now()
        const error = yield* Effect.flip(outsider.client(Who).whoami({}, { timeout: 10_000 }))
        assert.isTrue(RpcError.is(error) && error.code === "unavailable", String(error))
        assert.isBelow(Date.now() - started, 5000, "fails after the discovery wait, not the deadline")
        yield* eventually(() => server.transport.metrics().authFailures > 0, 3000, "the refusal counted")
      }),
    ),
  )

  it.live("with allowedServerKeys, a member registered under another key is never called: it shows untrusted", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const discovery = MemoryDiscovery.make(MemoryDiscovery.makeRegistry())
        const [genuineKeys, impostorKeys, clientKeys] = [
          Curve.generateKeyPair(),
          Curve.generateKeyPair(),
          Curve.generateKeyPair(),
        ]
        const genuine = yield* curveNode(discovery, genuineKeys, [clientKeys.publicKey], { id: "genuine" })
        yield* genuine.serve(Who, { whoami: () => Effect.succeed("genuine") })
        // Anyone who can write to the registry can announce the service under a key of their own, and admit all.
        const impostor = yield* curveNode(discovery, impostorKeys, [clientKeys.publicKey], { id: "impostor" })
        yield* impostor.serve(Who, { whoami: () => Effect.succeed("impostor") })
        const client = yield* curveNode(discovery, clientKeys, [], { id: "client" }, [genuineKeys.publicKey])

        yield* eventually(() => stateOf(client, "genuine") === "alive", 3000, "genuine alive")
        yield* eventually(() => stateOf(client, "impostor") === "untrusted", 3000, "impostor untrusted")
        const answers = yield* Effect.forEach(Array.from({ length: 20 }), () => client.client(Who).whoami({}), {
          concurrency: 4,
        })
        assert.deepStrictEqual(new Set(answers), new Set(["genuine"]))
        assert.strictEqual(impostor.metrics().requestsServed, 0)
        assert.isAtLeast(client.transport.metrics().authFailures, 1)
        // Asked for by endpoint, the impostor is refused with a typed error, not a timeout.
        const refused = yield* Effect.flip(
          client.connect(impostor.endpoints()[0]!, { serverPublicKey: impostorKeys.publicKey }),
        )
        assert.isTrue(RpcError.is(refused) && refused.code === "permission_denied", String(refused))
      }),
    ),
  )

  it.live("a member that publishes no key is not connected to in plain text", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const discovery = MemoryDiscovery.make(MemoryDiscovery.makeRegistry())
        const plain = yield* Node.makeZmq({ id: "plain" }).pipe(Effect.provideService(Discovery.Discovery, discovery))
        yield* plain.serve(Who, { whoami: () => Effect.succeed("plain") })
        const keys = Curve.generateKeyPair()
        const secure = yield* curveNode(discovery, keys, [], { id: "secure" })
        const error = yield* Effect.flip(secure.client(Who).whoami({}, { timeout: 10_000 }))
        assert.isTrue(RpcError.is(error) && error.code === "unavailable", String(error))
        assert.strictEqual(stateOf(secure, "plain"), "passive")
      }),
    ),
  )
})
