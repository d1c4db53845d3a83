/**
 * `pnpm bench:actors`: the cost of actors in one process. Spawns `--count` idle actors (default 100,000) on a
 * node with no peers, and reports spawns per second and heap bytes per idle actor (`heapUsed` after a full GC,
 * before and after, divided by the count), the time to stop them all, the spawn rate again with a peer
 * connected (spawning announces nothing, so peers must not slow it), and ask/tell throughput to one local
 * actor through the node (a loopback connection, so the full wire path).
 *
 * Run with `--expose-gc` (the script does) so heap numbers are measured after collection. Spawn rates are given
 * by wall clock and by process CPU time; on a shared machine the second is the one to compare. A benchmark,
 * not a test: it exits non-zero only when a run breaks, never because a target was missed.
 *
 * Flags: `--count N` (default 100000), `--rounds N` (3; the median is reported), `--calls N` (20000).
 *
 * @since 0.1.0
 */
import { parseArgs } from "node:util"
import { Actor, ActorRef, Contract, Node } from "@zactor/core"
import { Transport, ZmqTransport } from "@zactor/transport"
import { Effect, Exit, Schema, Scope } from "effect"

const { values: flags } = parseArgs({
  args: process.argv.slice(2).filter((arg) => arg !== "--"),
  options: {
    count: { type: "string" },
    rounds: { type: "string" },
    calls: { type: "string" },
  },
})
const count = Number(flags.count ?? 100_000)
const rounds = Number(flags.rounds ?? 3)
const calls = Number(flags.calls ?? 20_000)

const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) {
  console.error("run with node --expose-gc")
  process.exit(2)
}
const collect = (): number => {
  for (let i = 0; i < 3; i++) gc()
  return process.memoryUsage().heapUsed
}

/** A small counter contract: two methods, as a typical actor. */
const Counter = Contract.make("Counter", {
  increment: Contract.unary({ payload: Schema.Struct({ by: Schema.Number }), success: Schema.Number }),
  get: Contract.unary({ payload: Schema.Struct({}), success: Schema.Number }),
})

const CounterActor = Actor.make(Counter, {
  initialState: 0,
  handlers: {
    increment: ({ by }, ctx) =>
      Effect.sync(() => {
        ctx.setState(ctx.state + by)
        return ctx.state
      }),
    get: (_, ctx) => Effect.succeed(ctx.state),
  },
})

const median = (values: ReadonlyArray<number>): number => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]!
}

const spawnRound = (node: Node.NodeShape, round: number) =>
  Effect.gen(function* () {
    const scope = yield* Scope.make()
    const names = Array.from({ length: count }, (_, i) => `r${round}-a${i}`)
    const before = collect()
    const started = performance.now()
    const cpuStarted = process.cpuUsage()
    const refs: Array<ActorRef.ActorRef<typeof Counter>> = new Array(count)
    // One scoped region for all spawns, as an application would write it (`Effect.scoped` around a loop).
    yield* Effect.gen(function* () {
      for (let i = 0; i < count; i++) refs[i] = yield* Actor.spawnOn(node, CounterActor, names[i]!)
    }).pipe(Scope.provide(scope))
    const spawnMs = performance.now() - started
    const cpu = process.cpuUsage(cpuStarted)
    const spawnCpuMs = (cpu.user + cpu.system) / 1000
    const after = collect()
    const stopStarted = performance.now()
    yield* Scope.close(scope, Exit.void)
    const stopMs = performance.now() - stopStarted
    refs.length = 0
    return {
      spawnsPerSec: count / (spawnMs / 1000),
      spawnsPerCpuSec: count / (spawnCpuMs / 1000),
      bytesPerActor: (after - before) / count,
      stopMs,
    }
  })

