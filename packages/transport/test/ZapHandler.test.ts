import { assert, describe, it } from "@effect/vitest"
import { type Duration, Effect, Exit, Result, Scope } from "effect"
import * as zmq from "zeromq"
import * as Curve from "../src/Curve.ts"
import * as Z85 from "../src/internal/z85.ts"
import * as ZapHandler from "../src/ZapHandler.ts"

// Real sockets over tcp://127.0.0.1 in this process. Every wait is on a condition with a deadline; every socket
// has linger 0 and is closed when the test's scope closes.

/** A socket closed (linger 0) when the scope closes. */
const acquire = <S extends zmq.Socket>(make: () => S) =>
  Effect.acquireRelease(Effect.sync(make), (socket) => Effect.sync(() => socket.close()))

/** Records every monitor event of a socket, from now until it closes. */
const recordEvents = (socket: zmq.Socket): Array<zmq.Event> => {
  const events: Array<zmq.Event> = []
  void (async () => {
    try {
      for await (const event of socket.events) events.push(event)
    } catch {
      // The observer ends when the socket closes.
    }
  })()
  return events
}

/** Records every message a socket receives, from now until it closes. */
const recordMessages = (socket: zmq.Router | zmq.Dealer): Array<Array<Buffer>> => {
  const messages: Array<Array<Buffer>> = []
  void (async () => {
    try {
      for await (const message of socket) messages.push(message)
    } catch {
      // Receiving ends when the socket closes.
    }
  })()
  return messages
}

/** Polls `condition` every 5 ms until it holds, failing with `what` after `timeout`. */
const waitUntil = (what: string, condition: () => boolean, timeout: Duration.Input = "5 seconds") =>
  Effect.gen(function* () {
    while (!condition()) yield* Effect.sleep("5 millis")
  }).pipe(
    Effect.timeoutOrElse({
      duration: timeout,
      orElse: () => Effect.fail(new Error(`timed out waiting for ${what}`)),
    }),
  )

/** A CURVE server ROUTER bound on loopback, failing closed when no ZAP handler answers for `domain`. */
const curveServer = (keys: Curve.KeyPair, domain: string, context?: zmq.Context) =>
  Effect.gen(function* () {
    const router = yield* acquire(
      () =>
        new zmq.Router({
          linger: 0,
          curveServer: true,
          curveSecretKey: keys.secretKey,
          zapDomain: domain,
          zapEnforceDomain: true,
          ...(context === undefined ? {} : { context }),
        }),
    )
    const events = recordEvents(router)
    const messages = recordMessages(router)
    yield* Effect.promise(() => router.bind("tcp://127.0.0.1:*"))
    return { router, events, messages, endpoint: router.lastEndpoint ?? "" }
  })

/** A DEALER connected to `endpoint`: a CURVE client with `keys` when given, plaintext otherwise. */
const client = (endpoint: string, serverPublicKey: string, keys: Curve.KeyPair | undefined, context?: zmq.Context) =>
  Effect.gen(function* () {
    const dealer = yield* acquire(
      () =>
        new zmq.Dealer({
          linger: 0,
          reconnectInterval: 50,
          ...(keys === undefined
            ? {}
            : { curveServerKey: serverPublicKey, curvePublicKey: keys.publicKey, curveSecretKey: keys.secretKey }),
          ...(context === undefined ? {} : { context }),
        }),
    )
    const events = recordEvents(dealer)
    dealer.connect(endpoint)
    // The send waits for a completed handshake; if there never is one it is rejected when the socket closes.
    dealer.send("hello").catch(() => undefined)
    return { dealer, events }
  })

const hasEvent = (events: ReadonlyArray<zmq.Event>, type: zmq.EventType) => events.some((event) => event.type === type)

const decisionLog = () => {
  const decisions: Array<ZapHandler.ZapDecision> = []
  return { decisions, onDecision: (decision: ZapHandler.ZapDecision) => void decisions.push(decision) }
}

const allowOnly = (...keys: Array<string>) => {
  const allowed = new Set(keys)
  return (key: string) => allowed.has(key)
}

