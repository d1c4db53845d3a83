import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Schema } from "effect"
import * as Actor from "../src/Actor.ts"
import * as ActorRef from "../src/ActorRef.ts"
import * as Admin from "../src/Admin.ts"
import type { CallContext } from "../src/CallContext.ts"
import * as Contract from "../src/Contract.ts"
import * as Log from "../src/Log.ts"
import * as Metrics from "../src/Metrics.ts"
import * as Prometheus from "../src/Prometheus.ts"
import { RpcError } from "../src/RpcError.ts"
import * as TraceContext from "../src/TraceContext.ts"
import { Calculator, DivisionByZero, Relay, zmqNode } from "./fixtures.ts"

/** A pino destination that keeps the JSON lines it is given. */
const captureLogs = () => {
  const lines: Array<Record<string, unknown>> = []
  return { lines, destination: { write: (line: string) => void lines.push(JSON.parse(line)) } }
}

const Faulty = Contract.make("Faulty", {
  crash: Contract.unary({ payload: Schema.Struct({}), success: Schema.Number }),
})

const serveCalculator = (node: Effect.Success<ReturnType<typeof zmqNode>>, seen: Array<CallContext> = []) =>
  node.serve(Calculator, {
    add: ({ a, b }, context) =>
      Effect.gen(function* () {
        seen.push(context)
        yield* Effect.log("adding", { a, b })
        return a + b
      }),
    divide: ({ a, b }) => (b === 0 ? Effect.fail(new DivisionByZero({ dividend: a })) : Effect.succeed(a / b)),
    sleep: ({ ms }) => Effect.as(Effect.sleep(ms), `slept ${ms}`),
  })

describe("trace context", () => {
  it.live("a handler's outgoing calls continue its trace across three nodes (new span per hop)", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const c = yield* zmqNode({ id: "c" })
        const atC: Array<CallContext> = []
        yield* serveCalculator(c, atC)
        const b = yield* zmqNode({ id: "b" })
        yield* b.connect(c.endpoints()[0]!)
        const atB: Array<CallContext> = []
        const calculator = b.client(Calculator)
        // The relay's handler calls c, inside a forked child fiber too: both continue the trace.
        yield* b.serve(Relay, {
          add: (payload, context) =>
            Effect.gen(function* () {
              atB.push(context)
              const first = yield* calculator.add(payload)
              const second = yield* Effect.forkChild(calculator.add(payload)).pipe(Effect.flatMap(Fiber.join))
              return first === second ? first : -1
            }),
        })
        const a = yield* zmqNode({ id: "a" })
        yield* a.connect(b.endpoints()[0]!)
        const relay = a.client(Relay)

        // With a traceparent from the caller: the same trace id on every hop, a new span id per call.
        const root = TraceContext.make()
        assert.strictEqual(yield* relay.add({ a: 1, b: 2 }, { traceparent: root }), 3)
        const rootTrace = TraceContext.parse(root)!
        const hopB = TraceContext.parse(atB[0]!.traceparent)!
        assert.strictEqual(hopB.traceId, rootTrace.traceId)
        assert.notStrictEqual(hopB.spanId, rootTrace.spanId)
        assert.strictEqual(atC.length, 2)
        const spans = new Set([rootTrace.spanId, hopB.spanId])
        for (const call of atC) {
          const hopC = TraceContext.parse(call.traceparent)!
          assert.strictEqual(hopC.traceId, rootTrace.traceId)
          assert.isFalse(spans.has(hopC.spanId), "every call gets its own span id")
          spans.add(hopC.spanId)
        }

        // Without one: the first node that serves the call starts a trace, and its calls continue it.
        assert.strictEqual(yield* relay.add({ a: 2, b: 2 }), 4)
        const started = TraceContext.parse(atB[1]!.traceparent)!
        assert.isUndefined(atB[1]!.headers.tp, "the caller sent no traceparent")
        assert.notStrictEqual(started.traceId, rootTrace.traceId)
        assert.strictEqual(TraceContext.parse(atC[2]!.traceparent)!.traceId, started.traceId)
        assert.strictEqual(atC[2]!.headers.tp, atC[2]!.traceparent, "the trace travelled in header tp")
      }),
    ),
  )
})

