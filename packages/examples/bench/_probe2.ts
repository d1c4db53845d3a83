import { Actor, Contract, Node } from "@zactor/core"
import { Context, Effect, Exit, Schema, Scope } from "effect"

const gc = (globalThis as { gc?: () => void }).gc!
const collect = () => {
  for (let i = 0; i < 3; i++) gc()
  return process.memoryUsage().heapUsed
}
const Counter = Contract.make("Counter", {
  increment: Contract.unary({ payload: Schema.Struct({ by: Schema.Number }), success: Schema.Number }),
  get: Contract.unary({ payload: Schema.Struct({}), success: Schema.Number }),
})
const B = Actor.make(Counter, {
  initialState: 0,
  handlers: { increment: (_, c) => Effect.succeed(c.state), get: (_, c) => Effect.succeed(c.state) },
})
const N = 100000
const keep: unknown[] = []
let round = 0
const measure = (label: string, f: (name: string) => Effect.Effect<unknown, unknown, Scope.Scope>) =>
  Effect.gen(function* () {
    for (let r = 0; r < 3; r++) {
      const scope = yield* Scope.make()
      round++
      const names = Array.from({ length: N }, (_, i) => `${label}-${round}-${i}`)
      const before = collect()
      const t = performance.now()
      yield* Effect.gen(function* () {
        for (let i = 0; i < N; i++) keep.push(yield* f(names[i]!))
      }).pipe(Scope.provide(scope))
      const ms = performance.now() - t
      const after = collect()
      if (r === 2)
        console.log(label.padEnd(30), ((after - before) / N).toFixed(0), "B/each", Math.round((N / ms) * 1000), "/s")
      keep.length = 0
      yield* Scope.close(scope, Exit.void)
    }
  })
const program = Effect.gen(function* () {
  const node = yield* Node.Node
  yield* measure("succeed", () => Effect.succeed(undefined))
  yield* measure("uninterruptibleMask+ctx", () =>
    Effect.uninterruptibleMask(() => Effect.contextWith((c: Context.Context<Scope.Scope>) => Effect.succeed(c))),
  )
  yield* measure("forkUnsafe", () =>
    Effect.contextWith((c: Context.Context<Scope.Scope>) =>
      Effect.succeed(Scope.forkUnsafe(Context.get(c, Scope.Scope))),
    ),
  )
  yield* measure("forkUnsafe+fin", () =>
    Effect.contextWith((c: Context.Context<Scope.Scope>) => {
      const s = Scope.forkUnsafe(Context.get(c, Scope.Scope))
      return Effect.as(Scope.addFinalizer(s, Effect.void), s)
    }),
  )
  yield* measure("spawn", (name) => Actor.spawnOn(node, B, name))
})
Effect.runPromise(program.pipe(Effect.provide(Node.layerZmq({ id: "probe" })))).catch((e) => {
  console.error(e)
  process.exit(1)
})
