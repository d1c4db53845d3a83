import { Contract, Node } from "@zactor/core"
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
const N = 50000
const keep: unknown[] = []
const measure = (label: string, f: (i: number) => Effect.Effect<unknown, unknown, Scope.Scope>) =>
  Effect.gen(function* () {
    const scope = yield* Scope.make()
    const names = Array.from({ length: N }, (_, i) => `${label}-${i}`)
    const before = collect()
    const t = performance.now()
    for (let i = 0; i < N; i++) keep.push(yield* f(i).pipe(Scope.provide(scope)))
    const ms = performance.now() - t
    const after = collect()
    console.log(label.padEnd(30), ((after - before) / N).toFixed(0), "B/each", Math.round((N / ms) * 1000), "/s")
    keep.length = 0
    yield* Scope.close(scope, Exit.void)
    void names
  })
const program = Effect.gen(function* () {
  const node = yield* Node.Node
  const handlers = { increment: () => Effect.succeed(1), get: () => Effect.succeed(1) }
  yield* measure("empty", () => Effect.succeed(undefined))
  yield* measure("forkScope", () =>
    Effect.flatMap(Scope.Scope.asEffect ? Scope.Scope : Scope.Scope, (s) => Effect.sync(() => Scope.forkUnsafe(s))),
  )
  yield* measure("forkScope+2fin", () =>
    Effect.flatMap(Scope.Scope, (s) => {
      const c = Scope.forkUnsafe(s)
      return Effect.andThen(Scope.addFinalizer(c, Effect.void), Scope.addFinalizer(c, Effect.void))
    }),
  )
  yield* measure("provideScope ctx", () =>
    Effect.flatMap(Scope.Scope, (s) => {
      const c = Scope.forkUnsafe(s)
      return Effect.context<never>().pipe(Effect.provideService(Scope.Scope, c))
    }),
  )
  yield* measure("serve", (i) => node.serve(Counter, handlers, { address: `@s${i}` }))
  yield* measure("serve+forkscope", (i) =>
    Effect.flatMap(Scope.Scope, (s) => {
      const c = Scope.forkUnsafe(s)
      return node.serve(Counter, handlers, { address: `@t${i}` }).pipe(Effect.provideService(Scope.Scope, c))
    }),
  )
})
Effect.runPromise(program.pipe(Effect.provide(Node.layerZmq({ id: "probe" })))).catch((e) => {
  console.error(e)
  process.exit(1)
})