describe("logs", () => {
  it.live("node logs carry the node id; handler logs carry the call's method, call id and trace id", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const logs = captureLogs()
        const server = yield* zmqNode({ id: "logged", log: { level: "info", destination: logs.destination } })
        yield* serveCalculator(server)
        yield* server.serve(Faulty, { crash: () => Effect.die(new Error("boom")) })
        const client = yield* zmqNode({ id: "client" })
        yield* client.connect(server.endpoints()[0]!)
        const root = TraceContext.make()
        yield* client.client(Calculator).add({ a: 1, b: 2 }, { traceparent: root })
        const crash = yield* Effect.flip(client.client(Faulty).crash({}))
        assert.strictEqual((crash as RpcError).code, "internal")

        const started = logs.lines.find((line) => line.msg === "node started")
        assert.strictEqual(started?.node, "logged")
        assert.deepStrictEqual(started?.endpoints, server.endpoints())

        const adding = logs.lines.find((line) => line.msg === "adding")
        assert.isDefined(adding, JSON.stringify(logs.lines))
        assert.strictEqual(adding!.node, "logged")
        assert.strictEqual(adding!.method, "Calculator/add")
        assert.strictEqual(adding!.caller, "client")
        assert.strictEqual(typeof adding!.callId, "number")
        assert.strictEqual(adding!.traceId, TraceContext.parse(root)!.traceId)
        assert.deepStrictEqual(adding!.data, { a: 1, b: 2 })
        assert.strictEqual(adding!.level, 30)

        const defect = logs.lines.find((line) => line.msg === "handler died with a defect")
        assert.strictEqual(defect?.level, 50)
        assert.strictEqual(defect?.node, "logged")
        assert.strictEqual(defect?.method, "Faulty/crash")
        assert.match(String(defect?.err), /boom/)
        assert.match(String(defect?.traceId), /^[0-9a-f]{32}$/)
      }),
    ),
  )

  it.live("an actor's logs carry its path, and its outgoing calls continue the trace of the message", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const logs = captureLogs()
        const backend = yield* zmqNode({ id: "backend" })
        const atBackend: Array<CallContext> = []
        yield* serveCalculator(backend, atBackend)
        const server = yield* zmqNode({ id: "actors", log: { level: "info", destination: logs.destination } })
        yield* server.connect(backend.endpoints()[0]!)
        const calculator = server.client(Calculator)
        const Summer = Contract.make("Summer", {
          add: Contract.unary({ payload: Schema.Struct({ n: Schema.Number }), success: Schema.Number }),
        })
        const behavior = Actor.make(Summer, {
          initialState: 0,
          handlers: {
            add: ({ n }, context) =>
              Effect.gen(function* () {
                yield* Effect.log("summing")
                const total = yield* calculator.add({ a: context.state, b: n })
                context.setState(total)
                return total
              }),
          },
        })
        const ref = yield* Actor.spawnOn(server, behavior, "summer-1")
        const client = yield* zmqNode({ id: "client" })
        const root = TraceContext.make()
        assert.strictEqual(yield* ActorRef.ask(client, ref).add({ n: 5 }, { traceparent: root }), 5)
        const line = logs.lines.find((l) => l.msg === "summing")
        assert.strictEqual(line?.node, "actors")
        assert.strictEqual(line?.actor, "@summer-1")
        assert.strictEqual(line?.method, "@summer-1/add")
        assert.strictEqual(line?.traceId, TraceContext.parse(root)!.traceId)
        assert.strictEqual(TraceContext.parse(atBackend[0]!.traceparent)!.traceId, TraceContext.parse(root)!.traceId)
      }),
    ),
  )

  it.live("pretty output: human-readable lines instead of JSON", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const text: Array<string> = []
        yield* zmqNode({
          id: "pretty",
          log: { level: "info", pretty: true, destination: { write: (line: string) => void text.push(line) } },
        })
        const started = text.find((line) => line.includes("node started"))
        assert.isDefined(started, text.join(""))
        assert.match(started!, /INFO/)
        assert.include(started!, "pretty")
        assert.throws(() => JSON.parse(started!))
      }),
    ),
  )

  it.live("quiet by default: a healthy node writes nothing at the default level", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const logs = captureLogs()
        const previous = process.env.ZACTOR_LOG_LEVEL
        delete process.env.ZACTOR_LOG_LEVEL
        const server = yield* zmqNode({ id: "quiet", log: { destination: logs.destination } }).pipe(
          Effect.ensuring(
            Effect.sync(() => {
              if (previous !== undefined) process.env.ZACTOR_LOG_LEVEL = previous
            }),
          ),
        )
        yield* serveCalculator(server)
        const client = yield* zmqNode({ id: "client" })
        yield* client.connect(server.endpoints()[0]!)
        for (let i = 0; i < 20; i++) yield* client.client(Calculator).add({ a: i, b: 1 })
        assert.deepStrictEqual(logs.lines, [])
        assert.strictEqual(server.logger.level, "warn")
      }),
    ),
  )
})

