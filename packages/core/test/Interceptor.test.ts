import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import type { ClientInterceptor, ServerInterceptor } from "../src/Interceptor.ts"
import { RpcError } from "../src/RpcError.ts"
import { Calculator, DivisionByZero, zmqNode } from "./fixtures.ts"

describe("interceptors", () => {
  it.live("run as an onion on both sides; client headers reach server interceptors; servers can refuse", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const trail: Array<string> = []
        const tag =
          (name: string): ServerInterceptor =>
          (call, next) =>
            Effect.gen(function* () {
              trail.push(`${name}>${call.method}`)
              const result = yield* next
              trail.push(`<${name}`)
              return result
            })
        // Authorization from a header the client interceptor adds; a real deployment would check the CURVE key.
        const auth: ServerInterceptor = (call, next) =>
          call.context.headers.token === "let-me-in"
            ? next
            : Effect.fail(new RpcError({ code: "permission_denied", message: "no token", method: call.method }))
        const server = yield* zmqNode({ id: "guarded", serverInterceptors: [tag("outer"), auth, tag("inner")] })
        yield* server.serve(Calculator, {
          add: ({ a, b }) => Effect.succeed(a + b),
          divide: ({ a }) => Effect.fail(new DivisionByZero({ dividend: a })),
          sleep: () => Effect.succeed("ok"),
        })
        const withToken: ClientInterceptor = (call, next) =>
          next({ ...call, headers: { ...call.headers, token: "let-me-in" } }).pipe(
            Effect.tap(() => Effect.sync(() => trail.push(`client<${call.method}`))),
          )
        const good = yield* zmqNode({ id: "good", clientInterceptors: [withToken] })
        const bad = yield* zmqNode({ id: "bad" })
        const endpoint = server.endpoints()[0]!
        assert.strictEqual(yield* good.client(Calculator, { endpoint }).add({ a: 1, b: 2 }), 3)
        assert.deepStrictEqual(trail, [
          "outer>Calculator/add",
          "inner>Calculator/add",
          "<inner",
          "<outer",
          "client<Calculator/add",
        ])
        const refused = yield* Effect.flip(bad.client(Calculator, { endpoint }).add({ a: 1, b: 2 }))
        assert.strictEqual((refused as RpcError).code, "permission_denied")
        // Application errors pass through interceptors unchanged.
        const error = yield* Effect.flip(good.client(Calculator, { endpoint }).divide({ a: 1, b: 0 }))
        assert.instanceOf(error, DivisionByZero)
      }),
    ),
  )
})
