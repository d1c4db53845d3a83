import * as Dgram from "node:dgram"
import { assert, describe, it } from "@effect/vitest"
import { Transport, type TransportShape, ZmqTransport } from "@zactor/transport"
import { Effect, Fiber, Schema, Stream } from "effect"
import * as Contract from "../src/Contract.ts"
import * as Envelope from "../src/Envelope.ts"
import { Detector, type DetectorConfig } from "../src/internal/detector.ts"
import * as Liveness from "../src/Liveness.ts"
import * as Node from "../src/Node.ts"
import type { NodeOptions } from "../src/NodeOptions.ts"
import { RpcError } from "../src/RpcError.ts"
import { Calculator, DivisionByZero, Echo } from "./fixtures.ts"

// ---- the detector, on a synthetic clock -------------------------------------------------------------------------

const config: DetectorConfig = {
  intervalMs: 250,
  timeoutMs: 1000,
  maxTimeoutMs: 5000,
  reviveAfterMs: 500,
  joinTimeoutMs: 5000,
}

/** A detector heard at t=0 and checked along, alive. */
const aliveAt0 = () => {
  const detector = new Detector(0)
  detector.lastHeard = 0
  assert.strictEqual(detector.check(10, false, config)?.to, "alive")
  return detector
}

/** Hears the peer every `every` ms from `from` to `to`, checking every 50 ms; returns the transitions. */
const steady = (detector: Detector, from: number, to: number, every = 250, down = false) => {
  const changes: Array<string> = []
  for (let t = from; t <= to; t += 50) {
    if ((t - from) % every === 0) detector.lastHeard = t
    const change = detector.check(t, down, config)
    if (change !== undefined) changes.push(change.to)
  }
  return changes
}

/** Checks every 50 ms from `from` to `to` without hearing the peer; returns [time, state] of each transition. */
const silent = (detector: Detector, from: number, to: number, down = false) => {
  const changes: Array<[number, string]> = []
  for (let t = from; t <= to; t += 50) {
    const change = detector.check(t, down, config)
    if (change !== undefined) changes.push([t, change.to])
  }
  return changes
}