describe("log format", () => {
  const terminal: Log.FormatEnvironment = { stderrIsTTY: true, nodeEnv: undefined }
  const pipe: Log.FormatEnvironment = { stderrIsTTY: false, nodeEnv: undefined }

  it("pretty at a terminal outside production, JSON otherwise; an explicit option wins", () => {
    assert.isTrue(Log.isPretty(undefined, terminal))
    assert.isTrue(Log.isPretty({}, { stderrIsTTY: true, nodeEnv: "development" }))
    assert.isFalse(Log.isPretty(undefined, { stderrIsTTY: true, nodeEnv: "production" }))
    assert.isFalse(Log.isPretty(undefined, pipe))
    assert.isFalse(Log.isPretty(undefined, { stderrIsTTY: false, nodeEnv: "development" }))
    // Lines sent to a destination of the application's are for a program: JSON, even from a terminal.
    assert.isFalse(Log.isPretty({ destination: captureLogs().destination }, terminal))
    assert.isTrue(Log.isPretty({ pretty: true }, { stderrIsTTY: false, nodeEnv: "production" }))
    assert.isFalse(Log.isPretty({ pretty: false }, terminal))
  })

  it("the logger writes what the decision says: pretty text or JSON lines", () => {
    const written: Array<string> = []
    const destination = { write: (line: string) => void written.push(line) }
    Log.make({ level: "info", pretty: true, destination }, { node: "n1" }).info("hello")
    Log.make({ level: "info", destination }, { node: "n1" }).info("hello")
    const [pretty, json] = written
    assert.match(pretty!, /INFO.*hello/)
    assert.throws(() => JSON.parse(pretty!))
    assert.include(JSON.parse(json!), { msg: "hello", node: "n1", level: 30 })
  })
})

