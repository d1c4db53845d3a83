import { assert, describe, it } from "@effect/vitest"
import { Effect, Option, Schema } from "effect"
import { Packr } from "msgpackr"
import * as Contract from "../src/Contract.ts"
import { zmqNode } from "./fixtures.ts"

// The envelope's msgpack settings: what a body goes through between two nodes.
const packr = new Packr({ useRecords: false, encodeUndefinedAsNil: true, moreTypes: false, int64AsType: "number" })
const overTheWire = (wire: unknown): unknown => packr.unpack(packr.pack(wire))

/** Encodes with `codec`, sends through msgpack, decodes: what the other node's handler gets. */
const roundTrip = <A>(codec: Contract.BodyCodec<A>, value: A): { readonly wire: unknown; readonly value: A } => {
  const encoded = codec.encode(value)
  if (encoded._tag === "Failure") throw new Error(`encode failed: ${encoded.failure.message}`)
  const decoded = codec.decode(overTheWire(encoded.success))
  if (decoded._tag === "Failure") throw new Error(`decode failed: ${decoded.failure.message}`)
  return { wire: encoded.success, value: decoded.success }
}

const isPlainBytes = (u: unknown): boolean => u instanceof Uint8Array && !Buffer.isBuffer(u)

class Blob extends Schema.Class<Blob>("Blob")({ name: Schema.String, data: Schema.Uint8Array }) {}

