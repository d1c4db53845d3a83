// Mutation fuzzing of what a node reads from the wire: valid envelopes and batch frames, damaged at random (bytes
// flipped or replaced, cut short, spliced, lengths inflated). Seeded, so a failure names the input that caused it.
import { assert, describe, it } from "@effect/vitest"
import { BatchFrame } from "@zactor/transport"
import { Effect } from "effect"
import { Packr } from "msgpackr"
import * as zmq from "zeromq"
import * as Envelope from "../src/Envelope.ts"
import * as MsgpackRead from "../src/internal/msgpackRead.ts"
import { Calculator, waitFor, zmqNode } from "./fixtures.ts"

/** A small, seedable PRNG (mulberry32): the same seed gives the same inputs on every machine. */
const prng = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

const info: Envelope.NodeInfo = {
  id: "fuzz",
  services: ["Calculator"],
  actors: ["counter-1"],
  endpoints: ["tcp://127.0.0.1:5555"],
  meta: { zone: "a" },
} as unknown as Envelope.NodeInfo

/** One valid envelope of every kind, with bodies of every msgpack type zactor writes. */
const corpus: ReadonlyArray<Uint8Array> = [
  Envelope.encode([1, 0, info]),
  Envelope.encode([1, 1, info]),
  Envelope.encodeRequest(7, "Calculator/add", { a: 1, b: 2 }, 5000, { tp: "00-abc", ik: "key-1" }),
  Envelope.encodeRequest(8, "Calculator/echo", new Uint8Array(300).fill(7), 0, null),
  Envelope.encodeReply(7, 3),
  Envelope.encodeReply(9, { list: [1.5, -2, "x", null, true], nested: { deep: [[1], [2, [3]]] } }),
  Envelope.encode([1, 4, 7, "invalid_argument", "bad field a", { _tag: "DivisionByZero", dividend: 7 }]),
  Envelope.encode([1, 5, 7]),
  Envelope.encode([1, 6, "actor/counter-1", { _tag: "Increment", by: 2 ** 40 }, null]),
  Envelope.encode([1, 7, 7, "item"]),
  Envelope.encode([1, 8, 7]),
  Envelope.encode([1, 9, 7, 16]),
  Envelope.encode([1, 10, 7]),
  Envelope.encode([1, 11, 3, { calls: 2 }, ["actor/a", "actor/b"]]),
  Envelope.encode([1, 12, 3, { calls: 2 }, null]),
]

/** Length prefixes that claim far more than any input holds: array 32, map 32, str 32, bin 32. */
const HUGE_PREFIXES = [0xdd, 0xdf, 0xdb, 0xc6]

/** A damaged copy of `input`. */
const mutate = (input: Uint8Array, random: () => number): Uint8Array => {
  const bytes = Buffer.from(input)
  const at = () => Math.floor(random() * bytes.length)
  switch (Math.floor(random() * 6)) {
    case 0: {
      for (let n = 1 + Math.floor(random() * 4); n > 0; n--) bytes[at()]! ^= 1 << Math.floor(random() * 8)
      return bytes
    }
    case 1: {
      for (let n = 1 + Math.floor(random() * 4); n > 0; n--) bytes[at()] = Math.floor(random() * 256)
      return bytes
    }
    case 2:
      return bytes.subarray(0, at())
    case 3: {
      const cut = at()
      const noise = Buffer.from(Array.from({ length: 1 + Math.floor(random() * 16) }, () => random() * 256))
      return Buffer.concat([bytes.subarray(0, cut), noise, bytes.subarray(cut)])
    }
    case 4: {
      // A length prefix claiming up to 4 Gi items or bytes, followed by what is there.
      const cut = at()
      const prefix = Buffer.from([HUGE_PREFIXES[Math.floor(random() * 4)]!, 0xff, 0xff, 0xff, 0xf0])
      return Buffer.concat([bytes.subarray(0, cut), prefix, bytes.subarray(cut)])
    }
    default: {
      // Deep nesting: thousands of one-element arrays around a piece of the input.
      const depth = 1000 + Math.floor(random() * 20_000)
      return Buffer.concat([Buffer.alloc(depth, 0x91), bytes.subarray(at())])
    }
  }
}

const SEED = 0x5eed
const MUTATIONS = 20_000

