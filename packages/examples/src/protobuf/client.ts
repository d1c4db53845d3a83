/**
 * The protobuf example's client role: a zactor node that calls the Greeter through the generated contract with
 * the Promise API (`@zactor/core/promise`), typed by the generated `GreeterPromiseClient`. Requests are built with
 * protoc-gen-es's `create`, and travel as protobuf binary.
 *
 * Run alone (after `pnpm generate`, with a server running): `node --conditions=@zactor/source --import tsx
 * src/protobuf/client.ts <endpoint>`. Exits 0 when every call behaved as expected, 1 otherwise.
 *
 * @since 0.1.0
 */
import { create } from "@bufbuild/protobuf"
import { RpcError } from "@zactor/core"
import { start } from "@zactor/core/promise"
import { HelloRequestSchema, StreamGreetingsRequestSchema } from "../gen/greeter_pb.ts"
import { GreeterContract, type GreeterPromiseClient } from "../gen/greeter_zactor.ts"

const endpoint = process.argv[2]
if (endpoint === undefined) {
  console.error("usage: client.ts <endpoint of a greeter server>")
  process.exit(2)
}

const node = await start({ id: "greeter-client" })
try {
  await node.connect(endpoint)
  const greeter: GreeterPromiseClient = node.client(GreeterContract, { endpoint })

  // Unary: the declared 2 s deadline applies (a `timeout` option would override it); the signal can only cancel
  // earlier.
  const hello = await greeter.SayHello(create(HelloRequestSchema, { name: "Ada" }), {
    signal: AbortSignal.timeout(5000),
  })
  console.log(`SayHello: ${hello.message}`)

  // Server streaming: an AsyncIterable, consumed with flow control; breaking out early would cancel it.
  const request = create(StreamGreetingsRequestSchema, { name: "Grace", count: 3, intervalMs: 100 })
  for await (const reply of greeter.StreamGreetings(request)) {
    console.log(`StreamGreetings: ${reply.sequence} ${reply.message}`)
  }

  // A handler's RpcError reaches the caller with its code.
  const refused = await greeter.SayHello(create(HelloRequestSchema, { name: "" })).then(
    () => undefined,
    (error: unknown) => error,
  )
  if (!RpcError.is(refused)) throw new Error(`SayHello(""): expected an RpcError, got ${String(refused)}`)
  console.log(`SayHello(""): ${refused.code}`)
} catch (error) {
  console.error("greeter client failed:", error)
  process.exitCode = 1
} finally {
  await node.close()
}