describe("metrics", () => {
  it.live("snapshots hold latency histograms, failures by code and dead letters by reason", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const server = yield* zmqNode({ id: "server" })
        yield* serveCalculator(server)
        const client = yield* zmqNode({ id: "client" })
        yield* client.connect(server.endpoints()[0]!)
        const calculator = client.client(Calculator)
        for (let i = 0; i < 10; i++) yield* calculator.add({ a: i, b: 1 })
        yield* Effect.flip(calculator.divide({ a: 1, b: 0 }))
        yield* Effect.flip(calculator.sleep({ ms: 2000 }, { timeout: 50 }))
        const unknown = Contract.make("Nowhere", {
          go: Contract.unary({ payload: Schema.Struct({}) }),
        })
        yield* Effect.flip(client.client(unknown, { endpoint: server.endpoints()[0]! }).go({}))

        const atClient = client.metricsSnapshot()
        assert.strictEqual(atClient.node, "client")
        assert.strictEqual(atClient.latency.call.count, 12, "10 adds, 1 divide, 1 not_found")
        assert.strictEqual(atClient.errors.call.application, 1)
        assert.strictEqual(atClient.errors.call.not_found, 1)
        assert.strictEqual(atClient.errors.call.deadline_exceeded, 1)
        assert.isAbove(atClient.transport.bytesSent!, 0)
        assert.strictEqual(atClient.peers.length, 1)
        assert.strictEqual(atClient.peers[0]!.node, "server")
        const p50 = Metrics.quantile(atClient.latency.call, 0.5)!
        assert.isAbove(p50, 0)
        assert.isBelow(p50, 1000)

        yield* Effect.sleep(100) // the sleep handler is stopped at its deadline on the server
        const atServer = server.metricsSnapshot()
        assert.strictEqual(atServer.counters.requestsServed, 12)
        assert.strictEqual(atServer.latency.serve.count, 12)
        assert.strictEqual(atServer.errors.serve.application, 1)
        assert.strictEqual(atServer.errors.serve.not_found, 1)
        assert.strictEqual(atServer.deadLetters.unroutable, 1)
        // The snapshot is what the admin service sends: it must satisfy its own schema.
        Schema.decodeUnknownSync(Metrics.Snapshot)(atServer)
      }),
    ),
  )

  it.live("actor mailbox depths: totals, the deepest, and the five deepest by actor, in snapshots and scrapes", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const Gate = Contract.make("Gate", {
          pass: Contract.unary({ payload: Schema.Struct({ i: Schema.Number }), success: Schema.Number }),
        })
        const open = yield* Deferred.make<void>()
        // Every message waits for the gate: the first one holds the actor's turn, the others queue behind it.
        const behavior = Actor.make(Gate, {
          initialState: undefined,
          handlers: { pass: ({ i }) => Effect.as(Deferred.await(open), i) },
        })
        const server = yield* zmqNode({ id: "mailboxes", metricsHttp: { port: 0 } })
        const client = yield* zmqNode({ id: "client" })
        // Messages sent to each actor: `busy` gets 8 (7 wait), `other` 3 (2 wait), `calm-1..5` 2 each (1 waits).
        const load: Array<readonly [string, number]> = [
          ["busy", 8],
          ["other", 3],
        ]
        for (let k = 1; k <= 5; k++) load.push([`calm-${k}`, 2])
        const asks: Array<Fiber.Fiber<number, unknown>> = []
        for (const [name, messages] of load) {
          const ref = yield* Actor.spawnOn(server, behavior, name)
          const gate = ActorRef.ask(client, ref)
          for (let i = 0; i < messages; i++) asks.push(yield* Effect.forkScoped(gate.pass({ i }, { timeout: 30_000 })))
        }
        const waiting = 7 + 2 + 5
        let snapshot = server.metricsSnapshot()
        for (let i = 0; i < 200 && snapshot.gauges.mailboxQueued !== waiting; i++) {
          yield* Effect.sleep(25)
          snapshot = server.metricsSnapshot()
        }
        assert.strictEqual(snapshot.gauges.mailboxQueued, waiting)
        assert.strictEqual(snapshot.gauges.mailboxMax, 7)
        assert.strictEqual(snapshot.gauges.mailboxBacklogged, 7)
        // Five named, deepest first, whatever the number of actors: the per-actor series stay bounded.
        assert.deepStrictEqual(
          snapshot.mailboxes.map(({ actor, depth }) => [actor.startsWith("@calm-") ? "@calm" : actor, depth]),
          [
            ["@busy", 7],
            ["@other", 2],
            ["@calm", 1],
            ["@calm", 1],
            ["@calm", 1],
          ],
        )
        Schema.decodeUnknownSync(Metrics.Snapshot)(snapshot)

        const text = yield* Effect.promise(() => fetch(server.metricsUrl()!).then((response) => response.text()))
        const lines = text.split("\n")
        assert.include(lines, `zactor_actor_mailbox_queued_messages{node="mailboxes"} ${waiting}`)
        assert.include(lines, 'zactor_actor_mailbox_max_depth{node="mailboxes"} 7')
        assert.include(lines, 'zactor_actors_backlogged{node="mailboxes"} 7')
        assert.include(lines, 'zactor_actor_mailbox_depth{node="mailboxes",actor="@busy"} 7')
        assert.include(lines, 'zactor_actor_mailbox_depth{node="mailboxes",actor="@other"} 2')
        assert.strictEqual(lines.filter((line) => line.startsWith("zactor_actor_mailbox_depth{")).length, 5)
        // The client's node has no actors: zero, no series by actor.
        assert.strictEqual(client.metricsSnapshot().gauges.mailboxQueued, 0)
        assert.deepStrictEqual(client.metricsSnapshot().mailboxes, [])

        yield* Deferred.succeed(open, undefined)
        const answers = yield* Effect.forEach(asks, Fiber.join)
        assert.strictEqual(answers.length, 8 + 3 + 10)
        const drained = server.metricsSnapshot()
        assert.strictEqual(drained.gauges.mailboxQueued, 0)
        assert.strictEqual(drained.gauges.mailboxMax, 0)
        assert.deepStrictEqual(drained.mailboxes, [])
      }),
    ),
  )

  it("renders the Prometheus text format: HELP/TYPE once per family, one sample per node", () => {
    const snapshot = (node: string, served: number): Metrics.Snapshot => ({
      node,
      at: 0,
      uptimeMs: 1500,
      counters: { requestsServed: served, retried: 2, somethingNew: 7 },
      transport: { bytesSent: 100, queuedMessages: 3 },
      gauges: { inflight: 1 },
      latency: {
        call: { boundsMs: [1, 10], counts: [0, 0, 0], sumMs: 0, count: 0 },
        serve: { boundsMs: [1, 10], counts: [2, 1, 1], sumMs: 40, count: 4 },
      },
      errors: { call: {}, serve: { not_found: 2 } },
      deadLetters: { expired: 1 },
      mailboxes: [{ actor: "@cart", depth: 4 }],
      peers: [{ endpoint: "tcp://x:1", node: "peer", outstanding: 0, connected: true, state: "alive", rttMs: 1.5 }],
    })
    const text = Prometheus.render([snapshot("a", 5), snapshot('b"q', 6)])
    const lines = text.split("\n")
    assert.strictEqual(lines.filter((line) => line === "# TYPE zactor_requests_served_total counter").length, 1)
    assert.include(lines, 'zactor_requests_served_total{node="a"} 5')
    assert.include(lines, 'zactor_requests_served_total{node="b\\"q"} 6')
    assert.include(lines, 'zactor_retries_total{node="a"} 2')
    assert.include(lines, 'zactor_something_new_total{node="a"} 7')
    assert.include(lines, 'zactor_serve_errors_total{node="a",code="not_found"} 2')
    assert.include(lines, 'zactor_dead_letters_total{node="a",reason="expired"} 1')
    assert.include(lines, "# TYPE zactor_serve_duration_seconds histogram")
    assert.include(lines, 'zactor_serve_duration_seconds_bucket{node="a",le="0.001"} 2')
    assert.include(lines, 'zactor_serve_duration_seconds_bucket{node="a",le="0.01"} 3')
    assert.include(lines, 'zactor_serve_duration_seconds_bucket{node="a",le="+Inf"} 4')
    assert.include(lines, 'zactor_serve_duration_seconds_sum{node="a"} 0.04')
    assert.include(lines, 'zactor_serve_duration_seconds_count{node="a"} 4')
    assert.include(lines, 'zactor_transport_queued_messages{node="a"} 3')
    assert.include(lines, "# TYPE zactor_transport_queued_messages gauge")
    assert.include(lines, 'zactor_peer_rtt_seconds{node="a",peer="peer"} 0.0015')
    assert.include(lines, 'zactor_actor_mailbox_depth{node="a",actor="@cart"} 4')
    assert.isTrue(text.endsWith("\n"))
  })

  it.live("a node serves its metrics over HTTP for Prometheus to scrape", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const server = yield* zmqNode({ id: "scraped", metricsHttp: { port: 0 } })
        yield* serveCalculator(server)
        const url = server.metricsUrl()
        assert.match(url ?? "", /^http:\/\/127\.0\.0\.1:\d+\/metrics$/)
        const client = yield* zmqNode({ id: "client" })
        yield* client.connect(server.endpoints()[0]!)
        for (let i = 0; i < 3; i++) yield* client.client(Calculator).add({ a: i, b: 1 })
        const response = yield* Effect.promise(() => fetch(url!))
        assert.strictEqual(response.status, 200)
        assert.strictEqual(response.headers.get("content-type"), Prometheus.CONTENT_TYPE)
        const text = yield* Effect.promise(() => response.text())
        assert.include(text, 'zactor_requests_served_total{node="scraped"} 3')
        assert.include(text, 'zactor_serve_duration_seconds_count{node="scraped"} 3')
        assert.match(text, /zactor_transport_bytes_received_total\{node="scraped"\} [1-9]\d*/)
        const missing = yield* Effect.promise(() => fetch(url!.replace("/metrics", "/other")))
        assert.strictEqual(missing.status, 404)
        // Off by default.
        assert.isUndefined(client.metricsUrl())
      }),
    ),
  )
})

