// Liveness across processes, with real signals and real network faults: a worker process (fixtures/
// liveness-node.ts) is frozen (SIGSTOP), killed (SIGKILL), has its event loop blocked, is reached through a lossy
// link (a network namespace with iptables dropping 20 % of packets; tc netem is not available in this kernel), or
// through 700 ms of added latency (a user-space proxy, fixtures/delay-proxy.ts). Each test prints what it measured
// (lines starting with [liveness]); docs/LIVENESS.md quotes them.

import { assert, describe, it } from "@effect/vitest"
import * as Harness from "@zactor/transport/testing/harness"
import { Effect, Fiber, Stream } from "effect"
import { afterAll, afterEach } from "vitest"
import type * as Liveness from "../src/Liveness.ts"
import type { NodeShape } from "../src/Node.ts"
import { RpcError } from "../src/RpcError.ts"
import * as NetNs from "./fixtures/netns.ts"
import { Calculator, zmqNode } from "./fixtures.ts"

const { sh } = NetNs

const workerScript = new URL("./fixtures/liveness-node.ts", import.meta.url).pathname
const proxyScript = new URL("./fixtures/delay-proxy.ts", import.meta.url).pathname

/** The spec's bound for the default settings: a frozen or cut-off peer is declared dead within about 1.5 s. */
const DEFAULT_BOUND_MS = 1500

const report = (line: string) => console.log(`[liveness] ${line}`)

const startWorker = (id: string, options: { bind?: string; launcher?: ReadonlyArray<string> } = {}) =>
  Effect.promise(() =>
    Harness.start(workerScript, {
      args: [id, options.bind ?? "tcp://127.0.0.1:*"],
      ...(options.launcher === undefined ? {} : { launcher: options.launcher }),
      readyTimeoutMs: 30_000,
    }),
  )

interface Seen {
  readonly at: number
  readonly change: Liveness.PeerChange
}

/** Every liveness change of `node`, with when it was seen (performance.now()). */
const recordChanges = (node: NodeShape) =>
  Effect.gen(function* () {
    const seen: Array<Seen> = []
    yield* Stream.runForEach(node.peerChanges, (change) =>
      Effect.sync(() => {
        seen.push({ at: performance.now(), change })
      }),
    ).pipe(Effect.forkScoped)
    return seen
  })

const waitUntil = (what: string, predicate: () => boolean, timeoutMs: number) =>
  Effect.promise(() => Harness.waitUntil(predicate, timeoutMs, what, 2))

const statusOf = (node: NodeShape, id: string) => node.remotes().find((remote) => remote.info?.id === id)

const firstAfter = (seen: ReadonlyArray<Seen>, since: number, to: Liveness.PeerState) =>
  seen.find((entry) => entry.at >= since && entry.change.to === to)

afterEach(() => Harness.stopAll())

