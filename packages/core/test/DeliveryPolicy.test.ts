import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as DeliveryPolicy from "../src/DeliveryPolicy.ts"
import { retrying } from "../src/internal/delivery.ts"
import * as NodeMetrics from "../src/internal/nodeMetrics.ts"
import { Code, RemoteDefect, RpcError } from "../src/RpcError.ts"

const resolved = (options: DeliveryPolicy.RetryOptions = {}): DeliveryPolicy.ResolvedRetryOptions => {
  const result = DeliveryPolicy.resolve(options)
  if (typeof result === "string") throw new Error(result)
  return result
}

/** A `random` that always returns `value`: the backoff's jitter pinned to one point of its range. */
const fixed = (value: number) => () => value

describe("backoff", () => {
  it("grows exponentially from initialBackoff and is capped at maxBackoff", () => {
    const options = resolved({ initialBackoff: 50, maxBackoff: 2000 })
    // Just under 1: the top of the jitter range, which is the exponential delay itself (floored, exclusive).
    const top = fixed(1 - 1e-9)
    const tops = [1, 2, 3, 4, 5, 6, 7, 8, 12].map((retry) => DeliveryPolicy.backoffMs(options, retry, top))
    assert.deepStrictEqual(tops, [49, 99, 199, 399, 799, 1599, 1999, 1999, 1999])
    const halves = [1, 2, 3, 6, 7].map((retry) => DeliveryPolicy.backoffMs(options, retry, fixed(0.5)))
    assert.deepStrictEqual(halves, [25, 50, 100, 800, 1000])
  })

  it("full jitter: delays spread over [0, exponential), never outside", () => {
    const options = resolved({ initialBackoff: 50, maxBackoff: 2000 })
    assert.strictEqual(DeliveryPolicy.backoffMs(options, 3, fixed(0)), 0)
    // Retry 3: the exponential delay is 200 ms; 1,000 draws of Math.random cover the range.
    const delays = Array.from({ length: 1000 }, () => DeliveryPolicy.backoffMs(options, 3))
    for (const delay of delays) {
      assert.isAtLeast(delay, 0)
      assert.isBelow(delay, 200)
      assert.isTrue(Number.isInteger(delay))
    }
    assert.isBelow(Math.min(...delays), 40, "jittered down to the bottom of the range")
    assert.isAbove(Math.max(...delays), 160, "and up to its top")
    assert.isAbove(new Set(delays).size, 50, "not a constant delay")
  })

  it("the next delay is bounded by maxAttempts and by what is left of the deadline", () => {
    const options = resolved({ maxAttempts: 3, initialBackoff: 100, maxBackoff: 100 })
    const half = fixed(0.5)
    assert.strictEqual(DeliveryPolicy.retryDelayMs(options, 1, 1000, half), 50)
    assert.strictEqual(DeliveryPolicy.retryDelayMs(options, 2, 1000, half), 50)
    assert.isUndefined(DeliveryPolicy.retryDelayMs(options, 3, 1000, half), "maxAttempts made")
    // A delay that would end at or past the deadline leaves the attempt no time: no retry.
    assert.strictEqual(DeliveryPolicy.retryDelayMs(options, 1, 51, half), 50)
    assert.isUndefined(DeliveryPolicy.retryDelayMs(options, 1, 50, half))
    assert.isUndefined(DeliveryPolicy.retryDelayMs(options, 1, 0, fixed(0)))
    assert.isUndefined(DeliveryPolicy.retryDelayMs(options, 1, -5, fixed(0)))
  })

  it("options are resolved with defaults and range-checked", () => {
    assert.deepStrictEqual(resolved(), DeliveryPolicy.defaults)
    assert.deepStrictEqual(resolved({ initialBackoff: "10 millis", maxBackoff: "1 second", ackTimeout: 300 }), {
      maxAttempts: 5,
      initialBackoffMs: 10,
      maxBackoffMs: 1000,
      ackTimeoutMs: 300,
    })
    assert.isString(DeliveryPolicy.resolve({ maxAttempts: 0 }))
    assert.isString(DeliveryPolicy.resolve({ maxAttempts: 1.5 }))
    assert.isString(DeliveryPolicy.resolve({ initialBackoff: 100, maxBackoff: 50 }))
    assert.isString(DeliveryPolicy.resolve({ ackTimeout: 0 }))
  })
})