describe("Detector", () => {
  it("a peer heard every interval stays alive; silence makes it suspect at half the bound and dead at the bound", () => {
    const detector = aliveAt0()
    assert.deepStrictEqual(steady(detector, 0, 10_000), [])
    assert.strictEqual(detector.bound(config), 1000)
    // Last heard at t=10000: suspect once silent 500 ms, dead once silent 1000 ms.
    assert.deepStrictEqual(silent(detector, 10_050, 12_000), [
      [10_500, "suspect"],
      [11_000, "dead"],
    ])
  })

  it("a survived silence raises the bound (6x its excess over two intervals, decaying); one that killed does not", () => {
    const detector = aliveAt0()
    steady(detector, 0, 2000)
    // Heard every interval: the bound stays at the timeout.
    assert.strictEqual(detector.bound(config), 1000)
    // A 600 ms silence (suspect, not dead), then contact again: 1000 + 6 x (600 - 500).
    assert.deepStrictEqual(silent(detector, 2050, 2550), [[2500, "suspect"]])
    assert.deepStrictEqual(steady(detector, 2600, 3000), ["alive"])
    assert.approximately(detector.bound(config), 1600, 25)
    // Decays with a 60 s half-life, never below the timeout.
    steady(detector, 3050, 63_000)
    assert.strictEqual(detector.bound(config), 1000)
    assert.approximately(detector.peakGapMs, 300, 10)
    // A silence that made it dead leaves the bound alone when the peer returns.
    silent(detector, 63_050, 70_000)
    assert.strictEqual(detector.state, "dead")
    steady(detector, 70_050, 72_000)
    assert.strictEqual(detector.state, "alive")
    assert.isBelow(detector.peakGapMs, 400)
  })

  it("the bound covers two round trips and never exceeds maxTimeout", () => {
    const detector = aliveAt0()
    for (let i = 0; i < 50; i++) detector.observeRtt(700)
    assert.approximately(detector.bound(config), 2400, 1)
    for (let i = 0; i < 50; i++) detector.observeRtt(4000)
    assert.strictEqual(detector.bound(config), 5000)
  })

  it("this node's own stall is credited, not blamed on the peer, whether the peer was heard just before or after it", () => {
    const detector = aliveAt0()
    steady(detector, 0, 1000)
    // Heard at 1000 (checked at 1000); heard again at 1040, just before this node stalled 3 s (until 4040).
    detector.lastHeard = 1040
    assert.strictEqual(detector.check(4050, false, config, 3000), undefined)
    assert.strictEqual(detector.state, "alive")
    // Then the peer's messages waiting in the socket are read after the stall: the gap is not a survived silence.
    detector.lastHeard = 4060
    assert.strictEqual(detector.check(4100, false, config), undefined)
    // Stalled again, the peer's messages read before the check this time (after the stall).
    detector.lastHeard = 7110
    assert.strictEqual(detector.check(7120, false, config, 3000), undefined)
    assert.strictEqual(detector.state, "alive")
    assert.isBelow(detector.peakGapMs, 300)
    // Without the credit the same silence kills.
    const blunt = aliveAt0()
    steady(blunt, 0, 1000)
    assert.strictEqual(blunt.check(4050, false, config)?.to, "dead")
  })

  it("a lost connection makes the peer suspect; a refused reconnection makes it dead", () => {
    const detector = aliveAt0()
    steady(detector, 0, 1000)
    assert.strictEqual(detector.check(1010, true, config)?.to, "suspect")
    assert.strictEqual(detector.check(1020, true, config), undefined)
    detector.refusedConnects = 1
    const change = detector.check(1120, true, config)
    assert.strictEqual(change?.to, "dead")
    assert.strictEqual(change?.reason, "reconnection refused")
  })

  it("a dead peer is alive again after answering steadily for reviveAfter, doubled for each recent death", () => {
    const detector = aliveAt0()
    steady(detector, 0, 1000)
    silent(detector, 1050, 3000)
    assert.strictEqual(detector.state, "dead")
    // Back: 500 ms of steady answers (first check in contact at 3050).
    const back = steady(detector, 3050, 4000)
    assert.deepStrictEqual(back, ["alive"])
    assert.strictEqual(detector.recentDeaths(4000), 1)
    // Dies again: the second return takes 1 s of steady answers.
    silent(detector, 4050, 6000)
    let revivedAt = 0
    for (let t = 6050; t <= 8000; t += 50) {
      if ((t - 6050) % 250 === 0) detector.lastHeard = t
      if (detector.check(t, false, config)?.to === "alive") revivedAt = t
    }
    assert.strictEqual(revivedAt, 7050)
    // Answers interrupted by a long gap restart the probation.
    silent(detector, 8050, 10_000)
    steady(detector, 10_050, 10_500)
    silent(detector, 10_550, 11_200)
    assert.strictEqual(detector.state, "dead")
  })

  it("joining: alive at the first message, dead when nothing answers within joinTimeout, alive at once if it then answers", () => {
    const heard = new Detector(0)
    assert.strictEqual(heard.check(100, false, config), undefined)
    heard.lastHeard = 120
    assert.strictEqual(heard.check(150, false, config)?.to, "alive")
    const never = new Detector(0)
    assert.deepStrictEqual(silent(never, 50, 6000), [[5000, "dead"]])
    // Never alive before: no probation.
    never.lastHeard = 7000
    assert.strictEqual(never.check(7010, false, config)?.to, "alive")
  })

  it("a restarted peer (new incarnation) is alive at once and its old history is forgotten", () => {
    const detector = aliveAt0()
    steady(detector, 0, 1000)
    silent(detector, 1050, 3000)
    assert.strictEqual(detector.state, "dead")
    detector.lastHeard = 3100
    assert.strictEqual(detector.restarted(3100)?.to, "alive")
    assert.strictEqual(detector.recentDeaths(3100), 0)
  })
})

