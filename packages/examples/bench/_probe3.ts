import { Actor, Contract, Node } from "@zactor/core"
import { Effect, Exit, Schema, Scope } from "effect"

const Counter = Contract.make("Counter", {
  increment: Contract.unary({ payload: Schema.Struct({ by: Schema.Number }), success: Schema.Number }),
  get: Contract.unary({ payload: Schema.Struct({}), success: Schema.Number }),
})
const B = Actor.make(Counter, {
  initialState: 0,
  handlers: { increment: (_, c) => Effect.succeed(c.state), get: (_, c) => Effect.succeed(c.state) },
})
const N = 100000
const program = Effect.gen(function* () {
  const node = yield* Node.Node
  for (let r = 0; r < 6; r++) {
    const scope = yield* Scope.make()
    const names = Array.from({ length: N }, (_, i) => `a-${r}-${i}`)
    const t = performance.now()
    yield* Effect.gen(function* () {
      for (let i = 0; i < N; i++) yield* Actor.spawnOn(node, B, names[i]!)
    }).pipe(Scope.provide(scope))
    const ms = performance.now() - t
    const t2 = performance.now()
    yield* Scope.close(scope, Exit.void)
    ;(globalThis as any).gc?.()
    console.log(
      Math.round((N / ms) * 1000),
      "/s",
      "close",
      Math.round(performance.now() - t2),
      "ms heap",
      Math.round(process.memoryUsage().heapUsed / 1e6),
      "MB",
    )
  }
})
Effect.runPromise(program.pipe(Effect.provide(Node.layerZmq({ id: "probe" })))).catch((e) => {
  console.error(e)
  process.exit(1)
})
