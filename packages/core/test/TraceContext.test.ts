import { assert, describe, it } from "@effect/vitest"
import * as TraceContext from "../src/TraceContext.ts"

const example = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

describe("TraceContext", () => {
  it("parses the W3C example and formats it back", () => {
    const parsed = TraceContext.parse(example)
    assert.deepStrictEqual(parsed, {
      traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
      spanId: "00f067aa0ba902b7",
      flags: 1,
    })
    assert.strictEqual(TraceContext.format(parsed!), example)
  })

  it("rejects malformed values: wrong length, uppercase, all-zero ids, version ff, bad separators", () => {
    for (const bad of [
      "",
      example.slice(0, 54),
      `${example}-extra`, // version 00 must be exactly 55 characters
      example.toUpperCase(),
      "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
      `ff${example.slice(2)}`,
      example.replace(/-/g, "_"),
      42,
      undefined,
    ]) {
      assert.isUndefined(TraceContext.parse(bad), String(bad))
    }
    // A later version may append fields after a dash.
    assert.isDefined(TraceContext.parse(`01${example.slice(2)}-more`))
  })

  it("a child keeps the trace id and flags and gets a new span id", () => {
    const child = TraceContext.child(example)
    const parsed = TraceContext.parse(child)!
    assert.strictEqual(parsed.traceId, "4bf92f3577b34da6a3ce929d0e0e4736")
    assert.strictEqual(parsed.flags, 1)
    assert.notStrictEqual(parsed.spanId, "00f067aa0ba902b7")
    // An invalid parent starts a new trace rather than propagating garbage.
    assert.isDefined(TraceContext.parse(TraceContext.child("garbage")))
  })

  it("generates valid, distinct traces", () => {
    const traces = new Set(Array.from({ length: 1000 }, () => TraceContext.make()))
    assert.strictEqual(traces.size, 1000)
    for (const trace of traces) assert.isDefined(TraceContext.parse(trace), trace)
  })
})