describe("heartbeat settings", () => {
  it("options resolve with defaults and are range-checked", () => {
    assert.deepStrictEqual(Liveness.resolve(), Liveness.defaults)
    assert.include(String(Liveness.resolve({ heartbeatInterval: 600, heartbeatTimeout: 1000 })), "twice")
    assert.include(String(Liveness.resolve({ heartbeatTimeout: -1 })), "positive")
    const raised = Liveness.resolve({ heartbeatTimeout: "8 seconds" })
    assert.strictEqual(typeof raised === "string" ? 0 : raised.maxHeartbeatTimeoutMs, 8000)
  })

  it("the larger timeout of the two ends applies on a link; settings that would flap are refused", () => {
    const local = { intervalMs: 250, timeoutMs: 1000 }
    assert.strictEqual(Liveness.linkTimeoutMs(local, { intervalMs: 500, timeoutMs: 3000 }), 3000)
    assert.strictEqual(Liveness.linkTimeoutMs(local, { intervalMs: 100, timeoutMs: 400 }), 1000)
    assert.strictEqual(Liveness.linkTimeoutMs(local, undefined), 1000)
    assert.strictEqual(Liveness.checkSettings(local), undefined)
    assert.include(String(Liveness.checkSettings({ intervalMs: 500, timeoutMs: 600 })), "flap")
    assert.include(String(Liveness.checkSettings({ intervalMs: 0, timeoutMs: 600 })), "out of range")
  })

  it("HELLO/WELCOME carry the settings and the incarnation; PING/PONG carry watched and missing addresses", () => {
    const info: Envelope.NodeInfo = {
      id: "n",
      services: [],
      actors: [],
      endpoints: [],
      meta: {},
      heartbeat: { intervalMs: 250, timeoutMs: 1000 },
      incarnation: "abc",
    }
    assert.deepStrictEqual(Envelope.decode(Envelope.encode([1, 0, info])), [1, 0, info])
    const ping: Envelope.Ping = [1, 11, 7, { inflight: 1 }, ["@a"]]
    assert.deepStrictEqual(Envelope.decode(Envelope.encode(ping)), ping)
    assert.isTrue(
      Envelope.isMalformed(Envelope.decode(Envelope.encode([1, 0, { ...info, heartbeat: { a: 1 } }] as never))),
    )
    assert.isTrue(Envelope.isMalformed(Envelope.decode(Envelope.encode([1, 12, 7, {}, [1]] as never))))
  })
})

// ---- nodes --------------------------------------------------------------------------------------------------------

/** Fast settings so that in-process tests detect in a fraction of a second. */
const fast: NodeOptions = {
  liveness: { heartbeatInterval: 50, heartbeatTimeout: 400, reviveAfter: 200 },
}

const zmqNode = (options: NodeOptions = {}) =>
  Effect.flatMap(ZmqTransport.make({}), (transport) =>
    Node.make({ ...fast, ...options }).pipe(Effect.provideService(Transport, transport)),
  )

/**
 * An emulated peer on a raw transport, to control exactly what it answers: it answers HELLO (announcing
 * `heartbeat` settings) and, while `answering`, PINGs; requests are held (never answered) unless `replying`.
 */
const fakePeer = (id: string, heartbeat?: Liveness.HeartbeatSettings, options: { readonly udp?: boolean } = {}) =>
  Effect.gen(function* () {
    const transport: TransportShape = yield* ZmqTransport.make({})
    const endpoint = yield* transport.bind("tcp://127.0.0.1:*")
    const state = { answering: true, replying: false, requests: 0, udpAnswering: true, udpProbes: 0 }
    // Optionally a UDP socket answering liveness probes (while `udpAnswering`), announced in WELCOME.
    const udp = options.udp === true ? Dgram.createSocket("udp4") : undefined
    if (udp !== undefined) {
      yield* Effect.promise(() => new Promise<void>((resolve) => udp.bind(0, "127.0.0.1", resolve)))
      yield* Effect.addFinalizer(() => Effect.sync(() => udp.close()))
      udp.on("message", (bytes, from) => {
        const envelope = Envelope.decode(bytes)
        if (Envelope.isMalformed(envelope) || envelope[1] !== Envelope.Kind.Ping) return
        state.udpProbes++
        if (state.udpAnswering)
          udp.send(Envelope.encode([1, Envelope.Kind.Pong, envelope[2], {}]), from.port, from.address)
      })
    }
    const settings = udp === undefined ? heartbeat : { intervalMs: 50, timeoutMs: 400, udpPort: udp.address().port }
    const info: Envelope.NodeInfo = {
      id,
      services: ["Calculator"],
      actors: [],
      endpoints: [endpoint],
      meta: {},
      ...(settings === undefined ? {} : { heartbeat: settings }),
    }
    const loop = async () => {
      for (;;) {
        let received = transport.pollReceived()
        while (received !== undefined) {
          for (const payload of received.payloads) {
            const envelope = Envelope.decode(payload)
            if (Envelope.isMalformed(envelope)) continue
            const reply = (e: Envelope.Envelope) => transport.offer(received!.peer.id, Envelope.encode(e))
            if (envelope[1] === Envelope.Kind.Hello) reply([1, Envelope.Kind.Welcome, info])
            if (envelope[1] === Envelope.Kind.Ping && state.answering) reply([1, Envelope.Kind.Pong, envelope[2], {}])
            if (envelope[1] === Envelope.Kind.Request) {
              state.requests++
              if (state.replying) reply([1, Envelope.Kind.Reply, envelope[2], `${id}`])
            }
          }
          received = transport.pollReceived()
        }
        if (!(await transport.awaitReceived())) return
      }
    }
    yield* Effect.forkScoped(Effect.promise(loop))
    return { endpoint, state }
  })