describe("Schema codecs: bytes", () => {
  it("Schema.Uint8Array travels as msgpack bin and decodes to a plain Uint8Array viewing the received frame", () => {
    const codec = Contract.schemaCodec(Schema.Uint8Array)
    const bytes = Uint8Array.from({ length: 300 }, (_, i) => i & 0xff)
    const encoded = codec.encode(bytes)
    assert.isTrue(encoded._tag === "Success" && encoded.success instanceof Uint8Array, "the wire value is bytes")
    const packed = packr.pack((encoded as { success: unknown }).success)
    assert.strictEqual(packed[0], 0xc5, "msgpack bin 16, not a base64 str")
    const received = Buffer.from(packed)
    const decoded = codec.decode(packr.unpack(received))
    assert.isTrue(decoded._tag === "Success")
    const value = (decoded as { success: Uint8Array }).success
    assert.isTrue(isPlainBytes(value), "a plain Uint8Array, not a Buffer")
    assert.deepStrictEqual([...value], [...bytes])
    // No copy: the value shares the frame's memory (frames are never reused, so it never changes under its holder).
    assert.strictEqual(value.buffer, received.buffer)
    assert.strictEqual(value.byteOffset, received.byteOffset + 3, "after the bin 16 header")
  })

  it("up to 64 received bytes are a copy, holding no frame in memory", () => {
    const codec = Contract.schemaCodec(Schema.Uint8Array)
    for (const length of [0, 1, 32, 64]) {
      const bytes = Uint8Array.from({ length }, (_, i) => i + 1)
      const received = Buffer.from(packr.pack(bytes))
      const decoded = codec.decode(packr.unpack(received))
      assert.isTrue(decoded._tag === "Success")
      const value = (decoded as { success: Uint8Array }).success
      assert.isTrue(isPlainBytes(value), `${length} bytes: a plain Uint8Array`)
      assert.notStrictEqual(value.buffer, received.buffer, `${length} bytes: a copy`)
      received.fill(0)
      assert.deepStrictEqual([...value], [...bytes], `${length} bytes: kept after the frame changed`)
    }
    const received = Buffer.from(packr.pack(new Uint8Array(65)))
    const decoded = codec.decode(packr.unpack(received)) as { success: Uint8Array }
    assert.strictEqual(decoded.success.buffer, received.buffer, "65 bytes: a view")
  })

  it("bytes nested in structs, classes, arrays, unions and Options travel as bin", () => {
    const struct = roundTrip(Contract.schemaCodec(Schema.Struct({ n: Schema.Number, data: Schema.Uint8Array })), {
      n: 1,
      data: new Uint8Array([1, 2]),
    })
    assert.isTrue((struct.wire as { data: unknown }).data instanceof Uint8Array)
    assert.deepStrictEqual([...struct.value.data], [1, 2])

    const blob = roundTrip(Contract.schemaCodec(Blob), new Blob({ name: "b", data: new Uint8Array([9]) }))
    assert.instanceOf(blob.value, Blob)
    assert.isTrue(isPlainBytes(blob.value.data))

    const list = roundTrip(Contract.schemaCodec(Schema.Array(Schema.Uint8Array)), [new Uint8Array([3])])
    assert.isTrue((list.wire as Array<unknown>)[0] instanceof Uint8Array)

    const union = roundTrip(Contract.schemaCodec(Schema.Union([Schema.String, Schema.Uint8Array])), new Uint8Array([4]))
    assert.isTrue(isPlainBytes(union.value))
    assert.strictEqual(
      roundTrip(Contract.schemaCodec(Schema.Union([Schema.String, Schema.Uint8Array])), "s").value,
      "s",
    )

    const option = roundTrip(Contract.schemaCodec(Schema.Option(Schema.Uint8Array)), Option.some(new Uint8Array([5])))
    assert.isTrue(Option.isSome(option.value) && isPlainBytes(option.value.value))
  })

  it("a schema that chose its own encoding keeps it (Uint8ArrayFromBase64 stays a base64 string)", () => {
    const { wire, value } = roundTrip(Contract.schemaCodec(Schema.Uint8ArrayFromBase64), new Uint8Array([1, 2, 3]))
    assert.strictEqual(wire, "AQID")
    assert.deepStrictEqual([...value], [1, 2, 3])
  })

  it("a wrong type where bytes are expected is an issue naming the field", () => {
    const codec = Contract.schemaCodec(Schema.Struct({ data: Schema.Uint8Array }))
    const decoded = codec.decode({ data: "AQID" })
    assert.isTrue(decoded._tag === "Failure")
    assert.deepStrictEqual((decoded as { failure: Contract.CodecIssue }).failure.path, ["data"])
  })

  it.live("bytes go through a call between two nodes and back", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const Files = Contract.make("Files", {
          checksum: Contract.unary({
            payload: Schema.Struct({ name: Schema.String, data: Schema.Uint8Array }),
            success: Schema.Struct({ sum: Schema.Number, echo: Schema.Uint8Array }),
          }),
        })
        const server = yield* zmqNode({ id: "files" })
        yield* server.serve(Files, {
          checksum: ({ data }) => Effect.succeed({ sum: data.reduce((a, b) => a + b, 0), echo: data.subarray(0, 4) }),
        })
        const client = yield* zmqNode({ id: "client" })
        yield* client.connect(server.endpoints()[0]!)
        const data = Uint8Array.from({ length: 4096 }, (_, i) => i % 7)
        const result = yield* client.client(Files).checksum({ name: "f", data })
        assert.strictEqual(
          result.sum,
          data.reduce((a, b) => a + b, 0),
        )
        assert.deepStrictEqual([...result.echo], [0, 1, 2, 3])
      }),
    ),
  )
})

