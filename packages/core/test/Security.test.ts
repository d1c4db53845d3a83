import { assert, describe, it } from "@effect/vitest"
import { Curve, Transport, ZmqTransport } from "@zactor/transport"
import { Effect, Schema } from "effect"
import * as Contract from "../src/Contract.ts"
import type { ServerInterceptor } from "../src/Interceptor.ts"
import * as Node from "../src/Node.ts"
import type { NodeOptions } from "../src/NodeOptions.ts"
import { RpcError } from "../src/RpcError.ts"

const WhoAmI = Contract.make("WhoAmI", {
  whoami: Contract.unary({ payload: Schema.Struct({ claim: Schema.String }), success: Schema.String }),
})

/** A node whose transport uses CURVE with `keys`, admitting `allowed` client keys. */
const curveNode = (keys: Curve.KeyPair, allowed: ReadonlyArray<string>, options: NodeOptions) =>
  Effect.flatMap(
    ZmqTransport.make({ curve: { publicKey: keys.publicKey, secretKey: keys.secretKey, allowedClientKeys: allowed } }),
    (transport) => Node.make(options).pipe(Effect.provideService(Transport, transport)),
  )

describe("CURVE identity in handlers and interceptors", () => {
  it.live("handlers and interceptors see the caller's proven key; unlisted keys get nothing through", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const serverKeys = Curve.generateKeyPair()
        const [alice, mallory, eve] = [Curve.generateKeyPair(), Curve.generateKeyPair(), Curve.generateKeyPair()]
        // Admission (ZAP) lets alice and mallory in; authorization (an interceptor) lets only alice call.
        const onlyAlice: ServerInterceptor = (call, next) =>
          call.context.caller.publicKey === alice.publicKey
            ? next
            : Effect.fail(new RpcError({ code: "permission_denied", message: "not alice", method: call.method }))
        const server = yield* curveNode(serverKeys, [alice.publicKey, mallory.publicKey], {
          id: "vault",
          serverInterceptors: [onlyAlice],
        })
        yield* server.serve(WhoAmI, {
          whoami: ({ claim }, context) => Effect.succeed(`${claim} is really ${context.caller.publicKey}`),
        })
        const target = { endpoint: server.endpoints()[0]!, serverPublicKey: serverKeys.publicKey }

        const aliceNode = yield* curveNode(alice, [], { id: "alice" })
        // The payload may claim anything; the key comes from the connection.
        assert.strictEqual(
          yield* aliceNode.client(WhoAmI, target).whoami({ claim: "bob" }),
          `bob is really ${alice.publicKey}`,
        )

        const malloryNode = yield* curveNode(mallory, [], { id: "mallory" })
        const denied = yield* Effect.flip(malloryNode.client(WhoAmI, target).whoami({ claim: "alice" }))
        assert.strictEqual((denied as RpcError).code, "permission_denied")

        const eveNode = yield* curveNode(eve, [], { id: "eve" })
        const refused = yield* Effect.flip(eveNode.client(WhoAmI, target).whoami({ claim: "alice" }, { timeout: 500 }))
        assert.include(["unavailable", "deadline_exceeded"], (refused as RpcError).code)
        assert.strictEqual(server.metrics().requestsServed, 2)
        // The server counts the refused handshake from its socket monitor, which reports asynchronously.
        yield* Effect.promise(async () => {
          const until = Date.now() + 5000
          while (server.transport.metrics().authFailures === 0 && Date.now() < until) {
            await new Promise((resolve) => setTimeout(resolve, 10))
          }
        })
        assert.isAbove(server.transport.metrics().authFailures, 0)
      }),
    ),
  )
})