describe("admin service", () => {
  it.live("describes the node and its contracts with JSON Schemas, and is not announced", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const server = yield* zmqNode({ id: "described", meta: { zone: "a" } })
        yield* serveCalculator(server)
        const client = yield* zmqNode({ id: "client" })
        const remote = yield* client.connect(server.endpoints()[0]!)
        assert.deepStrictEqual(remote.info?.services, ["Calculator"])
        const admin = client.client(Admin.Admin, { endpoint: server.endpoints()[0]! })
        const description = yield* admin.describe({})
        assert.strictEqual(description.node, "described")
        assert.deepStrictEqual(description.meta, { zone: "a" })
        assert.strictEqual(description.pid, process.pid)
        assert.deepStrictEqual(
          description.contracts.map((c) => c.name),
          ["Calculator"],
        )
        const add = description.contracts[0]!.methods.find((m) => m.name === "add")!
        assert.strictEqual(add.kind, "unary")
        assert.isTrue(add.idempotent)
        const payload = add.payload as { schema: { type: string; properties: Record<string, unknown> } }
        assert.strictEqual(payload.schema.type, "object")
        // Numbers are `number`, or the strings that stand for non-finite numbers in the JSON wire form.
        assert.include(JSON.stringify(payload.schema.properties.a), '"type":"number"')
        assert.isNotNull(add.success)
        const metrics = yield* admin.metrics({})
        assert.strictEqual(metrics.node, "described")
        assert.strictEqual(
          metrics.counters.requestsServed,
          2,
          "describe, and this call (counted as its handler starts)",
        )
      }),
    ),
  )

  it.live("untyped calls from a description: results, invalid payloads naming the field, application errors", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const server = yield* zmqNode({ id: "server" })
        yield* serveCalculator(server)
        const client = yield* zmqNode({ id: "client" })
        const target = { endpoint: server.endpoints()[0]! }
        const description = yield* client.client(Admin.Admin, target).describe({})
        const raw = client.client(Admin.contractOf(description.contracts[0]!), target) as Record<
          string,
          (payload: unknown) => Effect.Effect<unknown, unknown>
        >
        assert.strictEqual(yield* raw.add!({ a: 40, b: 2 }), 42)
        const invalid = yield* Effect.flip(raw.add!({ a: "forty", b: 2 }))
        assert.isTrue(RpcError.is(invalid))
        assert.strictEqual((invalid as RpcError).code, "invalid_argument")
        assert.match((invalid as RpcError).message, / at a: /)
        const failed = yield* Effect.flip(raw.divide!({ a: 1, b: 0 }))
        assert.deepStrictEqual(failed, { _tag: "DivisionByZero", dividend: 1 })
      }),
    ),
  )

  it.live("can be turned off", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const server = yield* zmqNode({ id: "private", admin: false })
        const client = yield* zmqNode({ id: "client" })
        const error = yield* Effect.flip(client.client(Admin.Admin, { endpoint: server.endpoints()[0]! }).describe({}))
        assert.strictEqual((error as RpcError).code, "not_found")
      }),
    ),
  )
})