describe("ZapHandler", () => {
  const serverKeys = Curve.generateKeyPair()
  const goodClient = Curve.generateKeyPair()
  const badClient = Curve.generateKeyPair()

  it.live("admits an allowed CURVE client: messages flow", () =>
    Effect.gen(function* () {
      const domain = ZapHandler.makeDomain("test")
      const log = decisionLog()
      yield* ZapHandler.register(domain, allowOnly(goodClient.publicKey), log.onDecision)
      const server = yield* curveServer(serverKeys, domain)
      const dealer = yield* client(server.endpoint, serverKeys.publicKey, goodClient)

      yield* waitUntil("the message", () => server.messages.length > 0)
      assert.strictEqual(server.messages[0]?.[1]?.toString(), "hello")
      // Monitor events come on a socket of their own: the client's may be read after the server has the message.
      yield* waitUntil("the client's handshake event", () => hasEvent(dealer.events, "handshake"))
      assert.deepStrictEqual(log.decisions, [
        {
          domain,
          clientKey: goodClient.publicKey,
          allowed: true,
          address: "127.0.0.1",
          mechanism: "CURVE",
          statusCode: "200",
          statusText: "OK",
        },
      ])
    }),
  )

  it.live("refuses a CURVE client whose key is not allowed", () =>
    Effect.gen(function* () {
      const domain = ZapHandler.makeDomain("test")
      const log = decisionLog()
      yield* ZapHandler.register(domain, allowOnly(goodClient.publicKey), log.onDecision)
      const server = yield* curveServer(serverKeys, domain)
      const dealer = yield* client(server.endpoint, serverKeys.publicKey, badClient)

      // libzmq treats the refusal as a protocol error: the DEALER reports it and does not reconnect.
      yield* waitUntil("the client's auth error", () => hasEvent(dealer.events, "handshake:error:auth"))
      yield* waitUntil("the server's auth error", () => hasEvent(server.events, "handshake:error:auth"))
      assert.isAtLeast(log.decisions.length, 1)
      const authError = dealer.events.find((event) => event.type === "handshake:error:auth")
      assert.strictEqual(authError?.type === "handshake:error:auth" ? authError.error.status : 0, 400)
      for (const decision of log.decisions) {
        assert.strictEqual(decision.allowed, false)
        assert.strictEqual(decision.clientKey, badClient.publicKey)
        assert.strictEqual(decision.statusCode, "400")
      }
      assert.isFalse(hasEvent(dealer.events, "handshake"))
      assert.strictEqual(server.messages.length, 0)
    }),
  )

  it.live("refuses a plaintext client (mechanism mismatch, before ZAP is asked)", () =>
    Effect.gen(function* () {
      const domain = ZapHandler.makeDomain("test")
      const log = decisionLog()
      yield* ZapHandler.register(domain, () => true, log.onDecision)
      const server = yield* curveServer(serverKeys, domain)
      const dealer = yield* client(server.endpoint, serverKeys.publicKey, undefined)

      yield* waitUntil("the server's protocol error", () => hasEvent(server.events, "handshake:error:protocol"))
      yield* waitUntil("the client's protocol error", () => hasEvent(dealer.events, "handshake:error:protocol"))
      assert.strictEqual(server.messages.length, 0)
      assert.deepStrictEqual(log.decisions, [])
    }),
  )

  it.live("dispatches two domains to their own allow-lists", () =>
    Effect.gen(function* () {
      const [domainA, domainB] = [ZapHandler.makeDomain("a"), ZapHandler.makeDomain("b")]
      const [logA, logB] = [decisionLog(), decisionLog()]
      yield* ZapHandler.register(domainA, allowOnly(goodClient.publicKey), logA.onDecision)
      yield* ZapHandler.register(domainB, allowOnly(badClient.publicKey), logB.onDecision)
      const serverA = yield* curveServer(serverKeys, domainA)
      const serverB = yield* curveServer(serverKeys, domainB)

      yield* client(serverA.endpoint, serverKeys.publicKey, goodClient)
      yield* client(serverB.endpoint, serverKeys.publicKey, goodClient)
      yield* client(serverB.endpoint, serverKeys.publicKey, badClient)

      yield* waitUntil("the message on A", () => serverA.messages.length === 1)
      yield* waitUntil("the message on B", () => serverB.messages.length === 1)
      yield* waitUntil("goodClient refused by B", () =>
        logB.decisions.some((d) => d.clientKey === goodClient.publicKey && !d.allowed),
      )
      assert.isTrue(logA.decisions.every((d) => d.domain === domainA && d.allowed))
      assert.isTrue(
        logB.decisions.every((d) => d.domain === domainB && d.allowed === (d.clientKey === badClient.publicKey)),
      )
      // The only message B accepted came from the client B allows.
      assert.isTrue(logB.decisions.some((d) => d.clientKey === badClient.publicKey && d.allowed))
    }),
  )

  it.live("serves the sockets of the context it was registered for", () =>
    Effect.gen(function* () {
      const context = new zmq.Context()
      const domain = ZapHandler.makeDomain("ctx")
      const log = decisionLog()
      yield* ZapHandler.register(domain, allowOnly(goodClient.publicKey), log.onDecision, { context })
      const server = yield* curveServer(serverKeys, domain, context)
      yield* client(server.endpoint, serverKeys.publicKey, goodClient)
      yield* waitUntil("the message", () => server.messages.length === 1)
      assert.strictEqual(log.decisions[0]?.allowed, true)

      // The global context has no handler: its enforcing servers refuse everybody.
      const unguarded = yield* curveServer(serverKeys, domain)
      yield* client(unguarded.endpoint, serverKeys.publicKey, goodClient)
      yield* waitUntil("the handshake error", () => hasEvent(unguarded.events, "handshake:error:other"))
      assert.strictEqual(unguarded.messages.length, 0)
    }),
  )

  it.live("fails closed after the last registration is released, and starts again on the next", () =>
    Effect.gen(function* () {
      const domain = ZapHandler.makeDomain("test")
      const scope = yield* Scope.make()
      yield* ZapHandler.register(domain, () => true).pipe(Scope.provide(scope))
      yield* Scope.close(scope, Exit.void)

      const log = decisionLog()
      const server = yield* curveServer(serverKeys, domain)
      const first = yield* client(server.endpoint, serverKeys.publicKey, goodClient)
      // libzmq finds no ZAP endpoint and, with zapEnforceDomain, refuses the handshake.
      yield* waitUntil("the server's handshake error", () => hasEvent(server.events, "handshake:error:other"))
      assert.strictEqual(server.messages.length, 0)
      assert.isFalse(hasEvent(first.events, "handshake"))

      yield* ZapHandler.register(domain, () => true, log.onDecision)
      const second = yield* client(server.endpoint, serverKeys.publicKey, goodClient)
      yield* waitUntil("a message once a handler is back", () => server.messages.length > 0)
      // Monitor events come on a socket of their own: a client's may be read after the server has the message.
      yield* waitUntil(
        "a client's handshake event",
        () => hasEvent(second.events, "handshake") || hasEvent(first.events, "handshake"),
      )
      assert.isTrue(log.decisions.length > 0 && log.decisions.every((d) => d.allowed))
    }),
  )

  it.live("restarts cleanly when registrations come and go in quick succession", () =>
    Effect.gen(function* () {
      const domain = ZapHandler.makeDomain("churn")
      const server = yield* curveServer(serverKeys, domain)
      for (let round = 1; round <= 10; round++) {
        // Each round closes the previous handler socket and binds a new one at once, while libzmq may still
        // hold the endpoint of the old one.
        yield* Effect.scoped(
          Effect.gen(function* () {
            const log = decisionLog()
            yield* ZapHandler.register(domain, () => true, log.onDecision)
            yield* client(server.endpoint, serverKeys.publicKey, goodClient)
            yield* waitUntil(`message ${round}`, () => server.messages.length >= round)
            assert.isTrue(log.decisions.length > 0 && log.decisions.every((d) => d.allowed))
          }),
        )
      }
    }),
  )

  it.live("answers malformed requests with 400 or 500 and keeps serving", () =>
    Effect.gen(function* () {
      const domain = ZapHandler.makeDomain("test")
      const throwing = ZapHandler.makeDomain("throwing")
      const log = decisionLog()
      yield* ZapHandler.register(domain, allowOnly(goodClient.publicKey), (decision) => {
        log.onDecision(decision)
        throw new Error("an observer bug must not break admission")
      })
      yield* ZapHandler.register(throwing, () => {
        throw new Error("allow-list bug")
      })
      // Talk RFC 27 directly: a DEALER in the same context sends the frames libzmq would.
      const zap = yield* acquire(() => new zmq.Dealer({ linger: 0, receiveTimeout: 5000 }))
      zap.connect(ZapHandler.ENDPOINT)
      const key = Buffer.alloc(32, 7)
      const ask = (frames: Array<Buffer | string>) =>
        Effect.promise(async () => {
          await zap.send(["", ...frames])
          const reply = await zap.receive()
          return reply.map((frame) => frame.toString("latin1"))
        })
      const request = (domainName: string, mechanism: string, ...credentials: Array<Buffer>) => [
        "1.0",
        "42",
        domainName,
        "10.0.0.1",
        "",
        mechanism,
        ...credentials,
      ]

      assert.deepStrictEqual((yield* ask(["2.0", "1", domain, "a", "", "CURVE", key])).slice(0, 5), [
        "",
        "1.0",
        "1",
        "400",
        "Unsupported ZAP version or envelope",
      ])
      assert.strictEqual((yield* ask(["1.0", "2"]))[4], "Malformed ZAP request")
      assert.strictEqual((yield* ask(request("unknown", "CURVE", key)))[4], "Unknown ZAP domain")
      assert.strictEqual((yield* ask(request(domain, "PLAIN", Buffer.from("user"), Buffer.from("pw"))))[3], "400")
      assert.strictEqual((yield* ask(request(domain, "CURVE", key.subarray(0, 31))))[4], "Malformed CURVE credentials")
      assert.strictEqual((yield* ask(request(domain, "CURVE", key, key)))[4], "Malformed CURVE credentials")
      assert.deepStrictEqual((yield* ask(request(throwing, "CURVE", key))).slice(3, 5), ["500", "Internal error"])
      assert.deepStrictEqual((yield* ask(request(domain, "CURVE", key))).slice(3, 7), [
        "400",
        "Client key not allowed",
        "",
        "",
      ])

      // Still serving: a real client is admitted, with its key as the ZAP user id.
      const goodRaw = Buffer.from(Result.getOrThrow(Z85.decodeKey(goodClient.publicKey)))
      assert.deepStrictEqual((yield* ask(request(domain, "CURVE", goodRaw))).slice(1, 7), [
        "1.0",
        "42",
        "200",
        "OK",
        goodClient.publicKey,
        "",
      ])
      assert.deepStrictEqual(
        log.decisions.map((d) => [d.mechanism, d.clientKey === undefined, d.allowed, d.address]),
        [
          ["PLAIN", true, false, "10.0.0.1"],
          ["CURVE", true, false, "10.0.0.1"],
          ["CURVE", true, false, "10.0.0.1"],
          ["CURVE", false, false, "10.0.0.1"],
          ["CURVE", false, true, "10.0.0.1"],
        ],
      )
      const server = yield* curveServer(serverKeys, domain)
      yield* client(server.endpoint, serverKeys.publicKey, goodClient)
      yield* waitUntil("the message", () => server.messages.length === 1)
    }),
  )

  it.live("refuses to register one domain twice in a context", () =>
    Effect.gen(function* () {
      const domain = ZapHandler.makeDomain("test")
      yield* ZapHandler.register(domain, () => true)
      const exit = yield* Effect.exit(Effect.scoped(ZapHandler.register(domain, () => false)))
      assert.isTrue(Exit.hasDies(exit))
    }),
  )
})
