/**
 * Service contracts: named methods, each with codecs for its payload, success (or stream element) and error,
 * plus declarations the runtime acts on (idempotent, default timeout). Contracts come from Effect Schema
 * (`Contract.unary({ payload: Schema... })`) or from generated protobuf code; both produce the same runtime
 * shape, so serving, calling, delivery and supervision never care where a contract came from.
 *
 * @since 0.1.0
 */
import { Duration, Result, Schema, SchemaIssue } from "effect"
import type { Delivery } from "./DeliveryPolicy.ts"
import * as CodecGuard from "./internal/codecGuard.ts"
import * as SchemaWire from "./internal/schemaWire.ts"

/**
 * Why a value did not fit a codec: a message and the path of the offending field.
 *
 * @since 0.1.0
 */
export interface CodecIssue {
  readonly message: string
  readonly path: ReadonlyArray<string | number>
}

/**
 * Converts values of `A` to and from their wire form (a msgpack-able value, or bytes for protobuf).
 * Validation happens here, on both ends.
 *
 * @since 0.1.0
 */
export interface BodyCodec<A> {
  /** Validates and encodes a value. */
  encode(value: A): Result.Result<unknown, CodecIssue>
  /** Decodes and validates a wire value. */
  decode(wire: unknown): Result.Result<A, CodecIssue>
  /** The Effect Schema the codec was made from, when it was one: the admin service describes it as JSON Schema. */
  readonly schema?: Schema.Top | undefined
  /** The protobuf message type of a protobuf codec, when known: the admin service describes it to tools. */
  readonly protobuf?: ProtobufType | undefined
}

/**
 * A protobuf body's message type and the descriptors that define it: enough for a tool without the generated
 * code (`zactor call`) to read and write the body from its canonical JSON form.
 *
 * @since 0.1.0
 */
export interface ProtobufType {
  /** The full name of the message, e.g. `acme.billing.v1.Invoice`. */
  readonly typeName: string
  /** A serialized `google.protobuf.FileDescriptorSet`: the message's file and every file it imports. */
  readonly descriptorSet: () => Uint8Array
}

/**
 * The functions of `@bufbuild/protobuf` (v2) a protobuf codec encodes and decodes with. Pass the module itself
 * (`import * as protobuf from "@bufbuild/protobuf"`): zactor's core does not depend on it.
 *
 * @since 0.1.0
 */
export interface ProtobufRuntime<S, A> {
  readonly toBinary: (schema: S, message: A) => Uint8Array
  readonly fromBinary: (schema: S, bytes: Uint8Array) => A
  readonly isMessage: (value: unknown, schema: S) => boolean
  /** Optional: the serialized `FileDescriptorSet` of a schema, so the admin service can describe its bodies. */
  readonly descriptorSet?: ((schema: S) => Uint8Array) | undefined
}

/** Runs one protobuf step, turning what it throws (a malformed message, bad UTF-8) into a codec issue. */
const attemptProtobuf = <A>(step: () => A): Result.Result<A, CodecIssue> => {
  try {
    return Result.succeed(step())
  } catch (error) {
    return Result.fail({ message: error instanceof Error ? error.message : String(error), path: [] })
  }
}

/**
 * The codec of messages of a protobuf-es schema (docs/PROTOCOL.md, 3.5): the wire form is the message's binary
 * encoding, which msgpack carries as bin. Encoding takes only a message of that schema (made with `create`).
 * Decoding takes any Uint8Array (msgpack hands over a Buffer) and applies proto semantics: absent fields read as
 * their defaults, strings must be UTF-8, and with `checkRequired` the proto2 required fields must be present.
 * Generated contracts (protoc-gen-zactor) and protobuf topics use it.
 *
 * @since 0.1.0
 */
export const protobufCodec = <S extends { readonly typeName: string }, A>(
  schema: S,
  protobuf: ProtobufRuntime<S, A>,
  options: { readonly checkRequired: boolean } = { checkRequired: false },
): BodyCodec<A> => ({
  ...(protobuf.descriptorSet === undefined
    ? {}
    : { protobuf: { typeName: schema.typeName, descriptorSet: () => protobuf.descriptorSet!(schema) } }),
  encode: (value) =>
    protobuf.isMessage(value, schema)
      ? attemptProtobuf(() => protobuf.toBinary(schema, value))
      : Result.fail({ message: `expected a ${schema.typeName} message, made with create()`, path: [] }),
  decode: (wire) =>
    wire instanceof Uint8Array
      ? attemptProtobuf(() => {
          const message = protobuf.fromBinary(schema, wire)
          // fromBinary accepts a message without its required fields; toBinary refuses it.
          if (options.checkRequired) protobuf.toBinary(schema, message)
          return message
        })
      : Result.fail({ message: `expected the binary encoding of ${schema.typeName}`, path: [] }),
})