const throughput = (node: Node.NodeShape) =>
  Effect.scoped(
    Effect.gen(function* () {
      const ref = yield* Actor.spawnOn(node, CounterActor, "hot")
      const counter = ActorRef.ask(node, ref)
      const teller = ActorRef.tell(node, ref)
      yield* counter.get({})
      let started = performance.now()
      yield* Effect.forEach(Array.from({ length: calls }), () => counter.increment({ by: 1 }), {
        concurrency: 256,
        discard: true,
      })
      const asksPerSec = calls / ((performance.now() - started) / 1000)
      started = performance.now()
      for (let i = 0; i < calls; i++) yield* teller.increment({ by: 1 })
      // The final ask queues behind every tell (one connection, one mailbox, arrival order).
      const total = yield* counter.get({})
      const tellsPerSec = calls / ((performance.now() - started) / 1000)
      if (total !== 2 * calls) throw new Error(`expected ${2 * calls}, got ${total}`)
      // The same asks to a plain service on the same node: the difference is what the actor layer costs.
      let plainCount = 0
      yield* node.serve(Counter, {
        increment: ({ by }) => Effect.sync(() => (plainCount += by)),
        get: () => Effect.sync(() => plainCount),
      })
      const plain = node.client(Counter, { endpoint: node.endpoints()[0]! })
      yield* plain.get({})
      started = performance.now()
      yield* Effect.forEach(Array.from({ length: calls }), () => plain.increment({ by: 1 }), {
        concurrency: 256,
        discard: true,
      })
      const plainAsksPerSec = calls / ((performance.now() - started) / 1000)
      return { asksPerSec, tellsPerSec, plainAsksPerSec }
    }),
  )

const program = Effect.gen(function* () {
  const node = yield* Node.Node
  // Warm the JIT on the spawn path before measuring.
  const warm = count
  yield* Effect.scoped(
    Effect.gen(function* () {
      for (let i = 0; i < Math.min(warm, 20_000); i++) yield* Actor.spawnOn(node, CounterActor, `warm-${i}`)
    }),
  )
  const results = []
  for (let round = 0; round < rounds; round++) results.push(yield* spawnRound(node, round))
  const rate = median(results.map((r) => r.spawnsPerSec))
  const cpuRate = median(results.map((r) => r.spawnsPerCpuSec))
  const bytes = median(results.map((r) => r.bytesPerActor))
  const stopMs = median(results.map((r) => r.stopMs))
  // A peer connected to this node: if spawning announced actors, every spawn would send it a HELLO.
  const withPeer = yield* Effect.scoped(
    Effect.gen(function* () {
      const transport = yield* ZmqTransport.make({})
      const peer = yield* Node.make({ id: "bench-peer" }).pipe(Effect.provideService(Transport, transport))
      yield* peer.connect(node.endpoints()[0]!)
      return yield* spawnRound(node, rounds)
    }),
  )
  const { asksPerSec, tellsPerSec, plainAsksPerSec } = yield* throughput(node)
  const row = (label: string, value: string, target: string) =>
    console.log(`${label.padEnd(28)} ${value.padStart(14)}   ${target}`)
  console.log(`actors: ${count} idle actors x ${rounds} rounds (median), node ${process.version}, no peers`)
  row("spawns/s", Math.round(rate).toLocaleString("en-US"), "target >= 200,000 (wall clock)")
  // CPU time is what a busy machine does not distort: the process's user + system time during the loop.
  row("spawns per CPU-second", Math.round(cpuRate).toLocaleString("en-US"), "same loop, by process CPU time")
  row("heap bytes per idle actor", bytes.toFixed(0), "target <= 1024")
  row(`stop all ${count}`, `${stopMs.toFixed(0)} ms`, "")
  row("spawns/s, 1 peer connected", Math.round(withPeer.spawnsPerSec).toLocaleString("en-US"), "one round")
  row("asks/s (local, 256 in flight)", Math.round(asksPerSec).toLocaleString("en-US"), "")
  row("tells/s (local)", Math.round(tellsPerSec).toLocaleString("en-US"), "")
  row("asks/s to a plain service", Math.round(plainAsksPerSec).toLocaleString("en-US"), "same loop, no actor")
})

Effect.runPromise(program.pipe(Effect.provide(Node.layerZmq({ id: "bench" })))).catch((error) => {
  console.error(error)
  process.exit(1)
})