describe("liveness across processes (real signals)", () => {
  it.live(
    "SIGSTOP: dead within the bound and in-flight calls fail at once; SIGCONT: alive again, no flapping",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const worker = yield* startWorker("frozen")
          const client = yield* zmqNode({ id: "observer" })
          const seen = yield* recordChanges(client)
          yield* client.connect(String(worker.ready.endpoint))
          yield* waitUntil("the worker to be alive", () => statusOf(client, "frozen")?.liveness.state === "alive", 5000)
          yield* Effect.sleep(1000)
          const boundMs = statusOf(client, "frozen")!.liveness.boundMs
          // Five calls held by the worker, deadlines far away.
          const held = yield* Effect.forkScoped(
            Effect.all(
              Array.from({ length: 5 }, () =>
                Effect.flip(client.client(Calculator).sleep({ ms: 20_000 }, { timeout: "30 seconds" })),
              ),
              { concurrency: "unbounded" },
            ).pipe(Effect.map((errors) => ({ errors, at: performance.now() }))),
          )
          yield* waitUntil("5 calls in flight", () => statusOf(client, "frozen")?.outstanding === 5, 5000)
          const frozenAt = performance.now()
          worker.freeze()
          const failed = yield* Fiber.join(held)
          // The change stream is consumed by another fiber: give it a moment to record what already happened.
          yield* waitUntil("the death to be recorded", () => firstAfter(seen, frozenAt, "dead") !== undefined, 1000)
          const dead = firstAfter(seen, frozenAt, "dead")
          const detectedMs = dead!.at - frozenAt
          const failedMs = failed.at - frozenAt
          report(
            `SIGSTOP -> dead in ${detectedMs.toFixed(0)} ms (bound ${boundMs} ms; ${dead!.change.reason}); ` +
              `5 in-flight calls failed after ${failedMs.toFixed(0)} ms`,
          )
          for (const error of failed.errors) {
            assert.isTrue(RpcError.is(error))
            assert.strictEqual((error as RpcError).code, "unavailable")
          }
          assert.isBelow(detectedMs, DEFAULT_BOUND_MS)
          assert.isBelow(failedMs - detectedMs, 100)
          // Frozen for 4 s in all: stays dead; calls by name find no instance and fail at once.
          yield* Effect.sleep(Math.max(0, 4000 - (performance.now() - frozenAt)))
          assert.strictEqual(statusOf(client, "frozen")?.liveness.state, "dead")
          const refused = (yield* Effect.flip(client.client(Calculator).add({ a: 1, b: 1 }))) as RpcError
          assert.strictEqual(refused.code, "unavailable")
          const thawedAt = performance.now()
          worker.thaw()
          yield* waitUntil(
            "the worker to be alive again",
            () => statusOf(client, "frozen")?.liveness.state === "alive",
            10_000,
          )
          const revived = firstAfter(seen, thawedAt, "alive")!
          report(`SIGCONT -> alive again in ${(revived.at - thawedAt).toFixed(0)} ms (${revived.change.reason})`)
          // No flapping: nothing changes for the next 5 s, and it serves again.
          yield* Effect.sleep(5000)
          const later = seen.filter((entry) => entry.at > revived.at)
          assert.deepStrictEqual(
            later.map((entry) => `${entry.change.from}->${entry.change.to}`),
            [],
          )
          assert.strictEqual(yield* client.client(Calculator).sleep({ ms: 1 }), "frozen")
          assert.strictEqual(client.metrics().peersDead, 1)
          assert.strictEqual(client.metrics().peersRevived, 1)
        }),
      ),
    60_000,
  )

  it.live(
    "SIGKILL: dead at once and every watch fires (node by id, by endpoint, actor ref); a stopped actor fires its own",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const worker = yield* startWorker("doomed")
          const endpoint = String(worker.ready.endpoint)
          const client = yield* zmqNode({ id: "watcher" })
          yield* client.connect(endpoint)
          const pet = { _tag: "ActorRef" as const, name: "pet", node: "doomed", endpoints: [endpoint] }
          // An actor stops while its node lives on.
          const actorWatch = yield* Effect.forkScoped(client.watch(pet))
          yield* Effect.sleep(300)
          const stoppedAt = performance.now()
          worker.send({ type: "stop-actor" })
          const stopped = yield* Fiber.join(actorWatch)
          assert.strictEqual(stopped.reason, "ActorStopped")
          report(`actor stopped -> watch fired after ${(performance.now() - stoppedAt).toFixed(0)} ms`)
          const watches = yield* Effect.forkScoped(
            Effect.all(
              [client.watch({ node: "doomed" }), client.watch({ endpoint }), client.watch({ ...pet, name: "other" })],
              { concurrency: "unbounded" },
            ).pipe(Effect.map((notices) => ({ notices, at: performance.now() }))),
          )
          yield* Effect.sleep(300)
          const killedAt = performance.now()
          yield* Effect.promise(() => worker.kill())
          // When this process saw the exit: the connection drops at about the same time.
          const exitedAt = performance.now()
          const { notices, at } = yield* Fiber.join(watches)
          report(
            `SIGKILL -> watches fired after ${(at - killedAt).toFixed(0)} ms, ${(at - exitedAt).toFixed(0)} ms ` +
              `after the exit was seen (${notices[0].detail})`,
          )
          // The actor named "other" never existed: its watch may fire ActorStopped before the kill.
          assert.deepStrictEqual(
            notices.slice(0, 2).map((notice) => notice.reason),
            ["Dead", "Dead"],
          )
          assert.include(["Dead", "ActorStopped"], notices[2].reason)
          assert.isBelow(at - killedAt, DEFAULT_BOUND_MS)
          const after = (yield* Effect.flip(
            client.client(Calculator, { node: "doomed" }).add({ a: 1, b: 1 }),
          )) as RpcError
          assert.strictEqual(after.code, "unavailable")
        }),
      ),
    60_000,
  )

  it.live(
    "a blocked event loop (the connection stays up) is found by the app-level heartbeat alone",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const worker = yield* startWorker("busy")
          const client = yield* zmqNode({ id: "prober" })
          const seen = yield* recordChanges(client)
          yield* client.connect(String(worker.ready.endpoint))
          yield* waitUntil("the worker to be alive", () => statusOf(client, "busy")?.liveness.state === "alive", 5000)
          yield* Effect.sleep(500)
          const disconnects = client.transport.metrics().disconnects
          // The worker's reported event-loop delay (its PONGs' load), before and after the block.
          const delayBefore = statusOf(client, "busy")!.liveness.load?.eventLoopDelayMs
          let delayAfter = 0
          yield* Effect.forkScoped(
            Effect.forever(
              Effect.andThen(
                Effect.sync(() => {
                  const reported = statusOf(client, "busy")?.liveness.load?.eventLoopDelayMs ?? 0
                  delayAfter = Math.max(delayAfter, reported)
                }),
                Effect.sleep(10),
              ),
            ),
          )
          const blockedAt = performance.now()
          worker.send({ type: "block", ms: 3000 })
          yield* waitUntil("the worker to be dead", () => statusOf(client, "busy")?.liveness.state === "dead", 5000)
          const detectedMs = firstAfter(seen, blockedAt, "dead")!.at - blockedAt
          yield* Effect.promise(() => worker.waitForMessage((m) => m.type === "unblocked", 10_000))
          yield* waitUntil(
            "the worker to be alive again",
            () => statusOf(client, "busy")?.liveness.state === "alive",
            5000,
          )
          // Its first PONG after the block reports the worst lateness of its timer over the last second: the block.
          yield* waitUntil("the worker to report the block", () => delayAfter > 1500, 3000).pipe(Effect.ignore)
          report(
            `event loop blocked 3 s -> dead in ${detectedMs.toFixed(0)} ms; ZMTP kept the connection; reported ` +
              `event-loop delay ${delayBefore} ms before, ${delayAfter} ms after`,
          )
          // Measured from sending the command over IPC, which the worker reads some time later.
          assert.isBelow(detectedMs, DEFAULT_BOUND_MS + 500)
          // ZeroMQ's I/O thread answered its own heartbeats all along: only the app-level one saw the stall.
          assert.strictEqual(client.transport.metrics().disconnects, disconnects)
          // The load signal says what happened: a loop late by more than half the block, where it was not before.
          assert.isDefined(delayBefore)
          assert.isBelow(delayBefore!, 1500)
          assert.isAbove(delayAfter, 1500)
        }),
      ),
    60_000,
  )

  it.live(
    "two workers under steady at-least-once load, one SIGSTOPped for 5 s: no call lost, none sent to it while dead, accepted back",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const [w1, w2] = yield* Effect.all([startWorker("w1"), startWorker("w2")], { concurrency: 2 })
          const client = yield* zmqNode({ id: "loader" })
          const seen = yield* recordChanges(client)
          yield* client.connect(String(w1.ready.endpoint))
          yield* client.connect(String(w2.ready.endpoint))
          yield* waitUntil(
            "both workers alive",
            () => client.remotes().every((remote) => remote.liveness.state === "alive"),
            5000,
          )
          let running = true
          const answered: Array<{ at: number; by: string }> = []
          const failures: Array<unknown> = []
          const calculator = client.client(Calculator)
          const one = Effect.gen(function* () {
            while (running) {
              const outcome = yield* Effect.result(
                calculator.sleep({ ms: 2 }, { delivery: "at-least-once", timeout: "10 seconds" }),
              )
              if (outcome._tag === "Success") answered.push({ at: performance.now(), by: outcome.success })
              else failures.push(outcome.failure)
            }
          })
          const load = yield* Effect.forkScoped(
            Effect.all(
              Array.from({ length: 16 }, () => one),
              { concurrency: 16 },
            ),
          )
          yield* Effect.sleep(1000)
          const frozenAt = performance.now()
          w1.freeze()
          yield* waitUntil("w1 to be dead", () => firstAfter(seen, frozenAt, "dead") !== undefined, 5000)
          const deadAt = firstAfter(seen, frozenAt, "dead")!.at
          const detectedMs = deadAt - frozenAt
          // While it is dead, nothing is routed to it: its outstanding calls stay at zero.
          let maxOutstanding = 0
          while (performance.now() - frozenAt < 5000) {
            maxOutstanding = Math.max(maxOutstanding, statusOf(client, "w1")?.outstanding ?? 0)
            yield* Effect.sleep(5)
          }
          const thawedAt = performance.now()
          w1.thaw()
          yield* waitUntil("w1 to be alive again", () => statusOf(client, "w1")?.liveness.state === "alive", 10_000)
          const revivedAt = firstAfter(seen, thawedAt, "alive")!.at
          yield* Effect.sleep(2000)
          running = false
          yield* Fiber.join(load)
          const w1Seen = seen.filter((entry) => entry.change.nodeId === "w1")
          const w1Changes = w1Seen.map((entry) => entry.change.to)
          const servedByW1After = answered.filter((a) => a.by === "w1" && a.at > revivedAt).length
          // From its death to its thaw (replies it sent just before freezing may still arrive right after SIGSTOP).
          const whileDead = answered.filter((a) => a.at > deadAt && a.at < thawedAt)
          report(
            `pool of 2 under load: ${answered.length} calls answered, ${failures.length} failed, ` +
              `${client.metrics().retried} retries; w1 dead ${detectedMs.toFixed(0)} ms after SIGSTOP, ` +
              `alive ${(revivedAt - thawedAt).toFixed(0)} ms after SIGCONT; ${whileDead.length} calls answered by w2 ` +
              `while w1 was dead; w1 served ${servedByW1After} calls after it came back; w1: ` +
              w1Seen.map((entry) => `${entry.change.to} (${entry.change.reason})`).join(", "),
          )
          assert.deepStrictEqual(failures, [])
          assert.isBelow(detectedMs, DEFAULT_BOUND_MS)
          assert.strictEqual(maxOutstanding, 0)
          assert.isTrue(whileDead.every((a) => a.by === "w2"))
          assert.isAbove(whileDead.length, 100)
          assert.isAbove(servedByW1After, 0)
          // One death, one return: no flapping.
          assert.deepStrictEqual(w1Changes.slice(w1Changes.indexOf("dead")), ["dead", "alive"])
        }),
      ),
    90_000,
  )
})