/**
 * Declarations of a method that the runtime acts on.
 *
 * @since 0.1.0
 */
export interface MethodDeclarations {
  /** Whether repeating the call is harmless, so the runtime may retry it. Default false. */
  readonly idempotent?: boolean | undefined
  /** Default deadline of a call, overridable per call. Default: the node's `defaultTimeout` (10 s). */
  readonly timeout?: Duration.Input | undefined
  /** Default delivery of calls to this method, overridable per call. Default `at-most-once`. */
  readonly delivery?: Delivery | undefined
}

/**
 * A request/reply method.
 *
 * @since 0.1.0
 */
export interface Unary<P, S, E> {
  readonly _tag: "Unary"
  readonly payload: BodyCodec<P>
  readonly success: BodyCodec<S>
  readonly error: BodyCodec<E>
  readonly idempotent: boolean
  readonly timeoutMs: number | undefined
  /** Declared delivery; `undefined` means `at-most-once`. */
  readonly delivery?: Delivery | undefined
  /**
   * Whether at-least-once retries carry an idempotency key even though the method is declared idempotent, so
   * that the callee runs the handler once rather than at least once. (Retries of a method not declared
   * idempotent always carry one.) Default false. Set by generated protobuf contracts from
   * `(zactor.method).dedupe`.
   */
  readonly dedupe?: boolean | undefined
}

/**
 * A method whose handler returns a stream of elements, consumed by the caller with bounded credit.
 *
 * @since 0.1.0
 */
export interface ServerStream<P, A, E> {
  readonly _tag: "ServerStream"
  readonly payload: BodyCodec<P>
  readonly element: BodyCodec<A>
  readonly error: BodyCodec<E>
  readonly idempotent: boolean
  readonly timeoutMs: number | undefined
}

/**
 * Any method.
 *
 * @since 0.1.0
 */
export type Method = Unary<unknown, unknown, unknown> | ServerStream<unknown, unknown, unknown>

/**
 * A named set of methods.
 *
 * @since 0.1.0
 */
export interface Contract<
  Name extends string = string,
  Methods extends Record<string, Method> = Record<string, Method>,
> {
  readonly _tag: "Contract"
  readonly name: Name
  readonly methods: Methods
}

/**
 * A schema usable on the wire: no services needed to decode or encode it.
 *
 * @since 0.1.0
 */
export type WireSchema<A> = Schema.Codec<A, unknown, never, never>

const issueFormatter = SchemaIssue.makeFormatterStandardSchemaV1()

const toCodecIssue = (error: Schema.SchemaError): CodecIssue => {
  const first = issueFormatter(error.issue).issues[0]
  const path = (first?.path ?? []).map((segment: PropertyKey | { readonly key: PropertyKey }) => {
    const key = typeof segment === "object" && segment !== null ? segment.key : segment
    return typeof key === "number" ? key : String(key)
  })
  return { message: first?.message ?? String(error), path }
}

/**
 * A codec from an Effect Schema. The wire form is the schema's JSON-safe encoding (`Schema.toCodecJson`), so
 * any msgpack implementation in any language can produce and read it, except for bytes: `Schema.Uint8Array`
 * travels as msgpack bin rather than base64 (see docs/PROTOCOL.md), and a received one longer than 64 bytes is a
 * view of the batch frame it arrived in, not a copy: `.slice()` one you keep long. Plain shapes (structs, tuples
 * and arrays of finite numbers, strings, booleans, literals) are checked by a fast path compiled once; any other
 * value, or one that fails it, goes through the full Schema codec, which names the offending field.
 *
 * @since 0.1.0
 */
