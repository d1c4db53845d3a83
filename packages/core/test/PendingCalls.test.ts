// A caller's pending-call table (internal/pendingCalls.ts) against a plain Map as reference: random calls started
// and answered (many quick, some long-running: their slots must be skipped), replies for ids never handed out or
// already answered must give the same answers; no id may be handed out while a call holds it; ids wrap to 1.
import { assert, describe, it } from "@effect/vitest"
import { PendingCalls } from "../src/internal/pendingCalls.ts"

interface Call {
  readonly id: number
}

/** A small deterministic generator, so that a failing sequence can be replayed. */
const random = (seed: number) => () => {
  seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31
  return seed / 2 ** 31
}

describe("PendingCalls", () => {
  it("agrees with a Map through random starts, answers, unknown ids and long calls", () => {
    const table = new PendingCalls<Call>()
    const reference = new Map<number, Call>()
    const next = random(7)
    const handedOut: Array<number> = []
    for (let step = 0; step < 200_000; step++) {
      const roll = next()
      if (roll < 0.5 || reference.size === 0) {
        const id = table.allocateId()
        assert.isFalse(reference.has(id), `id ${id} handed out while its call is pending`)
        assert.isTrue(id >= 1 && id <= 0x7fff_ffff)
        const call = { id }
        table.add(call)
        reference.set(id, call)
        handedOut.push(id)
      } else if (roll < 0.95) {
        // Mostly the oldest calls answer first; one in twenty stays running for a long time.
        const index = next() < 0.95 ? Math.floor(next() * Math.min(handedOut.length, 40)) : handedOut.length - 1
        const id = handedOut[index]!
        assert.strictEqual(table.take(id), reference.get(id))
        reference.delete(id)
        if (next() < 0.95) handedOut.splice(index, 1)
      } else {
        // A reply for an id never handed out, or one answered already.
        const id = next() < 0.5 ? Math.floor(next() * 2 ** 31) : (handedOut[0] ?? 1)
        assert.strictEqual(table.get(id), reference.get(id))
      }
      assert.strictEqual(table.size, reference.size)
    }
    for (const [id, call] of reference) assert.strictEqual(table.get(id), call)
  })

  it("keeps every call reachable as it grows, and hands everything back in takeAll", () => {
    const table = new PendingCalls<Call>()
    const calls: Array<Call> = []
    for (let i = 0; i < 5000; i++) {
      const call = { id: table.allocateId() }
      table.add(call)
      calls.push(call)
    }
    assert.strictEqual(new Set(calls.map((call) => call.id)).size, 5000)
    for (const call of calls) assert.strictEqual(table.get(call.id), call)
    const all = table.takeAll()
    assert.sameMembers(all, calls)
    assert.strictEqual(table.size, 0)
    for (const call of calls) assert.isUndefined(table.get(call.id))
  })

  it("wraps from 2^31 - 1 to 1, never handing out 0", () => {
    const table = new PendingCalls<Call>(0x7fff_ffff - 100)
    const seen: Array<number> = []
    for (let i = 0; i < 300; i++) {
      const id = table.allocateId()
      seen.push(id)
      table.add({ id })
      table.take(id)
    }
    assert.notInclude(seen, 0)
    assert.include(seen, 0x7fff_ffff)
    assert.include(seen, 1)
    assert.isTrue(seen.every((id) => id >= 1 && id <= 0x7fff_ffff))
  })

  it("keeps two ids allocated before either was added apart", () => {
    const table = new PendingCalls<Call>()
    const first = { id: table.allocateId() }
    const second = { id: table.allocateId() }
    table.add(first)
    table.add(second)
    table.add(second)
    assert.strictEqual(table.size, 2)
    assert.strictEqual(table.get(first.id), first)
    assert.strictEqual(table.get(second.id), second)
  })
})
