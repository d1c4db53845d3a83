import { assert, describe, it } from "@effect/vitest"
import type { PeerState } from "../src/Liveness.ts"
import * as Routing from "../src/Routing.ts"

const candidate = (
  name: string,
  state: PeerState,
  outstanding = 0,
  load: Routing.Candidate["load"] = undefined,
  admissible = true,
) => ({ name, state, outstanding, load, admissible })

describe("Routing.choose", () => {
  it("never a dead instance; undefined when all are dead or none exist", () => {
    assert.isUndefined(Routing.choose([]))
    assert.isUndefined(Routing.choose([candidate("a", "dead"), candidate("b", "dead")]))
    assert.strictEqual(Routing.choose([candidate("a", "dead"), candidate("b", "suspect", 100)])?.name, "b")
  })

  it("alive (or joining) before suspect, whatever the load", () => {
    const chosen = Routing.choose([
      candidate("s", "suspect", 0),
      candidate("a", "alive", 50),
      candidate("j", "joining", 60),
    ])
    assert.strictEqual(chosen?.name, "a")
  })

  it("an instance that can take the call before one whose circuit is open or which is full; the latter only if alone", () => {
    const open = candidate("open", "alive", 0, undefined, false)
    assert.strictEqual(Routing.choose([open, candidate("suspect", "suspect", 9)])?.name, "suspect")
    assert.strictEqual(Routing.choose([open, candidate("dead", "dead")])?.name, "open")
  })

  it("least-outstanding: fewest calls in flight, ties broken by reported inflight then event-loop delay", () => {
    const chosen = Routing.choose([
      candidate("a", "alive", 3),
      candidate("b", "alive", 2, { inflight: 9 }),
      candidate("c", "alive", 2, { inflight: 4, eventLoopDelayMs: 50 }),
      candidate("d", "alive", 2, { inflight: 4, eventLoopDelayMs: 5 }),
    ])
    assert.strictEqual(chosen?.name, "d")
  })

  it("power-of-two-choices: the lower score of two distinct random instances of the best tier", () => {
    const candidates = [
      candidate("busy", "alive", 10),
      candidate("idle", "alive", 0),
      candidate("slow", "alive", 0, { eventLoopDelayMs: 200 }),
      candidate("gone", "dead"),
    ]
    // random 0 -> first = 0 (busy), second = 1 (idle).
    assert.strictEqual(Routing.choose(candidates, "power-of-two-choices", () => 0)?.name, "idle")
    // random 0.99 -> first = 2 (slow), second = (2 + 1 + 1) % 3 = 1 (idle).
    assert.strictEqual(Routing.choose(candidates, "power-of-two-choices", () => 0.99)?.name, "idle")
    assert.strictEqual(Routing.score(candidates[2]!), 20)
    const counts: Record<string, number> = {}
    for (let i = 0; i < 1000; i++) {
      const name = Routing.choose(candidates, "power-of-two-choices")!.name
      counts[name] = (counts[name] ?? 0) + 1
    }
    // The worst never wins a pair; the best wins both pairs it is in (two thirds), the middle one the rest.
    assert.isUndefined(counts.gone)
    assert.isUndefined(counts.slow)
    assert.approximately(counts.idle ?? 0, 667, 120)
    assert.approximately(counts.busy ?? 0, 333, 120)
  })
})