describe("mutated input", () => {
  it("the envelope decoder answers every damaged envelope with an envelope or a reason, never a throw, quickly", () => {
    const random = prng(SEED)
    const reasons = new Map<string, number>()
    let slowest = 0
    for (let i = 0; i < MUTATIONS; i++) {
      const input = mutate(corpus[i % corpus.length]!, random)
      const started = performance.now()
      let result: Envelope.Envelope | Envelope.Malformed
      try {
        result = Envelope.decode(input)
      } catch (error) {
        assert.fail(`mutation ${i} (seed ${SEED}) threw: ${String(error)}; input ${Buffer.from(input).toString("hex")}`)
      }
      slowest = Math.max(slowest, performance.now() - started)
      const reason = Envelope.isMalformed(result) ? result.reason : "valid"
      reasons.set(reason, (reasons.get(reason) ?? 0) + 1)
    }
    // Every kind of damage was met, and answered for what it is.
    for (const reason of ["NotMsgpack", "NotAnEnvelope", "UnsupportedVersion", "UnknownKind", "BadFields", "valid"]) {
      assert.isAbove(reasons.get(reason) ?? 0, 0, `some mutations read as ${reason}: ${[...reasons]}`)
    }
    assert.isBelow(slowest, 250, "no input takes long to refuse")
  })

  it("nesting is bounded: deep input is refused as cheaply as it is short, even behind an extension value", () => {
    const reply = Envelope.encodeReply(7, 3)
    const nested = (depth: number, inner: Uint8Array) => Buffer.concat([Buffer.alloc(depth, 0x91), inner])
    // MAX_DEPTH levels of arrays around a reply are msgpack (not an envelope); one more is not msgpack.
    const deepest = Envelope.decode(nested(MsgpackRead.MAX_DEPTH - 1, reply))
    assert.isTrue(Envelope.isMalformed(deepest) && deepest.reason === "NotAnEnvelope")
    const tooDeep = Envelope.decode(nested(MsgpackRead.MAX_DEPTH, reply))
    assert.isTrue(Envelope.isMalformed(tooDeep) && tooDeep.reason === "NotMsgpack")
    assert.include((tooDeep as Envelope.Malformed).detail, `nested deeper than ${MsgpackRead.MAX_DEPTH}`)
    // A 4 MiB payload of nested arrays, and the same behind a timestamp extension (which msgpackr, unbounded,
    // would read): refused in well under a millisecond each, where a stack overflow cost milliseconds.
    const timestamp = Buffer.from([0x92, 0xd6, 0xff, 0, 0, 0, 1])
    const inputs = [nested(4 * 1024 * 1024, reply), Buffer.concat([timestamp, nested(4 * 1024 * 1024, reply)])]
    for (const input of inputs) Envelope.decode(input)
    const started = performance.now()
    for (let i = 0; i < 100; i++) {
      const result = Envelope.decode(inputs[i % 2]!)
      assert.isTrue(Envelope.isMalformed(result) && result.reason === "NotMsgpack")
    }
    assert.isBelow((performance.now() - started) / 100, 1, "ms per refusal")
    // Extension values still read, through msgpackr, once the whole input is checked.
    const withTimestamp = Envelope.decode(Envelope.encode([1, 3, 7, new Date(1000)]))
    assert.isFalse(Envelope.isMalformed(withTimestamp))
    assert.deepStrictEqual((withTimestamp as Envelope.Reply)[3], new Date(1000))
  })

  it("the fast reader agrees with msgpackr on every damaged input both accept", () => {
    const packr = new Packr({ useRecords: false, moreTypes: false, int64AsType: "number" })
    const random = prng(SEED + 1)
    let compared = 0
    for (let i = 0; i < MUTATIONS; i++) {
      const input = mutate(corpus[i % corpus.length]!, random)
      let ours: unknown
      let theirs: unknown
      try {
        ours = MsgpackRead.read(input)
      } catch {
        continue
      }
      if (ours === MsgpackRead.UNSUPPORTED) continue
      try {
        // msgpackr reads a first value and leaves trailing bytes; the fast reader refuses them, as a node must.
        const values = packr.unpackMultiple(Buffer.from(input)) as Array<unknown>
        if (values.length !== 1) continue
        theirs = values[0]
      } catch {
        continue
      }
      compared++
      assert.deepStrictEqual(
        normalize(ours),
        normalize(theirs),
        `mutation ${i} (seed ${SEED + 1}): ${Buffer.from(input).toString("hex")}`,
      )
    }
    assert.isAbove(compared, MUTATIONS / 10, "enough inputs were read by both to compare")
  })

  it("the batch frame decoder answers every damaged frame with payloads or a rejection, never a throw", () => {
    const random = prng(SEED + 2)
    const frames = [
      BatchFrame.encode(corpus, 0, corpus.length, byteLength(corpus), undefined),
      BatchFrame.encode(corpus, 2, 3, byteLength(corpus.slice(2, 5)), new Uint8Array(64).fill(9)),
    ]
    let rejected = 0
    for (let i = 0; i < MUTATIONS; i++) {
      const input = mutate(frames[i % frames.length]!, random)
      let result: ReturnType<typeof BatchFrame.decode>
      try {
        result = BatchFrame.decode(input, 4 * 1024 * 1024)
      } catch (error) {
        assert.fail(`mutation ${i} threw: ${String(error)}; input ${Buffer.from(input).toString("hex")}`)
      }
      if ("payloads" in result) {
        let end = 0
        for (const payload of result.payloads) {
          // Every payload lies inside the frame it came from.
          assert.isTrue(payload.byteOffset + payload.byteLength <= input.byteOffset + input.byteLength)
          end += payload.byteLength
        }
        assert.isAtMost(end, input.byteLength)
      } else rejected++
    }
    assert.isAbove(rejected, MUTATIONS / 4)
  })

  it.live("a node fed thousands of damaged batches keeps serving its other callers, and counts what it refused", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const server = yield* zmqNode({ id: "fuzzed" })
        yield* server.serve(Calculator, {
          add: ({ a, b }) => Effect.succeed(a + b),
          divide: ({ a, b }) => Effect.succeed(a / b),
          sleep: () => Effect.succeed("slept"),
        })
        const endpoint = server.endpoints()[0]!
        const client = yield* zmqNode({ id: "honest" })
        yield* client.connect(endpoint)
        const calculator = client.client(Calculator)

        const attacker = new zmq.Dealer({ linger: 0 })
        yield* Effect.addFinalizer(() => Effect.sync(() => attacker.close()))
        attacker.connect(endpoint)
        const random = prng(SEED + 3)
        const valid = [
          Envelope.encode([1, 0, { ...info, id: "attacker" }]),
          Envelope.encodeRequest(1, "Calculator/add", { a: 1, b: 2 }, 5000, null),
          Envelope.encodeRequest(2, "Calculator/divide", { a: 1, b: 0 }, 5000, null),
          Envelope.encode([1, 6, "actor/nobody", { x: 1 }, null]),
        ]
        const DAMAGED = 3000
        const attack = Effect.promise(async () => {
          for (let i = 0; i < DAMAGED; i++) {
            // Damaged envelopes in intact frames, and damaged frames.
            const payloads = valid.map((v) => (random() < 0.5 ? mutate(v, random) : v))
            const frame = BatchFrame.encode(payloads, 0, payloads.length, byteLength(payloads), undefined)
            await attacker.send(random() < 0.3 ? mutate(frame, random) : frame)
            if (i % 100 === 0) await new Promise((resolve) => setImmediate(resolve))
          }
        })
        const honest = Effect.all(
          Array.from({ length: 600 }, (_, i) => calculator.add({ a: i, b: 1 })),
          { concurrency: 32 },
        )
        const [, sums] = yield* Effect.all([attack, honest], { concurrency: 2 })
        assert.deepStrictEqual(
          sums,
          Array.from({ length: 600 }, (_, i) => i + 1),
        )
        // Refused input is counted: envelopes by the node, frames by its transport.
        yield* waitFor(() => server.metrics().malformed > 100, 5000, "malformed envelopes counted")
        yield* waitFor(() => server.transport.metrics().rejected > 100, 5000, "damaged frames counted")
        assert.strictEqual(yield* calculator.add({ a: 40, b: 2 }), 42)
      }),
    ),
  )
})

const byteLength = (payloads: ReadonlyArray<Uint8Array>): number => payloads.reduce((n, p) => n + p.byteLength, 0)

/** Values as plain data: Buffers and Uint8Arrays as byte arrays, so the two readers' byte types compare equal. */
const normalize = (value: unknown): unknown => {
  if (value instanceof Uint8Array) return { bytes: [...value] }
  if (Array.isArray(value)) return value.map(normalize)
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, normalize(v)]))
  }
  return value
}
