// The generated code at run time: the golden output of the greeter and required fixtures, used the way an
// application uses it. Declarations land on the method objects, the protobuf bodies encode to bytes and check
// what they decode, and core serves and calls the contract across two nodes, applying the declared delivery.

import { create, toBinary } from "@bufbuild/protobuf"
import { assert, describe, it } from "@effect/vitest"
import { type CallContext, Node, RpcError } from "@zactor/core"
import { Effect, Result, Stream } from "effect"
import { HelloReplySchema, HelloRequestSchema, StreamRequestSchema } from "./golden/greeter/greeter_pb.js"
import { GreeterContract, type GreeterHandlers } from "./golden/greeter/greeter_zactor.js"
import { EntrySchema } from "./golden/required/legacy_pb.js"
import { LedgerContract } from "./golden/required/legacy_zactor.js"

const declarationsOf = (method: {
  readonly _tag: string
  readonly idempotent: boolean
  readonly timeoutMs: number | undefined
  readonly delivery?: string | undefined
  readonly dedupe?: boolean | undefined
}) => ({
  _tag: method._tag,
  idempotent: method.idempotent,
  timeoutMs: method.timeoutMs,
  delivery: method.delivery,
  dedupe: method.dedupe,
})

describe("a generated contract", () => {
  it("is named after the service and carries each rpc's declarations", () => {
    const { methods } = GreeterContract
    assert.strictEqual(GreeterContract.name, "zactor.test.greeter.v1.Greeter")
    assert.deepStrictEqual(Object.keys(methods), [
      "SayHello",
      "StreamGreetings",
      "Record",
      "Store",
      "Render",
      "OldHello",
    ])
    const unary = { _tag: "Unary", idempotent: false, timeoutMs: undefined, delivery: undefined, dedupe: undefined }
    assert.deepStrictEqual(declarationsOf(methods.SayHello), { ...unary, idempotent: true, timeoutMs: 2000 })
    assert.deepStrictEqual(declarationsOf(methods.StreamGreetings), { ...unary, _tag: "ServerStream" })
    assert.deepStrictEqual(declarationsOf(methods.Record), { ...unary, timeoutMs: 30000, delivery: "at-least-once" })
    assert.deepStrictEqual(declarationsOf(methods.Store), { ...unary, idempotent: true, delivery: "at-least-once" })
    assert.deepStrictEqual(declarationsOf(methods.Render), {
      ...unary,
      idempotent: true,
      delivery: "at-least-once",
      dedupe: true,
    })
    assert.deepStrictEqual(declarationsOf(methods.OldHello), unary)
  })
})

describe("protobuf bodies", () => {
  const { payload } = GreeterContract.methods.SayHello
  const request = create(HelloRequestSchema, { name: "Ada" })

  it("encode a message to its binary encoding, which msgpack carries as bin", () => {
    const encoded = payload.encode(request)
    assert.isTrue(Result.isSuccess(encoded))
    if (Result.isSuccess(encoded)) assert.deepStrictEqual(encoded.success, toBinary(HelloRequestSchema, request))
  })

  it("decode any Uint8Array, a Buffer included, and read absent fields as their defaults", () => {
    const decoded = payload.decode(Buffer.from(toBinary(HelloRequestSchema, request)))
    assert.isTrue(Result.isSuccess(decoded))
    if (Result.isSuccess(decoded)) assert.strictEqual(decoded.success.name, "Ada")
    const empty = payload.decode(new Uint8Array(0))
    assert.isTrue(Result.isSuccess(empty) && empty.success.name === "")
  })

  it("refuse what is not a message of their type, or not its binary encoding", () => {
    const plain = payload.encode({ name: "Ada" } as unknown as typeof request)
    assert.isTrue(Result.isFailure(plain) && plain.failure.message.includes("zactor.test.greeter.v1.HelloRequest"))
    const other = payload.encode(create(HelloReplySchema) as unknown as typeof request)
    assert.isTrue(Result.isFailure(other))
    assert.isTrue(Result.isFailure(payload.decode("Ada")))
    // Field 1 as a string whose length runs past the end of the bytes.
    assert.isTrue(Result.isFailure(payload.decode(new Uint8Array([0x0a, 0x09, 0x41]))))
    // Field 1 (a proto3 string) holding invalid UTF-8.
    assert.isTrue(Result.isFailure(payload.decode(new Uint8Array([0x0a, 0x01, 0xff]))))
  })

  it("check proto2 required fields when decoding, directly or in nested messages", () => {
    const post = LedgerContract.methods.Post
    const missing = post.payload.decode(new Uint8Array(0)) // an Entry without its required account
    assert.isTrue(Result.isFailure(missing) && missing.failure.message.includes("required"))
    const present = post.payload.decode(toBinary(EntrySchema, create(EntrySchema, { account: "acct-1" })))
    assert.isTrue(Result.isSuccess(present) && present.success.account === "acct-1")
    const nested = post.success.decode(new Uint8Array([0x0a, 0x00])) // Posted.entries[0] = an Entry without account
    assert.isTrue(Result.isFailure(nested) && nested.failure.message.includes("required"))
    // Lookup has no required field: nothing to check.
    assert.isTrue(Result.isSuccess(LedgerContract.methods.Get.payload.decode(new Uint8Array(0))))
  })
})

