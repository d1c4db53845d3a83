import { Context, Effect, Exit, Scope } from "effect"

const gc = (globalThis as { gc?: () => void }).gc!
const N = 100000
const keep: unknown[] = []
const sym = Symbol.for("x")
class Cell {
  a = 0
  b = false
  c = false
  d = undefined
  e = undefined
  f = 0
  g = 0
  h = 0
  i = 0
  j = undefined
  state: unknown
  ref: unknown
  beh: unknown
  act: unknown
  scope: unknown
  ctx: unknown
  constructor(ref: unknown, scope: unknown, ctx: unknown) {
    this.ref = ref
    this.scope = scope
    this.ctx = ctx
    this.state = 0
    this.beh = 1
    this.act = 2
  }
}
const map = new Map<string, unknown>()
const wm = new WeakMap<object, unknown>()
const variants: Record<string, (name: string) => Effect.Effect<unknown, never, Scope.Scope>> = {
  plain: (name) =>
    Effect.sync(() => {
      const ref = { _tag: "ActorRef", name, node: "n", endpoints: [], contract: "C", [sym]: 1 }
      const c = new Cell(ref, undefined, undefined)
      map.set(name, c)
      return ref
    }),
  weakmap: (name) =>
    Effect.sync(() => {
      const ref = { _tag: "ActorRef", name, node: "n", endpoints: [], contract: "C", [sym]: 1 }
      const c = new Cell(ref, undefined, undefined)
      map.set(name, c)
      wm.set(ref, c)
      return ref
    }),
  fork: (name) =>
    Effect.contextWith((ctx: Context.Context<Scope.Scope>) => {
      const ref = { _tag: "ActorRef", name, node: "n", endpoints: [], contract: "C", [sym]: 1 }
      const s = Scope.forkUnsafe(Context.get(ctx, Scope.Scope))
      const c = new Cell(ref, s, ctx)
      map.set(name, c)
      return Effect.succeed(ref)
    }),
  forkFin: (name) =>
    Effect.contextWith((ctx: Context.Context<Scope.Scope>) => {
      const ref = { _tag: "ActorRef", name, node: "n", endpoints: [], contract: "C", [sym]: 1 }
      const s = Scope.forkUnsafe(Context.get(ctx, Scope.Scope))
      const c = new Cell(ref, s, ctx)
      map.set(name, c)
      return Effect.as(
        Scope.addFinalizer(
          s,
          Effect.suspend(() => Effect.sync(() => c)),
        ),
        ref,
      )
    }),
  forkFinExit: (name) =>
    Effect.contextWith((ctx: Context.Context<Scope.Scope>) => {
      const ref = { _tag: "ActorRef", name, node: "n", endpoints: [], contract: "C", [sym]: 1 }
      const s = Scope.forkUnsafe(Context.get(ctx, Scope.Scope))
      const c = new Cell(ref, s, ctx)
      map.set(name, c)
      return Effect.as(
        Scope.addFinalizerExit(s, () => Effect.sync(() => c)),
        ref,
      )
    }),
}
const program = Effect.gen(function* () {
  for (const [label, f] of Object.entries(variants)) {
    const res: string[] = []
    for (let r = 0; r < 4; r++) {
      const scope = yield* Scope.make()
      const names = Array.from({ length: N }, (_, i) => `a-${r}-${i}`)
      gc()
      const before = process.memoryUsage().heapUsed
      const t = performance.now()
      yield* Effect.gen(function* () {
        for (let i = 0; i < N; i++) keep.push(yield* f(names[i]!))
      }).pipe(Scope.provide(scope))
      const ms = performance.now() - t
      gc()
      const after = process.memoryUsage().heapUsed
      res.push(`${Math.round(((N / ms) * 1000) / 1000)}k/s ${((after - before) / N).toFixed(0)}B`)
      keep.length = 0
      map.clear()
      yield* Scope.close(scope, Exit.void)
    }
    console.log(label.padEnd(12), res.join("  "))
  }
})
Effect.runPromise(program)