describe("Schema codecs: fast path", () => {
  const Point = Schema.Struct({ x: Schema.Number, y: Schema.Number, label: Schema.String, on: Schema.Boolean })
  const Shapes = Schema.Struct({
    kind: Schema.Literals(["a", "b"]),
    points: Schema.Array(Point),
    pair: Schema.Tuple([Schema.Number, Schema.String]),
    note: Schema.optionalKey(Schema.String),
    none: Schema.Null,
  })

  /** The full Effect codec, without zactor's fast path, to compare with. */
  const full = <A>(schema: Contract.WireSchema<A>) => {
    const codec = Schema.toCodecJson(schema)
    return {
      encode: Schema.encodeUnknownResult(codec),
      decode: Schema.decodeUnknownResult(codec),
    }
  }

  // Deterministic pseudo-random values, valid and not.
  let seed = 42
  const random = (): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff
    return seed / 0x7fffffff
  }
  const pick = <T>(items: ReadonlyArray<T>): T => items[Math.floor(random() * items.length)]!
  const anyValue = (): unknown =>
    pick<() => unknown>([
      () => random() * 1000 - 500,
      () => Math.floor(random() * 10),
      () => pick([Number.NaN, Number.POSITIVE_INFINITY, -0]),
      () => pick(["", "x", "a", "b", "héllo"]),
      () => random() < 0.5,
      () => null,
      () => undefined,
    ])()
  const point = (): unknown =>
    random() < 0.8
      ? { x: anyValue(), y: random() * 10, label: pick(["p", "q"]), on: random() < 0.5 }
      : { x: 1, y: 2, label: "l", on: true, extra: "dropped" }
  const shapes = (): unknown => {
    const value: Record<string, unknown> = {
      kind: pick(["a", "b", "c"]),
      points: Array.from({ length: Math.floor(random() * 3) }, point),
      pair: random() < 0.9 ? [random(), "s"] : [1],
      none: random() < 0.95 ? null : 0,
    }
    if (random() < 0.5) value.note = pick(["n", undefined, 3])
    return value
  }

  it("agrees with the full codec on every value, valid or not, both ways", () => {
    const codec = Contract.schemaCodec(Shapes)
    const reference = full(Shapes)
    let valid = 0
    for (let i = 0; i < 5000; i++) {
      const value = shapes()
      const mine = codec.decode(value)
      const theirs = reference.decode(value)
      assert.strictEqual(mine._tag, theirs._tag, JSON.stringify(value))
      if (mine._tag === "Success" && theirs._tag === "Success") {
        valid++
        assert.deepStrictEqual(mine.success, theirs.success)
        const encoded = codec.encode(mine.success)
        const expected = reference.encode(theirs.success)
        assert.isTrue(encoded._tag === "Success" && expected._tag === "Success")
        assert.deepStrictEqual((encoded as { success: unknown }).success, (expected as { success: unknown }).success)
      }
    }
    assert.isAbove(valid, 500, "the corpus holds valid values too")
  })

  it("fields outside the schema never reach the wire or the handler; exact values pass unchanged", () => {
    const codec = Contract.schemaCodec(Point)
    const exact = { x: 1, y: 2, label: "p", on: true }
    const encoded = codec.encode(exact)
    assert.isTrue(encoded._tag === "Success")
    assert.deepStrictEqual((encoded as { success: unknown }).success, exact)
    const withExtra = { ...exact, secret: "s3cret" }
    for (const result of [codec.encode(withExtra), codec.decode(withExtra)]) {
      assert.isTrue(result._tag === "Success")
      assert.deepStrictEqual((result as { success: unknown }).success, exact, "the extra field is dropped")
    }
  })

  it("numbers the fast path does not take (NaN, Infinity) still travel as the full codec writes them", () => {
    const codec = Contract.schemaCodec(Schema.Number)
    const encoded = codec.encode(Number.NaN)
    assert.isTrue(encoded._tag === "Success" && encoded.success === "NaN")
    const decoded = codec.decode("Infinity")
    assert.isTrue(decoded._tag === "Success" && decoded.success === Number.POSITIVE_INFINITY)
  })

  it("a value it refuses reports the path of the offending field", () => {
    const codec = Contract.schemaCodec(Shapes)
    const decoded = codec.decode({
      kind: "a",
      points: [{ x: 1, y: "no", label: "l", on: true }],
      pair: [1, "s"],
      none: null,
    })
    assert.isTrue(decoded._tag === "Failure")
    assert.deepStrictEqual((decoded as { failure: Contract.CodecIssue }).failure.path, ["points", 0, "y"])
  })

  it("Void encodes to nil and decodes from it", () => {
    const codec = Contract.schemaCodec(Schema.Void)
    const encoded = codec.encode(undefined)
    assert.isTrue(encoded._tag === "Success" && encoded.success === null)
    const decoded = codec.decode(null)
    assert.isTrue(decoded._tag === "Success" && decoded.success === undefined)
  })
})