describe("what is retryable", () => {
  it("unavailable (refusals included), overloaded and a lost ACK are retried; every other code never", () => {
    const retryable = Object.values(Code).filter((code) =>
      DeliveryPolicy.isRetryableFailure(new RpcError({ code, message: "x" })),
    )
    assert.deepStrictEqual(retryable.sort(), ["overloaded", "unavailable"])
    for (const reason of ["circuit-open", "concurrency-limit", "peer-dead"] as const) {
      const code = reason === "concurrency-limit" ? "overloaded" : "unavailable"
      assert.isTrue(DeliveryPolicy.isRetryableFailure(new RpcError({ code, reason, message: "refused here" })))
    }
    assert.isTrue(DeliveryPolicy.isRetryableFailure(new RpcError({ code: "unavailable", message: "", lostAck: true })))
    // Application errors, undeclared remote errors and anything that is not an RpcError are never retried.
    assert.isFalse(DeliveryPolicy.isRetryableFailure(new RemoteDefect({ method: "S/m", remoteTag: "X", message: "" })))
    assert.isFalse(DeliveryPolicy.isRetryableFailure(new Error("unavailable")))
    assert.isFalse(DeliveryPolicy.isRetryableFailure({ _tag: "Overloaded" }))
    assert.isFalse(DeliveryPolicy.isRetryableFailure(undefined))
  })
})

describe("the retry loop", () => {
  const unavailable = new RpcError({ code: "unavailable", message: "connection lost", reason: "peer-dead" })

  it.live("sends again on a retryable failure with what is left of the deadline, and stops on success", () =>
    Effect.gen(function* () {
      const metrics = NodeMetrics.make()
      const seen: Array<{ attempt: number; timeoutMs: number }> = []
      const result = yield* retrying(
        resolved({ initialBackoff: 1, maxBackoff: 2 }),
        metrics,
        "S/m",
        5000,
        (attempt, timeoutMs) =>
          Effect.suspend(() => {
            seen.push({ attempt, timeoutMs })
            return attempt < 3 ? Effect.fail(unavailable) : Effect.succeed("third")
          }),
        () => assert.fail("not exhausted"),
      )
      assert.strictEqual(result, "third")
      assert.deepStrictEqual(
        seen.map((s) => s.attempt),
        [1, 2, 3],
      )
      assert.isAtMost(seen[2]!.timeoutMs, seen[0]!.timeoutMs)
      assert.isAtMost(seen[0]!.timeoutMs, 5000)
      assert.strictEqual(metrics.retried, 2)
    }),
  )

  it.live("a failure that is not retryable ends the call at its first attempt", () =>
    Effect.gen(function* () {
      const metrics = NodeMetrics.make()
      let attempts = 0
      const error = yield* Effect.flip(
        retrying(
          resolved(),
          metrics,
          "S/m",
          5000,
          () =>
            Effect.suspend(() => {
              attempts++
              return Effect.fail(new RpcError({ code: "internal", message: "boom" }))
            }),
          () => assert.fail("not exhausted"),
        ),
      )
      assert.strictEqual((error as RpcError).code, "internal")
      assert.strictEqual(attempts, 1)
      assert.strictEqual(metrics.retried, 0)
    }),
  )

  it.live("gives up after maxAttempts, keeping the last error's code and refusal reason", () =>
    Effect.gen(function* () {
      const metrics = NodeMetrics.make()
      const exhausted: Array<number> = []
      const error = yield* Effect.flip(
        retrying(
          resolved({ maxAttempts: 4, initialBackoff: 1, maxBackoff: 2 }),
          metrics,
          "S/m",
          5000,
          () => Effect.fail(unavailable),
          (attempts) => exhausted.push(attempts),
        ),
      )
      assert.strictEqual((error as RpcError).code, "unavailable")
      assert.strictEqual((error as RpcError).reason, "peer-dead")
      assert.strictEqual((error as RpcError).attempts, 4)
      assert.deepStrictEqual(exhausted, [4])
      assert.strictEqual(metrics.retried, 3)
    }),
  )

  it.live("never waits past the call's deadline: a retry whose delay would end after it is not made", () =>
    Effect.gen(function* () {
      const metrics = NodeMetrics.make()
      const exhausted: Array<number> = []
      const started = Date.now()
      // Backoffs of up to 2 s against a 150 ms deadline: only delays that end inside the deadline are waited.
      const error = yield* Effect.flip(
        retrying(
          resolved({ maxAttempts: 100, initialBackoff: 100, maxBackoff: 2000 }),
          metrics,
          "S/m",
          150,
          () => Effect.fail(unavailable),
          (attempts) => exhausted.push(attempts),
        ),
      )
      const elapsed = Date.now() - started
      assert.strictEqual((error as RpcError).code, "unavailable")
      assert.lengthOf(exhausted, 1)
      assert.isBelow(exhausted[0]!, 100, "stopped by the deadline, not by maxAttempts")
      // The loop itself never sleeps past the deadline; the slack is for timers firing late on a loaded machine.
      assert.isBelow(elapsed, 150 + 250)
    }),
  )
})
