import { assert, describe, it } from "@effect/vitest"
import * as CircuitBreaker from "../src/CircuitBreaker.ts"

const { Success, Failure, Ignored } = CircuitBreaker.Outcome

const breaker = (options: CircuitBreaker.CircuitBreakerOptions = {}) => {
  const resolved = CircuitBreaker.resolve(options)
  if (typeof resolved === "string") throw new Error(resolved)
  return new CircuitBreaker.CircuitBreaker(resolved)
}

describe("CircuitBreaker", () => {
  it("opens after failureThreshold consecutive failures; a success in between resets the count", () => {
    const b = breaker({ failureThreshold: 3, failureRate: 2 })
    b.record(Failure, 0)
    b.record(Failure, 0)
    b.record(Success, 0)
    b.record(Failure, 0)
    b.record(Failure, 0)
    assert.strictEqual(b.state(0), "closed")
    assert.isTrue(b.record(Failure, 0))
    assert.strictEqual(b.state(0), "open")
    assert.strictEqual(b.opened, 1)
  })

  it("opens when the failure rate over the window reaches the threshold, once minimumCalls completed", () => {
    const b = breaker({ failureThreshold: 100, failureRate: 0.5, window: 10, minimumCalls: 6 })
    // Alternating: 50% failures, never 2 in a row.
    const outcomes = [Failure, Success, Failure, Success, Failure]
    for (const outcome of outcomes) assert.isFalse(b.record(outcome, 0))
    assert.isTrue(b.record(Success, 0) || b.record(Failure, 0))
    assert.strictEqual(b.state(0), "open")
  })

  it("open: refuses (counted) until openFor; half-open: lets halfOpenCalls trials through; success closes", () => {
    const b = breaker({ failureThreshold: 1, openFor: 1000 })
    b.record(Failure, 0)
    assert.isFalse(b.admit(500))
    assert.isFalse(b.wouldAdmit(500))
    assert.strictEqual(b.rejected, 1)
    assert.strictEqual(b.retryInMs(500), 500)
    assert.strictEqual(b.state(1000), "half-open")
    assert.isTrue(b.wouldAdmit(1000))
    assert.isTrue(b.admit(1000))
    assert.isFalse(b.admit(1001))
    assert.isFalse(b.wouldAdmit(1001))
    b.record(Success, 1100)
    assert.strictEqual(b.state(1100), "closed")
    assert.isTrue(b.admit(1100))
  })

  it("a failed trial reopens for twice as long, up to maxOpenFor; closing resets the open time", () => {
    const b = breaker({ failureThreshold: 1, openFor: 1000, maxOpenFor: 3000 })
    b.record(Failure, 0)
    let now = 1000
    for (const expected of [2000, 3000, 3000]) {
      assert.isTrue(b.admit(now))
      assert.isTrue(b.record(Failure, now))
      assert.isFalse(b.admit(now + expected - 1))
      now += expected
    }
    assert.isTrue(b.admit(now))
    b.record(Success, now)
    b.record(Failure, now)
    assert.isFalse(b.admit(now + 999))
    assert.isTrue(b.admit(now + 1000))
  })

  it("ignored outcomes count for nothing; a trial whose outcome never comes frees its slot after openFor", () => {
    const b = breaker({ failureThreshold: 2, openFor: 100 })
    for (let i = 0; i < 10; i++) b.record(Ignored, 0)
    b.record(Failure, 0)
    b.record(Ignored, 0)
    assert.strictEqual(b.state(0), "closed")
    b.record(Failure, 0)
    assert.strictEqual(b.state(0), "open")
    assert.isTrue(b.admit(100))
    b.record(Ignored, 150)
    assert.isFalse(b.admit(150))
    assert.isTrue(b.admit(200))
  })

  it("classifies answers: internal, unavailable and deadlines are failures; answers of any other kind are not", () => {
    for (const code of ["internal", "unavailable", "deadline_exceeded"]) {
      assert.strictEqual(CircuitBreaker.classifyAnswer(code), Failure)
    }
    for (const code of ["application", "not_found", "invalid_argument", "overloaded", "permission_denied"]) {
      assert.strictEqual(CircuitBreaker.classifyAnswer(code), Success)
    }
  })

  it("options are range-checked; the refusal is a retryable unavailable with reason circuit-open", () => {
    assert.include(String(CircuitBreaker.resolve({ failureThreshold: 0 })), "failureThreshold")
    assert.include(String(CircuitBreaker.resolve({ window: 5, minimumCalls: 6 })), "minimumCalls")
    assert.include(String(CircuitBreaker.resolve({ openFor: 2000, maxOpenFor: 1000 })), "maxOpenFor")
    const error = CircuitBreaker.openError("worker-1", "Svc/m", 250.2)
    assert.strictEqual(error.code, "unavailable")
    assert.strictEqual(error.reason, "circuit-open")
    assert.include(error.message, "251 ms")
  })
})