// ---- network faults -------------------------------------------------------------------------------------------

const naming: NetNs.NamespaceNaming = { prefix: "zactor-live-", linkPrefix: "zv", network: "10.201" }

/**
 * Why the lossy-link test cannot run here (namespaces need root), or undefined. Only that skips it: iptables is
 * installed by .ci/run, so a missing or broken iptables fails the test (its first `drop` says why).
 */
const netnsUnavailable = NetNs.namespacesUnavailable(naming, () => undefined)

const namespaces: Array<NetNs.Namespace> = []

const createNamespace = (): NetNs.Namespace => {
  const ns = NetNs.createNamespace(naming)
  namespaces.push(ns)
  return ns
}

const removeNamespace = NetNs.removeNamespace
type Namespace = NetNs.Namespace

/**
 * Adds (`-I`) or removes (`-D`) a DROP rule inside the namespace for packets from (`in`) or to (`out`) the host:
 * a share of them (`probability`) or all, of every protocol or TCP only.
 */
const drop = (
  ns: Namespace,
  action: "-I" | "-D",
  direction: "in" | "out",
  probability?: number,
  protocol?: "tcp",
): void => {
  const match = direction === "in" ? ["INPUT", "-s", ns.hostAddress] : ["OUTPUT", "-d", ns.hostAddress]
  const only = protocol === undefined ? [] : ["-p", protocol]
  const random =
    probability === undefined ? [] : ["-m", "statistic", "--mode", "random", "--probability", String(probability)]
  const rule = [...match, ...only, ...random, "-j", "DROP"]
  const result = sh("ip", "netns", "exec", ns.name, "iptables", "-w", action, ...rule)
  if (!result.ok) throw new Error(`iptables ${action} ${rule.join(" ")}: ${result.output}`)
}

