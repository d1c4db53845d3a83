import { assert, describe, it } from "@effect/vitest"
import { Effect, Stream } from "effect"
import { afterEach } from "vitest"
import type { TransportEvent } from "../src/TransportEvent.ts"
import * as Harness from "../src/testing/ProcessHarness.ts"
import * as ZmqTransport from "../src/ZmqTransport.ts"

const echoServer = new URL("./fixtures/echo-server.ts", import.meta.url).pathname

afterEach(() => Harness.stopAll())

/** A client transport connected to `endpoint` that records what it receives and which events it sees. */
const client = (endpoint: string) =>
  Effect.gen(function* () {
    // Payloads sent while the peer is down wait in the outbox until it is back: allow for a slow restart.
    const transport = yield* ZmqTransport.make({ sendTimeout: "30 seconds" })
    const received: Array<string> = []
    const events: Array<TransportEvent & { at: number }> = []
    yield* Stream.runForEach(transport.received, (r) =>
      Effect.sync(() => {
        for (const p of r.payloads) received.push(Buffer.from(p).toString())
      }),
    ).pipe(Effect.forkScoped)
    yield* Stream.runForEach(transport.events, (e) =>
      Effect.sync(() => events.push({ ...e, at: performance.now() })),
    ).pipe(Effect.forkScoped)
    const peer = yield* transport.connect(endpoint)
    const send = (text: string) => transport.send(peer.id, Buffer.from(text))
    const waitFor = (text: string, timeoutMs: number) =>
      Effect.promise(() => Harness.waitUntil(() => received.includes(text), timeoutMs, `echo of ${text}`))
    const waitEvent = (tag: TransportEvent["_tag"], after: number, timeoutMs: number) =>
      Effect.promise(() =>
        Harness.waitUntil(() => events.some((e) => e._tag === tag && e.at >= after), timeoutMs, `${tag} event`),
      ).pipe(Effect.map(() => events.find((e) => e._tag === tag && e.at >= after)!.at - after))
    return { transport, send, waitFor, waitEvent, received }
  })

describe("ZmqTransport across processes", () => {
  it.live("reconnects to a peer process restarted after SIGKILL, on the same port", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const port = yield* Effect.promise(() => Harness.freePort())
        const endpoint = `tcp://127.0.0.1:${port}`
        let server = yield* Effect.promise(() => Harness.start(echoServer, { args: [endpoint] }))
        const c = yield* client(endpoint)
        yield* c.send("before")
        yield* c.waitFor("before", 5000)

        const killedAt = performance.now()
        yield* Effect.promise(() => server.kill())
        const detectedMs = yield* c.waitEvent("Disconnected", killedAt, 5000)
        assert.isBelow(detectedMs, 1000, "a killed peer's TCP reset is seen quickly")

        // Sent while the peer is down: held in the bounded outbox, delivered after the reconnect.
        yield* c.send("during")
        server = yield* Effect.promise(() => Harness.start(echoServer, { args: [endpoint] }))
        // Measured from the moment the new process listens: the reconnect backoff (100 ms doubling, capped at
        // reconnectIntervalMax = 5 s) has grown while the peer was down, so the bound is that cap plus slack.
        const listeningAt = performance.now()
        yield* c.waitFor("during", 10_000)
        const connectedAt = killedAt + (yield* c.waitEvent("Connected", killedAt, 10_000))
        assert.isBelow(connectedAt - listeningAt, 6000)
        yield* c.send("after")
        yield* c.waitFor("after", 5000)
        assert.deepStrictEqual(c.received, ["before", "during", "after"])
        assert.isAtLeast(c.transport.metrics().reconnects, 1)
      }),
    ),
  )

  it.live("declares a frozen peer (SIGSTOP) dead within the heartbeat bound, and recovers after SIGCONT", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const server = yield* Effect.promise(() => Harness.start(echoServer, { args: ["tcp://127.0.0.1:*"] }))
        const c = yield* client(String(server.ready.endpoint))
        yield* c.send("ping")
        yield* c.waitFor("ping", 5000)
        const frozenAt = performance.now()
        server.freeze()
        const detectedMs = yield* c.waitEvent("Disconnected", frozenAt, 5000)
        // Default heartbeat 250 ms / timeout 1 s: measured 1.03-1.33 s; anything under 2 s is within the bound.
        assert.isAbove(detectedMs, 500, "not declared dead before the heartbeat timeout")
        assert.isBelow(detectedMs, 2000, "declared dead within the heartbeat bound")
        server.thaw()
        yield* c.send("pong")
        yield* c.waitFor("pong", 5000)
      }),
    ),
  )
})