export const schemaCodec = <A>(schema: WireSchema<A>): BodyCodec<A> => {
  const codec = Schema.toCodecJson(SchemaWire.wireSchema(schema))
  const encode = Schema.encodeResult(codec)
  const decode = Schema.decodeUnknownResult(codec)
  const slowEncode = (value: A) => CodecGuard.guarded(() => Result.mapError(encode(value), toCodecIssue))
  const slowDecode = (wire: unknown) => CodecGuard.guarded(() => Result.mapError(decode(wire), toCodecIssue))
  const fastEncode = SchemaWire.fastCodec(schema.ast, "encode")
  const fastDecode = SchemaWire.fastCodec(schema.ast, "decode")
  return {
    encode:
      fastEncode === undefined
        ? slowEncode
        : (value) => {
            const wire = fastEncode(value)
            return wire === SchemaWire.MISS ? slowEncode(value) : Result.succeed(wire)
          },
    decode:
      fastDecode === undefined
        ? slowDecode
        : (wire) => {
            const value = fastDecode(wire)
            return value === SchemaWire.MISS ? slowDecode(wire) : Result.succeed(value as A)
          },
    schema,
  }
}

const timeoutMsOf = (timeout: Duration.Input | undefined): number | undefined =>
  timeout === undefined ? undefined : Duration.toMillis(Duration.fromInputUnsafe(timeout))

/**
 * Declares a request/reply method from schemas. `success` defaults to `Schema.Void`, `error` to `Schema.Never`
 * (no application errors).
 *
 * @since 0.1.0
 */
export const unary = <P, S = void, E = never>(
  spec: {
    readonly payload: WireSchema<P>
    readonly success?: WireSchema<S>
    readonly error?: WireSchema<E>
  } & MethodDeclarations,
  // NoInfer: inside `make(...)` the contextual type `Method` would otherwise infer an omitted success or error
  // as `unknown` instead of the declared defaults.
): Unary<P, NoInfer<S>, NoInfer<E>> => ({
  _tag: "Unary",
  payload: schemaCodec(spec.payload),
  success: schemaCodec((spec.success ?? Schema.Void) as WireSchema<S>),
  error: schemaCodec((spec.error ?? Schema.Never) as WireSchema<E>),
  idempotent: spec.idempotent ?? false,
  timeoutMs: timeoutMsOf(spec.timeout),
  delivery: spec.delivery,
})

/**
 * Declares a server-streaming method from schemas. `error` defaults to `Schema.Never`.
 *
 * @since 0.1.0
 */
export const serverStream = <P, A, E = never>(
  spec: {
    readonly payload: WireSchema<P>
    readonly element: WireSchema<A>
    readonly error?: WireSchema<E>
  } & MethodDeclarations,
): ServerStream<P, A, NoInfer<E>> => ({
  _tag: "ServerStream",
  payload: schemaCodec(spec.payload),
  element: schemaCodec(spec.element),
  error: schemaCodec((spec.error ?? Schema.Never) as WireSchema<E>),
  idempotent: spec.idempotent ?? false,
  timeoutMs: timeoutMsOf(spec.timeout),
})

const namePattern = /^[A-Za-z_][A-Za-z0-9_.-]*$/

/**
 * Declares a contract. The name addresses the service on the wire (`Name/method`), so it must be stable.
 * Throws on an invalid service or method name (a programming error, caught at module load).
 *
 * @since 0.1.0
 */
export const make = <const Name extends string, const Methods extends Record<string, Method>>(
  name: Name,
  methods: Methods,
): Contract<Name, Methods> => {
  if (!namePattern.test(name)) throw new Error(`contract name "${name}" must match ${namePattern}`)
  for (const method of Object.keys(methods)) {
    if (!namePattern.test(method)) throw new Error(`method name "${name}/${method}" must match ${namePattern}`)
  }
  return { _tag: "Contract", name, methods }
}

/**
 * The wire path of a method: `Service/method`.
 *
 * @since 0.1.0
 */
export const pathOf = (contract: Contract, method: string): string => `${contract.name}/${method}`

/** Payload type of a method. @since 0.1.0 */
export type PayloadOf<M> =
  M extends Unary<infer P, unknown, unknown> ? P : M extends ServerStream<infer P, unknown, unknown> ? P : never
/** Success type of a unary method. @since 0.1.0 */
export type SuccessOf<M> = M extends Unary<unknown, infer S, unknown> ? S : never
/** Element type of a streaming method. @since 0.1.0 */
export type ElementOf<M> = M extends ServerStream<unknown, infer A, unknown> ? A : never
/** Application error type of a method. @since 0.1.0 */
export type ErrorOf<M> =
  M extends Unary<unknown, unknown, infer E> ? E : M extends ServerStream<unknown, unknown, infer E> ? E : never
