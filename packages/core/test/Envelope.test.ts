import { assert, describe, it } from "@effect/vitest"
import { Packr } from "msgpackr"
import * as Envelope from "../src/Envelope.ts"
import * as MsgpackRead from "../src/internal/msgpackRead.ts"

const packr = new Packr({ useRecords: false, encodeUndefinedAsNil: true, moreTypes: false, int64AsType: "number" })

// Values of every msgpack type an envelope can hold, at the edges of each encoding's range.
const corpus: ReadonlyArray<unknown> = [
  null,
  true,
  false,
  0,
  1,
  127,
  128,
  255,
  256,
  65535,
  65536,
  2 ** 32 - 1,
  2 ** 32,
  2 ** 53 - 1,
  -1,
  -32,
  -33,
  -128,
  -129,
  -32768,
  -32769,
  -(2 ** 31),
  -(2 ** 31) - 1,
  -(2 ** 53 - 1),
  0.5,
  -1.25,
  Number.MAX_VALUE,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  "",
  "a",
  "Calculator/add",
  "x".repeat(31),
  "x".repeat(32),
  "y".repeat(300),
  "z".repeat(70_000),
  "héllo wörld ✓ 🚀",
  "é".repeat(40),
  new Uint8Array(0),
  new Uint8Array([1, 2, 3]),
  new Uint8Array(300),
  new Uint8Array(70_000),
  [],
  [1, [2, [3, []]]],
  Array.from({ length: 20 }, (_, i) => i),
  Array.from({ length: 70_000 }, () => 1),
  {},
  { a: 1, b: "two", c: [3], d: { e: null } },
  Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, i])),
  [1, 2, 7, "Calculator/add", { a: 1, b: 2 }, 10_000, null],
  [1, 4, 9, "application", "boom", { _tag: "E", n: -5 }],
]

describe("Envelope", () => {
  it("the envelope reader agrees with msgpackr on every type and range", () => {
    for (const value of corpus) {
      const bytes = packr.pack(value)
      assert.deepStrictEqual(MsgpackRead.read(bytes), packr.unpack(bytes), JSON.stringify(value)?.slice(0, 60))
    }
    // Encodings msgpackr does not write but other implementations may: 64-bit integers, float32, 8-bit str.
    const raw = (...bytes: Array<number>) => Uint8Array.from(bytes)
    for (const bytes of [
      raw(0xcf, 0, 0, 0, 1, 0, 0, 0, 5),
      raw(0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe),
      raw(0xca, 0x3f, 0xc0, 0, 0),
      raw(0xd9, 2, 0x68, 0x69),
      raw(0xd0, 0x80),
      raw(0x81, 0x01, 0xc3),
      raw(0x81, 0xc3, 0x01),
      raw(0x81, 0xa9, ...Buffer.from("__proto__"), 0x01),
    ]) {
      assert.deepStrictEqual(MsgpackRead.read(bytes), packr.unpack(bytes), Buffer.from(bytes).toString("hex"))
    }
  })

  it("the reader leaves extension types to msgpackr and throws on malformed input", () => {
    assert.strictEqual(MsgpackRead.read(packr.pack(new Date(0))), MsgpackRead.UNSUPPORTED)
    for (const bad of [
      [0x92, 0x01],
      [0xdd, 0xff, 0xff, 0xff, 0xff],
      [0x01, 0x02],
      [0xd9, 0x05, 0x41],
      [0xcd, 0x01],
    ]) {
      assert.throws(() => MsgpackRead.read(Uint8Array.from(bad)))
    }
  })

  it("decode reads what encode writes, and refuses malformed envelopes with a reason", () => {
    const request: Envelope.Request = [1, 2, 77, "Calculator/add", { a: 1, b: 2 }, 5000, { tp: "00-x" }]
    assert.deepStrictEqual(Envelope.decode(Envelope.encode(request)), request)
    const hello = Envelope.encode([1, 0, { id: "n", services: ["S"], actors: [], endpoints: [], meta: {} }])
    assert.isFalse(Envelope.isMalformed(Envelope.decode(hello)))
    const truncated = Envelope.decode(Envelope.encode(request).subarray(0, 10))
    assert.isTrue(Envelope.isMalformed(truncated) && truncated.reason === "NotMsgpack")
    // Cut short after its id: still a request the node can answer.
    assert.strictEqual((truncated as Envelope.Malformed).kind, Envelope.Kind.Request)
    assert.strictEqual((truncated as Envelope.Malformed).id, 77)
    for (const id of [0, 127, 128, 65_535, 65_536, 2 ** 32, 2 ** 40]) {
      const cut = Envelope.encodeRequest(id, "S/m", { a: 1 }, 1000, null)
      const damaged = Envelope.decode(cut.subarray(0, cut.length - 3))
      assert.strictEqual((damaged as Envelope.Malformed).id, id, `id ${id}`)
    }
    // Not a request, or no id to read: nothing to answer.
    for (const bytes of [
      Envelope.encode([1, 3, 77, "x"]).subarray(0, 4),
      Uint8Array.from([0x93, 0x01, 0x02]),
      Uint8Array.from([0x93, 0x02, 0x02, 0x05, 0xc1]),
    ]) {
      const damaged = Envelope.decode(bytes)
      assert.isTrue(Envelope.isMalformed(damaged) && damaged.id === undefined && damaged.kind === undefined)
    }
    const unknown = Envelope.decode(packr.pack([1, 99, 5]))
    assert.isTrue(Envelope.isMalformed(unknown) && unknown.reason === "UnknownKind" && unknown.id === 5)
  })

  it("encodeRequest and encodeReply write the same bytes as encode", () => {
    for (const [id, body, timeout, headers] of [
      [1, { a: 1, b: 2 }, 10_000, null],
      [70_000, "text", 2 ** 31 + 5, { ik: "key", at: 2, ak: 1 }],
      [5, new Uint8Array([1, 2]), 0, {}],
    ] as const) {
      assert.deepStrictEqual(
        Buffer.from(Envelope.encodeRequest(id, "S/m", body, timeout, headers)),
        Buffer.from(Envelope.encode([1, 2, id, "S/m", body, timeout, headers])),
      )
      assert.deepStrictEqual(
        Buffer.from(Envelope.encodeReply(id, body)),
        Buffer.from(Envelope.encode([1, 3, id, body])),
      )
    }
  })
})

describe("Envelope reader's string cache", () => {
  it("a string read once is not changed by later writes to the frame it came from", () => {
    const frame = Buffer.from(packr.pack(["Service/method"]))
    assert.deepStrictEqual(MsgpackRead.read(frame), ["Service/method"])
    // The frame's memory is reused for another message that differs in a byte the cache does not index by.
    frame[2 + 3] = "x".charCodeAt(0)
    assert.deepStrictEqual(MsgpackRead.read(frame), ["Serxice/method"])
    assert.deepStrictEqual(MsgpackRead.read(Buffer.from(packr.pack(["Service/method"]))), ["Service/method"])
  })
})