const waitFor = (what: string, predicate: () => boolean, timeoutMs = 5000) =>
  Effect.gen(function* () {
    const until = Date.now() + timeoutMs
    while (!predicate()) {
      if (Date.now() > until) return yield* Effect.die(new Error(`timed out waiting for ${what}`))
      yield* Effect.sleep(10)
    }
  })

const stateOf = (node: Node.NodeShape, endpoint: string) =>
  node.remotes().find((remote) => remote.endpoint === endpoint)?.liveness.state

describe("liveness of connected nodes", () => {
  it.live("health ping: round trip and load from a node; deadline_exceeded from one whose loop does not answer", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const server = yield* zmqNode({ id: "pinged" })
        const client = yield* zmqNode({ id: "pinger" })
        const result = yield* client.ping({ endpoint: server.endpoints()[0]! }, { timeout: "2 seconds" })
        assert.isAbove(result.rttMs, 0)
        assert.isBelow(result.rttMs, 2000)
        assert.strictEqual(result.nodeId, "pinged")
        assert.strictEqual(result.load.inflight, 0)
        assert.isNumber(result.load.eventLoopDelayMs)
        assert.strictEqual(result.load.mailbox, 0)
        const byId = yield* client.ping({ node: "pinged" })
        assert.strictEqual(byId.nodeId, "pinged")
        const mute = yield* fakePeer("mute")
        mute.state.answering = false
        const error = yield* Effect.flip(client.ping({ endpoint: mute.endpoint }, { timeout: 200 }))
        assert.strictEqual(error.code, "deadline_exceeded")
        const unknown = yield* Effect.flip(client.ping({ node: "nobody" }))
        assert.strictEqual(unknown.code, "unavailable")
        assert.isAbove(client.metrics().pongsReceived, 1)
      }),
    ),
  )

  it.live(
    "a peer that stops answering is declared dead: in-flight calls fail unavailable at once, the watch fires, routing moves on",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const frozen = yield* fakePeer("frozen")
          const healthy = yield* fakePeer("healthy")
          healthy.state.replying = true
          const client = yield* zmqNode({ id: "caller" })
          yield* client.connect(frozen.endpoint)
          yield* client.connect(healthy.endpoint)
          const changes = yield* Effect.forkScoped(
            Stream.runCollect(
              Stream.take(
                Stream.filter(client.peerChanges, (c) => c.to === "dead"),
                1,
              ),
            ),
          )
          const watch = yield* Effect.forkScoped(client.watch({ node: "frozen" }))
          yield* waitFor("both alive", () => client.remotes().every((r) => r.liveness.state === "alive"))
          // A call held by the frozen peer (its deadline is far away).
          const held = yield* Effect.forkScoped(
            Effect.flip(client.client(Calculator, { node: "frozen" }).sleep({ ms: 1 }, { timeout: "30 seconds" })),
          )
          yield* waitFor("the held call to arrive", () => frozen.state.requests === 1)
          const stoppedAt = Date.now()
          frozen.state.answering = false
          const error = (yield* Fiber.join(held)) as RpcError
          const failedAfter = Date.now() - stoppedAt
          assert.strictEqual(error.code, "unavailable")
          assert.strictEqual(error.reason, "peer-dead")
          // 400 ms timeout + last interval + check period, with slack for a loaded machine.
          assert.isBelow(failedAfter, 1500)
          const notice = yield* Fiber.join(watch)
          assert.strictEqual(notice.reason, "Dead")
          assert.strictEqual(notice.nodeId, "frozen")
          const [change] = yield* Fiber.join(changes)
          assert.strictEqual(change?.nodeId, "frozen")
          assert.strictEqual(stateOf(client, frozen.endpoint), "dead")
          // New calls: by name they go to the healthy instance; to the dead one they fail fast.
          for (let i = 0; i < 20; i++) assert.strictEqual(yield* client.client(Calculator).sleep({ ms: 1 }), "healthy")
          const direct = (yield* Effect.flip(
            client.client(Calculator, { node: "frozen" }).sleep({ ms: 1 }),
          )) as RpcError
          assert.strictEqual(direct.code, "unavailable")
          const explicit = yield* Effect.flip(client.client(Calculator, { endpoint: frozen.endpoint }).sleep({ ms: 1 }))
          assert.strictEqual((explicit as RpcError).reason, "peer-dead")
          assert.strictEqual(frozen.state.requests, 1)
          // Answering again: accepted back after steady answers, and stays alive.
          frozen.state.answering = true
          yield* waitFor("the frozen peer to come back", () => stateOf(client, frozen.endpoint) === "alive")
          assert.strictEqual(client.metrics().peersDead, 1)
          assert.strictEqual(client.metrics().peersRevived, 1)
          yield* Effect.sleep(500)
          assert.strictEqual(client.metrics().peersDead, 1)
          // Watching a dead or unknown node answers at once.
          const unknown = yield* client.watch({ node: "nobody" })
          assert.strictEqual(unknown.reason, "Unknown")
        }),
      ),
  )

  it.live("a peer silent on its connection but answering UDP probes is not declared dead (unless probes are off)", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const stalled = yield* fakePeer("stalled", undefined, { udp: true })
        const withProbes = yield* zmqNode({ id: "prober" })
        const withoutProbes = yield* zmqNode({
          id: "blind",
          liveness: { heartbeatInterval: 50, heartbeatTimeout: 400, datagramProbes: false },
        })
        yield* withProbes.connect(stalled.endpoint)
        yield* withoutProbes.connect(stalled.endpoint)
        yield* waitFor("both links alive", () => stateOf(withProbes, stalled.endpoint) === "alive")
        yield* waitFor("both links alive", () => stateOf(withoutProbes, stalled.endpoint) === "alive")
        // The connection goes silent (as a lossy TCP link does for seconds); the process still answers datagrams.
        stalled.state.answering = false
        yield* waitFor("the link without probes to be dead", () => stateOf(withoutProbes, stalled.endpoint) === "dead")
        yield* Effect.sleep(1200)
        assert.notStrictEqual(stateOf(withProbes, stalled.endpoint), "dead")
        assert.isAbove(stalled.state.udpProbes, 10)
        // Probes only during silences: (almost) none while the connection answers. One or two may still go out
        // when a loaded machine delays a PONG past half the interval, against more than 10 in a real silence.
        stalled.state.answering = true
        yield* Effect.sleep(300)
        const probes = stalled.state.udpProbes
        yield* Effect.sleep(500)
        assert.isAtMost(stalled.state.udpProbes - probes, 2)
        // Silent on both paths (frozen, partitioned): dead within the bound.
        stalled.state.answering = false
        stalled.state.udpAnswering = false
        yield* waitFor("the peer to be dead", () => stateOf(withProbes, stalled.endpoint) === "dead", 3000)
      }),
    ),
  )

  it.live("this process's own stall (its event loop blocked 1.5 s) does not make its peers dead", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const server = yield* zmqNode({ id: "patient-server" })
        const client = yield* zmqNode({ id: "patient-client" })
        yield* client.connect(server.endpoints()[0]!)
        const endpoint = server.endpoints()[0]!
        yield* waitFor("the server to be alive", () => stateOf(client, endpoint) === "alive")
        // Both nodes share this event loop: nobody answers and nobody checks while it is blocked.
        const until = Date.now() + 1500
        while (Date.now() < until) {
          // busy
        }
        yield* Effect.sleep(300)
        assert.strictEqual(client.metrics().peersDead, 0)
        assert.strictEqual(stateOf(client, endpoint), "alive")
      }),
    ),
  )

  it.live("a suspect instance is avoided while a live one exists", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const slow = yield* fakePeer("slow")
        const fine = yield* fakePeer("fine")
        slow.state.replying = true
        fine.state.replying = true
        // Long timeout: the slow peer stays suspect (silent past half the bound) without dying.
        const client = yield* zmqNode({
          id: "router",
          liveness: { heartbeatInterval: 50, heartbeatTimeout: 4000 },
        })
        yield* client.connect(slow.endpoint)
        yield* client.connect(fine.endpoint)
        yield* waitFor("both alive", () => client.remotes().every((r) => r.liveness.state === "alive"))
        slow.state.answering = false
        yield* waitFor("the slow peer to be suspect", () => stateOf(client, slow.endpoint) === "suspect")
        const before = slow.state.requests
        for (let i = 0; i < 20; i++) assert.strictEqual(yield* client.client(Calculator).sleep({ ms: 1 }), "fine")
        assert.strictEqual(slow.state.requests, before)
        // Only a suspect instance left: it is still used.
        fine.state.answering = false
        yield* client.disconnect(fine.endpoint)
        assert.strictEqual(yield* client.client(Calculator).sleep({ ms: 1 }), "slow")
      }),
    ),
  )

  it.live("heartbeat settings are reconciled (larger timeout) or refused at the handshake with a clear error", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const client = yield* zmqNode({ id: "strict" })
        const relaxed = yield* fakePeer("relaxed", { intervalMs: 100, timeoutMs: 3000 })
        yield* client.connect(relaxed.endpoint)
        yield* waitFor("the link to be checked", () => stateOf(client, relaxed.endpoint) === "alive")
        const remote = client.remotes().find((r) => r.endpoint === relaxed.endpoint)!
        assert.strictEqual(remote.liveness.boundMs >= 3000, true)
        const flappy = yield* fakePeer("flappy", { intervalMs: 500, timeoutMs: 600 })
        const refused = yield* Effect.flip(client.connect(flappy.endpoint))
        assert.strictEqual(refused.code, "invalid_argument")
        assert.include(refused.message, "would flap")
        const notice = yield* client.watch({ endpoint: flappy.endpoint })
        assert.strictEqual(notice.reason, "Refused")
        // Inbound: a HELLO with such settings is answered FAILURE id 0 and never WELCOMEd.
        const server = yield* zmqNode({ id: "server" })
        const raw = yield* ZmqTransport.make({})
        const peer = yield* raw.connect(server.endpoints()[0]!)
        const hello: Envelope.Hello = [
          1,
          0,
          {
            id: "x",
            services: [],
            actors: [],
            endpoints: [],
            meta: {},
            heartbeat: { intervalMs: 500, timeoutMs: 600 },
          },
        ]
        raw.offer(peer.id, Envelope.encode(hello))
        const answer = yield* Stream.runHead(raw.received)
        const decoded = Envelope.decode(answer._tag === "Some" ? answer.value.payloads[0]! : new Uint8Array())
        assert.deepStrictEqual((decoded as Envelope.Failure).slice(1, 4), [4, 0, "invalid_argument"])
      }),
    ),
  )

  it.live("death watch of actors: ActorStopped when the node stops serving it, Dead with its node", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const host = yield* zmqNode({ id: "host" })
        const Pet = Contract.make("Pet", {
          name: Contract.unary({ payload: Schema.Struct({}), success: Schema.String }),
        })
        const stop = yield* Effect.forkScoped(
          Effect.scoped(
            Effect.gen(function* () {
              yield* host.serve(Pet, { name: () => Effect.succeed("rex") }, { address: "@rex" })
              yield* Effect.never
            }),
          ),
        )
        const watcher = yield* zmqNode({ id: "watcher" })
        const ref = { _tag: "ActorRef" as const, name: "rex", node: "host", endpoints: host.endpoints() }
        const remoteWatch = yield* Effect.forkScoped(watcher.watch(ref))
        const localWatch = yield* Effect.forkScoped(host.watch(ref))
        const missing = yield* watcher.watch({ ...ref, name: "nobody" })
        assert.strictEqual(missing.reason, "ActorStopped")
        yield* Effect.sleep(200)
        assert.isUndefined(remoteWatch.pollUnsafe())
        const stoppedAt = Date.now()
        yield* Fiber.interrupt(stop)
        const remote = yield* Fiber.join(remoteWatch)
        assert.strictEqual(remote.reason, "ActorStopped")
        assert.strictEqual(remote.actor, "@rex")
        assert.isBelow(Date.now() - stoppedAt, 1000)
        const local = yield* Fiber.join(localWatch)
        assert.strictEqual(local.reason, "ActorStopped")
        const noEndpoint = yield* Effect.flip(watcher.watch({ ...ref, node: "elsewhere", endpoints: [] }))
        assert.strictEqual(noEndpoint.code, "invalid_argument")
      }),
    ),
  )
})