afterAll(async () => {
  await Harness.stopAll()
  for (const ns of namespaces.splice(0)) removeNamespace(ns)
})

/** Light traffic (one at-least-once call every 100 ms) for `ms`; returns calls answered and failed. */
const trickle = (client: NodeShape, ms: number) =>
  Effect.gen(function* () {
    let ok = 0
    const failed: Array<unknown> = []
    let maxSilentMs = 0
    let maxBoundMs = 0
    const until = performance.now() + ms
    const calls = yield* Effect.forkScoped(
      Effect.gen(function* () {
        while (performance.now() < until) {
          const outcome = yield* Effect.result(
            client.client(Calculator).add({ a: 1, b: 2 }, { delivery: "at-least-once", timeout: "15 seconds" }),
          )
          if (outcome._tag === "Success") ok++
          else failed.push(outcome.failure)
          yield* Effect.sleep(100)
        }
      }),
    )
    while (performance.now() < until) {
      const liveness = client.remotes()[0]?.liveness
      maxSilentMs = Math.max(maxSilentMs, liveness?.silentMs ?? 0)
      maxBoundMs = Math.max(maxBoundMs, liveness?.boundMs ?? 0)
      yield* Effect.sleep(20)
    }
    yield* Fiber.join(calls)
    return { ok, failed, maxSilentMs, maxBoundMs }
  })

