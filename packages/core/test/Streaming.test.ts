import { assert, describe, it } from "@effect/vitest"
import { Effect, Schema, Stream } from "effect"
import * as Contract from "../src/Contract.ts"
import { zmqNode } from "./fixtures.ts"

class TooFar extends Schema.TaggedError<TooFar>()("TooFar", { at: Schema.Number }) {}

const Ticker = Contract.make("Ticker", {
  count: Contract.serverStream({
    payload: Schema.Struct({ to: Schema.Number, failAt: Schema.optional(Schema.Number) }),
    element: Schema.Number,
    error: TooFar,
  }),
})

const waitFor = (condition: () => boolean, what: string) =>
  Effect.promise(async () => {
    const until = Date.now() + 5000
    while (!condition()) {
      if (Date.now() > until) throw new Error(`timed out waiting for ${what}`)
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
  })

const setup = Effect.gen(function* () {
  const server = yield* zmqNode({ id: "ticker" })
  const progress = { emitted: 0, interrupted: false }
  yield* server.serve(Ticker, {
    count: ({ to, failAt }) =>
      Stream.range(1, to).pipe(
        Stream.mapEffect((n) =>
          n === failAt ? Effect.fail(new TooFar({ at: n })) : Effect.sync(() => (progress.emitted = n)),
        ),
        Stream.onExit((exit) =>
          Effect.sync(() => {
            if (exit._tag === "Failure" && exit.cause.reasons.some((r) => r._tag === "Interrupt")) {
              progress.interrupted = true
            }
          }),
        ),
      ),
  })
  const client = yield* zmqNode({ id: "reader" })
  yield* client.connect(server.endpoints()[0]!)
  return { server, client, progress, ticker: client.client(Ticker) }
})

describe("server streaming", () => {
  it.live("delivers every element in order, then ends", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { ticker } = yield* setup
        const all = yield* Stream.runCollect(ticker.count({ to: 1000 }))
        assert.deepStrictEqual(
          all,
          Array.from({ length: 1000 }, (_, i) => i + 1),
        )
      }),
    ),
  )

  it.live("a slow consumer bounds how far the producer runs ahead (credit)", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { ticker, progress } = yield* setup
        let consumed = 0
        let maxAhead = 0
        yield* Stream.runForEach(ticker.count({ to: 60 }, { streamCredit: 4 }), () =>
          Effect.gen(function* () {
            consumed++
            yield* Effect.sleep(5)
            maxAhead = Math.max(maxAhead, progress.emitted - consumed)
          }),
        )
        assert.strictEqual(consumed, 60)
        // Credit 4, plus the element in the consumer's hands and the one the producer holds while waiting.
        assert.isAtMost(maxAhead, 6)
      }),
    ),
  )

  it.live("stopping early cancels the producer on the other node", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { ticker, progress, server } = yield* setup
        const first = yield* Stream.runCollect(ticker.count({ to: 1_000_000 }).pipe(Stream.take(3)))
        assert.deepStrictEqual(first, [1, 2, 3])
        yield* waitFor(() => progress.interrupted, "the producer to be interrupted")
        assert.strictEqual(server.metrics().requestsCancelled, 1)
        assert.isBelow(progress.emitted, 1000)
      }),
    ),
  )

  it.live("a typed error ends the stream after the elements before it", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { ticker } = yield* setup
        const seen: Array<number> = []
        const error = yield* Effect.flip(
          Stream.runForEach(ticker.count({ to: 10, failAt: 4 }), (n) => Effect.sync(() => seen.push(n))),
        )
        assert.deepStrictEqual(seen, [1, 2, 3])
        assert.instanceOf(error, TooFar)
      }),
    ),
  )
})