describe("circuit breaker and concurrency limit per target", () => {
  const Flaky = Contract.make("Flaky", {
    work: Contract.unary({ payload: Schema.Struct({}), success: Schema.String }),
    refuse: Contract.unary({ payload: Schema.Struct({ n: Schema.Number }), error: DivisionByZero }),
  })

  it.live(
    "repeated internal failures open the circuit: refused at once (counted), routed elsewhere, closed after a trial",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          let broken = true
          const bad = yield* zmqNode({ id: "bad" })
          yield* bad.serve(Flaky, {
            work: () => (broken ? Effect.die(new Error("broken dependency")) : Effect.succeed("bad")),
            refuse: ({ n }) => Effect.fail(new DivisionByZero({ dividend: n })),
          })
          const client = yield* zmqNode({
            id: "client",
            circuitBreaker: { failureThreshold: 3, openFor: 300 },
          })
          yield* client.connect(bad.endpoints()[0]!)
          const flaky = client.client(Flaky)
          for (let i = 0; i < 3; i++)
            assert.strictEqual(((yield* Effect.flip(flaky.work({}))) as RpcError).code, "internal")
          const refused = (yield* Effect.flip(flaky.work({}))) as RpcError
          assert.strictEqual(refused.code, "unavailable")
          assert.strictEqual(refused.reason, "circuit-open")
          assert.strictEqual(bad.metrics().requestsServed, 3)
          assert.strictEqual(client.metrics().circuitOpened, 1)
          assert.strictEqual(client.metrics().circuitRejected, 1)
          assert.strictEqual(client.remotes()[0]!.liveness.circuit, "open")
          // Another instance: calls by name go there while the circuit is open.
          const good = yield* zmqNode({ id: "good" })
          yield* good.serve(Flaky, { work: () => Effect.succeed("good"), refuse: () => Effect.void })
          yield* client.connect(good.endpoints()[0]!)
          for (let i = 0; i < 10; i++) assert.strictEqual(yield* flaky.work({}), "good")
          assert.strictEqual(bad.metrics().requestsServed, 3)
          // Fixed meanwhile: after openFor, a trial call to it succeeds and closes the circuit.
          broken = false
          yield* Effect.sleep(350)
          assert.strictEqual(yield* client.client(Flaky, { node: "bad" }).work({}), "bad")
          assert.strictEqual(client.remotes().find((r) => r.info?.id === "bad")!.liveness.circuit, "closed")
          // Application errors and invalid arguments never open it.
          const toBad = client.client(Flaky, { node: "bad" })
          for (let i = 0; i < 10; i++) assert.instanceOf(yield* Effect.flip(toBad.refuse({ n: i })), DivisionByZero)
          for (let i = 0; i < 10; i++) {
            const invalid = yield* Effect.flip(toBad.refuse({ n: "x" } as unknown as { n: number }))
            assert.strictEqual((invalid as RpcError).code, "invalid_argument")
          }
          assert.strictEqual(client.remotes().find((r) => r.info?.id === "bad")!.liveness.circuit, "closed")
          // `circuitBreaker: false`: no breaker at all.
          const off = yield* zmqNode({ id: "off", circuitBreaker: false })
          yield* off.connect(bad.endpoints()[0]!)
          broken = true
          for (let i = 0; i < 8; i++) {
            assert.strictEqual(((yield* Effect.flip(off.client(Flaky).work({}))) as RpcError).code, "internal")
          }
        }),
      ),
  )

  it.live("the concurrency limit refuses beyond maxCallsPerTarget with overloaded, or routes to another instance", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const first = yield* zmqNode({ id: "first" })
        yield* first.serve(Calculator, {
          add: ({ a, b }) => Effect.succeed(a + b),
          divide: ({ a, b }) => Effect.succeed(a / b),
          sleep: ({ ms }) => Effect.as(Effect.sleep(ms), "first"),
        })
        const client = yield* zmqNode({ id: "limited", maxCallsPerTarget: 2 })
        yield* client.connect(first.endpoints()[0]!)
        const calculator = client.client(Calculator)
        const running = yield* Effect.forkScoped(
          Effect.all([calculator.sleep({ ms: 300 }), calculator.sleep({ ms: 300 })], { concurrency: 2 }),
        )
        yield* waitFor("two calls in flight", () => client.remotes()[0]!.outstanding === 2)
        const full = (yield* Effect.flip(calculator.sleep({ ms: 1 }))) as RpcError
        assert.strictEqual(full.code, "overloaded")
        assert.strictEqual(full.reason, "concurrency-limit")
        assert.strictEqual(client.metrics().concurrencyRejected, 1)
        const second = yield* zmqNode({ id: "second" })
        yield* second.serve(Echo, { echo: ({ text }) => Effect.succeed(text) })
        yield* second.serve(Calculator, {
          add: ({ a, b }) => Effect.succeed(a + b),
          divide: ({ a, b }) => Effect.succeed(a / b),
          sleep: ({ ms }) => Effect.as(Effect.sleep(ms), "second"),
        })
        yield* client.connect(second.endpoints()[0]!)
        assert.strictEqual(yield* calculator.sleep({ ms: 1 }), "second")
        assert.deepStrictEqual(yield* Fiber.join(running), ["first", "first"])
      }),
    ),
  )

  it.live("power-of-two-choices spreads calls over live instances", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const served: Record<string, number> = {}
        const client = yield* zmqNode({ id: "p2c", routing: "power-of-two-choices" })
        for (const id of ["a", "b", "c"]) {
          const node = yield* zmqNode({ id })
          yield* node.serve(Calculator, {
            add: ({ a, b }) => Effect.succeed(a + b),
            divide: ({ a, b }) => Effect.succeed(a / b),
            sleep: ({ ms }) =>
              Effect.sync(() => {
                served[id] = (served[id] ?? 0) + 1
              }).pipe(Effect.andThen(Effect.sleep(ms)), Effect.as(id)),
          })
          yield* client.connect(node.endpoints()[0]!)
        }
        yield* Effect.all(
          Array.from({ length: 60 }, () => client.client(Calculator).sleep({ ms: 20 })),
          { concurrency: 12 },
        )
        assert.deepStrictEqual(Object.keys(served).sort(), ["a", "b", "c"])
        for (const count of Object.values(served)) assert.isAbove(count, 5)
      }),
    ),
  )
})

describe("Promise facade", () => {
  it.live("ping and watch", () =>
    Effect.promise(async () => {
      const { start } = await import("../src/promise.ts")
      const server = await start({ id: "p-server", ...fast })
      const client = await start({ id: "p-client", ...fast })
      try {
        const endpoint = server.endpoints()[0]!
        const pong = await client.ping({ endpoint }, { timeoutMs: 2000 })
        assert.strictEqual(pong.nodeId, "p-server")
        const controller = new AbortController()
        const aborted = client.watch({ endpoint }, { signal: controller.signal })
        controller.abort()
        const abortError = await aborted.catch((error: unknown) => error)
        assert.strictEqual((abortError as DOMException).name, "AbortError")
        const watch = client.watch({ node: "p-server" })
        await server.close()
        const notice = await watch
        assert.strictEqual(notice.reason, "Dead")
        assert.isTrue(RpcError.is(await client.ping({ node: "p-server" }, { timeoutMs: 100 }).catch((e) => e)))
      } finally {
        await client.close()
        await server.close()
      }
    }),
  )
})
