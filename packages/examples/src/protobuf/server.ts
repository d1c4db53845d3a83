/**
 * The protobuf example's server role: a zactor node serving the Greeter service generated from greeter.proto,
 * with handlers typed by the generated `GreeterHandlers` interface (Effect API). Messages arrive and leave as
 * protobuf binary; the node validates them on the way in and out.
 *
 * Run alone (after `pnpm generate`): `node --conditions=@zactor/source --import tsx src/protobuf/server.ts
 * [endpoint]` (default `tcp://127.0.0.1:*`, a free port); it prints the endpoint it bound. Under `main.ts` it
 * reports the endpoint over IPC instead. It stops on SIGTERM, SIGINT, or when its parent goes away.
 *
 * @since 0.1.0
 */
import { create } from "@bufbuild/protobuf"
import { Node, RpcError } from "@zactor/core"
import { Cause, Effect, Exit, Stream } from "effect"
import { HelloReplySchema } from "../gen/greeter_pb.ts"
import { GreeterContract, type GreeterHandlers } from "../gen/greeter_zactor.ts"

/** The Greeter's handlers: unary as an Effect, server-streaming as a Stream. */
export const handlers: GreeterHandlers = {
  SayHello: ({ name }) =>
    name === ""
      ? Effect.fail(new RpcError({ code: "invalid_argument", message: "SayHello: name must not be empty" }))
      : Effect.succeed(create(HelloReplySchema, { message: `Hello, ${name}!` })),
  StreamGreetings: ({ name, count, intervalMs }) =>
    Stream.range(1, count).pipe(
      Stream.mapEffect((sequence) =>
        Effect.as(
          Effect.sleep(sequence === 1 ? 0 : intervalMs),
          create(HelloReplySchema, { message: `Hello #${sequence}, ${name}!`, sequence }),
        ),
      ),
    ),
}

const bindTo = process.argv[2] ?? "tcp://127.0.0.1:*"

const program = Effect.gen(function* () {
  const node = yield* Node.makeZmq({ id: "greeter-server", bind: [bindTo] })
  yield* node.serve(GreeterContract, handlers)
  const endpoint = node.endpoints()[0]!
  if (process.send === undefined) console.log(`greeter server listening on ${endpoint}`)
  else process.send({ type: "listening", endpoint })
  return yield* Effect.never
}).pipe(Effect.scoped)

const controller = new AbortController()
for (const signal of ["SIGTERM", "SIGINT"] as const) process.once(signal, () => controller.abort())
process.once("disconnect", () => controller.abort())
void Effect.runPromiseExit(program, { signal: controller.signal }).then((exit) => {
  const failed = Exit.isFailure(exit) && !Cause.hasInterruptsOnly(exit.cause)
  if (failed) console.error(`greeter server failed:\n${Cause.pretty(exit.cause)}`)
  process.exit(failed ? 1 : 0)
})