/** Serves the greeter on one node and calls it from another, both on loopback. */
const greeterNodes = Effect.gen(function* () {
  const keys: Array<{ readonly method: string; readonly key: string | number | undefined }> = []
  const reply = (message: string) => create(HelloReplySchema, { message })
  const seen = (context: CallContext, message: string) => {
    keys.push({ method: context.method, key: context.headers.ik })
    return reply(message)
  }
  const handlers: GreeterHandlers = {
    SayHello: ({ name }) =>
      name === ""
        ? Effect.fail(new RpcError({ code: "invalid_argument", message: "name is empty" }))
        : Effect.succeed(reply(`Hello, ${name}!`)),
    StreamGreetings: ({ name, count }) =>
      Stream.range(1, count).pipe(Stream.map((n) => reply(`${n}: Hello, ${name}!`))),
    Record: async ({ name }, context) => seen(context, `recorded ${name}`),
    Store: async ({ name }, context) => seen(context, `stored ${name}`),
    Render: async ({ name }, context) => seen(context, `rendered ${name}`),
    OldHello: async ({ name }) => reply(`Hi ${name}`),
  }
  const server = yield* Node.makeZmq({ id: "greeter-server" })
  yield* server.serve(GreeterContract, handlers)
  const client = yield* Node.makeZmq({ id: "greeter-client" })
  yield* client.connect(server.endpoints()[0]!)
  return { greeter: client.client(GreeterContract), keys }
})

describe("a generated contract served and called by core", () => {
  it.live("answers unary calls and streams, and sends a handler's RpcError as its code", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { greeter } = yield* greeterNodes
        const hello = yield* greeter.SayHello(create(HelloRequestSchema, { name: "Ada" }))
        assert.strictEqual(hello.message, "Hello, Ada!")
        assert.strictEqual(hello.$typeName, "zactor.test.greeter.v1.HelloReply")
        const lines = yield* Stream.runCollect(
          greeter.StreamGreetings(create(StreamRequestSchema, { name: "Bo", count: 3 })),
        )
        assert.deepStrictEqual(
          lines.map((line) => line.message),
          ["1: Hello, Bo!", "2: Hello, Bo!", "3: Hello, Bo!"],
        )
        const error = yield* Effect.flip(greeter.SayHello(create(HelloRequestSchema, { name: "" })))
        assert.isTrue(RpcError.is(error) && error.code === "invalid_argument")
      }),
    ),
  )

  it.live("sends at-least-once calls with an idempotency key unless the method is idempotent without dedupe", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { greeter, keys } = yield* greeterNodes
        const request = create(HelloRequestSchema, { name: "Cy" })
        yield* greeter.Record(request)
        yield* greeter.Store(request)
        yield* greeter.Render(request)
        const keyed = Object.fromEntries(keys.map(({ method, key }) => [method.split("/")[1], key !== undefined]))
        // Record is not declared idempotent: its resends must be deduplicated. Render declares dedupe.
        assert.deepStrictEqual(keyed, { Record: true, Store: false, Render: true })
      }),
    ),
  )
})