const countTo = (seen: ReadonlyArray<Seen>, since: number, to: Liveness.PeerState) =>
  seen.filter((entry) => entry.at >= since && entry.change.to === to).length

describe("liveness over faulty links", () => {
  if (netnsUnavailable !== undefined) console.warn(`SKIPPED the lossy-link liveness test: ${netnsUnavailable}`)

  it.live.skipIf(netnsUnavailable !== undefined)(
    "20 % packet loss: a slow but alive peer is not declared dead; a partition of the same link is, within the adapted bound",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const ns = createNamespace()
          const worker = yield* startWorker("lossy", {
            bind: `tcp://${ns.address}:5555`,
            launcher: ["ip", "netns", "exec", ns.name],
          })
          // Calls during a lossy spell meet dropped connections (ZMTP's own 1 s heartbeat timeout): give the
          // at-least-once calls enough attempts to ride over the reconnections.
          const client = yield* zmqNode({ id: "far", retry: { maxAttempts: 30 } })
          const seen = yield* recordChanges(client)
          yield* client.connect(String(worker.ready.endpoint)).pipe(Effect.timeout("20 seconds"))
          // 20 % of the packets towards the worker dropped (what `tc netem loss 20%` on one interface does).
          drop(ns, "-I", "in", 0.2)
          const oneWayFrom = performance.now()
          const oneWay = yield* trickle(client, 30_000)
          const oneWayDeaths = countTo(seen, oneWayFrom, "dead")
          report(
            `20 % loss one way, 30 s: ${oneWayDeaths} deaths, ${countTo(seen, oneWayFrom, "suspect")} suspicions, ` +
              `max silence ${oneWay.maxSilentMs} ms, bound up to ${oneWay.maxBoundMs} ms, ` +
              `${oneWay.ok} calls ok, ${oneWay.failed.length} failed`,
          )
          assert.strictEqual(oneWayDeaths, 0)
          assert.deepStrictEqual(oneWay.failed, [])
          // Both ways: harsher (TCP stalls for seconds when retransmissions are lost too, and ZMTP drops the
          // connection now and then). The UDP probes still get through: once the peer is silent for 375 ms one goes
          // every 50 ms, and each is answered with chance 0.8 x 0.8, so a silence reaching the 1 s bound needs 12
          // failed probes in a row (0.36^12, about 5 in a million; the bound grows after the first stalls too). The
          // slow but alive peer must not be declared dead, and the at-least-once calls ride over the reconnections.
          drop(ns, "-I", "out", 0.2)
          const bothFrom = performance.now()
          const both = yield* trickle(client, 20_000)
          const bothDeaths = countTo(seen, bothFrom, "dead")
          report(
            `20 % loss both ways, 20 s: ${bothDeaths} deaths, ` +
              `${countTo(seen, bothFrom, "suspect")} suspicions, max silence ${both.maxSilentMs} ms, ` +
              `bound up to ${both.maxBoundMs} ms, ${both.ok} calls ok, ${both.failed.length} failed, ` +
              `${client.transport.metrics().disconnects} ZMTP disconnects`,
          )
          assert.strictEqual(bothDeaths, 0)
          assert.deepStrictEqual(both.failed, [])
          drop(ns, "-D", "in", 0.2)
          drop(ns, "-D", "out", 0.2)
          yield* waitUntil("the peer to be alive", () => statusOf(client, "lossy")?.liveness.state === "alive", 15_000)
          // TCP cut, datagrams pass: the process answers the UDP probes, so it is unreachable (suspect), not dead.
          drop(ns, "-I", "in", undefined, "tcp")
          drop(ns, "-I", "out", undefined, "tcp")
          const tcpCutAt = performance.now()
          yield* Effect.sleep(4000)
          const whileCut = statusOf(client, "lossy")!.liveness
          report(`TCP cut for 4 s, UDP passing: ${whileCut.state}, ${countTo(seen, tcpCutAt, "dead")} deaths`)
          assert.strictEqual(countTo(seen, tcpCutAt, "dead"), 0)
          assert.strictEqual(whileCut.state, "suspect")
          drop(ns, "-D", "in", undefined, "tcp")
          drop(ns, "-D", "out", undefined, "tcp")
          yield* waitUntil("the peer to be alive", () => statusOf(client, "lossy")?.liveness.state === "alive", 15_000)
          // A partition of the same link: declared dead within the bound it adapted to.
          const boundMs = statusOf(client, "lossy")!.liveness.boundMs
          drop(ns, "-I", "in")
          drop(ns, "-I", "out")
          // Measured from here: `drop` runs iptables synchronously, which on a busy machine blocks this process for
          // hundreds of ms, and a stall of this node's own is not held against its peers (docs/LIVENESS.md
          // section 2): the peer's silence is counted from when this node runs again.
          const cutAt = performance.now()
          yield* waitUntil("the peer to be dead", () => statusOf(client, "lossy")?.liveness.state === "dead", 10_000)
          const detectedMs = firstAfter(seen, cutAt, "dead")!.at - cutAt
          report(`partition after the lossy spell -> dead in ${detectedMs.toFixed(0)} ms (bound was ${boundMs} ms)`)
          assert.isBelow(detectedMs, boundMs + 500)
          drop(ns, "-D", "in")
          drop(ns, "-D", "out")
          yield* waitUntil("the peer to be back", () => statusOf(client, "lossy")?.liveness.state === "alive", 20_000)
        }),
      ),
    120_000,
  )

  it.live(
    "700 ms of added latency: a slow but alive peer is not declared dead; frozen behind it, it is, within bound + RTT",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const worker = yield* startWorker("distant")
          const port = Number(new URL(String(worker.ready.endpoint).replace("tcp:", "http:")).port)
          // 700 ms on the way back (what `tc netem delay 700ms` on the worker's interface does): RTT + 700 ms.
          const proxy = yield* Effect.promise(() =>
            Harness.start(proxyScript, { args: ["127.0.0.1", String(port), "0", "700"] }),
          )
          const client = yield* zmqNode({ id: "near" })
          const seen = yield* recordChanges(client)
          yield* client.connect(`tcp://127.0.0.1:${proxy.ready.port}`).pipe(Effect.timeout("20 seconds"))
          const from = performance.now()
          const slow = yield* trickle(client, 20_000)
          const status = statusOf(client, "distant")!.liveness
          report(
            `700 ms latency, 20 s: ${countTo(seen, from, "dead")} deaths, ${countTo(seen, from, "suspect")} suspicions, ` +
              `RTT ${status.rttMs?.toFixed(0)} ms, bound ${status.boundMs} ms, max silence ${slow.maxSilentMs} ms, ` +
              `${slow.ok} calls ok, ${slow.failed.length} failed`,
          )
          assert.strictEqual(countTo(seen, from, "dead"), 0)
          assert.deepStrictEqual(slow.failed, [])
          assert.isAbove(status.rttMs ?? 0, 650)
          const frozenAt = performance.now()
          worker.freeze()
          yield* waitUntil("the peer to be dead", () => statusOf(client, "distant")?.liveness.state === "dead", 10_000)
          const detectedMs = firstAfter(seen, frozenAt, "dead")!.at - frozenAt
          report(
            `SIGSTOP behind 700 ms latency -> dead in ${detectedMs.toFixed(0)} ms ` +
              `(bound ${status.boundMs} ms, after the last answers still on their way)`,
          )
          // The answers the worker sent just before it froze keep arriving for the one-way delay, then the bound runs.
          assert.isBelow(detectedMs, status.boundMs + (status.rttMs ?? 0) + 500)
        }),
      ),
    90_000,
  )
})
