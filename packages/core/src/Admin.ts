/**
 * The admin service every node serves (at `zactor.Admin`, not announced in HELLO or discovery, reached by
 * node id or endpoint): `describe` tells what the node is and what it serves, each method with the JSON
 * Schema of its payload, success and error (the JSON wire form, see docs/PROTOCOL.md 3.5); `metrics` returns
 * a `Metrics.Snapshot`. The `zactor` CLI is built on it: `ls` describes, `top` polls metrics, and `call`
 * validates a payload against the described schema and sends it through `contractOf`, an untyped contract
 * whose bodies travel in their JSON wire form (the serving node validates them as for any call).
 *
 * @since 0.1.0
 */
import { Effect, Result, Schema } from "effect"
import type * as Contract from "./Contract.ts"
import { make as makeContract, unary } from "./Contract.ts"
import type * as Discovery from "./Discovery.ts"
import * as Envelope from "./Envelope.ts"
import * as Metrics from "./Metrics.ts"

/** The address the admin service is served at. @since 0.1.0 */
export const ADDRESS = "zactor.Admin"

/**
 * One method as `describe` shows it. `payload`, `success` and `error` are JSON Schema documents (draft
 * 2020-12, `{ dialect, schema, definitions }`) of the JSON wire form, or `null` for codecs that are not
 * Effect Schemas (protobuf contracts).
 *
 * @since 0.1.0
 */
export const MethodDescription = Schema.Struct({
  name: Schema.String,
  kind: Schema.Literals(["unary", "stream"]),
  idempotent: Schema.Boolean,
  timeoutMs: Schema.NullOr(Schema.Number),
  delivery: Schema.NullOr(Schema.String),
  payload: Schema.NullOr(Schema.Json),
  success: Schema.NullOr(Schema.Json),
  error: Schema.NullOr(Schema.Json),
})

/** @since 0.1.0 */
export type MethodDescription = typeof MethodDescription.Type

/**
 * One served address (a service name, or `@name` for an actor served with `serve`) and its methods.
 *
 * @since 0.1.0
 */
export const ContractDescription = Schema.Struct({
  name: Schema.String,
  methods: Schema.Array(MethodDescription),
})

/** @since 0.1.0 */
export type ContractDescription = typeof ContractDescription.Type

/**
 * A member of the node's discovery view (empty without discovery).
 *
 * @since 0.1.0
 */
export const MemberDescription = Schema.Struct({
  node: Schema.String,
  state: Schema.String,
  registered: Schema.Boolean,
  endpoints: Schema.Array(Schema.String),
  services: Schema.Array(Schema.String),
  actors: Schema.Array(Schema.String),
})

/** @since 0.1.0 */
export type MemberDescription = typeof MemberDescription.Type

/**
 * What `describe` returns.
 *
 * @since 0.1.0
 */
export const Description = Schema.Struct({
  node: Schema.String,
  endpoints: Schema.Array(Schema.String),
  services: Schema.Array(Schema.String),
  actors: Schema.Array(Schema.String),
  meta: Schema.Record(Schema.String, Schema.String),
  protocolVersion: Schema.Number,
  pid: Schema.Number,
  /** `node <version>` of the process. */
  runtime: Schema.String,
  /** When the node started (epoch ms). */
  startedAt: Schema.Number,
  contracts: Schema.Array(ContractDescription),
  peers: Schema.Array(Metrics.Peer),
  members: Schema.Array(MemberDescription),
})

/** @since 0.1.0 */
export type Description = typeof Description.Type

const Empty = Schema.Struct({})

/**
 * The admin contract.
 *
 * @since 0.1.0
 */
export const Admin = makeContract(ADDRESS, {
  describe: unary({ payload: Empty, success: Description, idempotent: true }),
  metrics: unary({ payload: Empty, success: Metrics.Snapshot, idempotent: true }),
})

/**
 * What the admin handlers read from their node.
 *
 * @since 0.1.0
 */
export interface Host {
  readonly info: () => Envelope.NodeInfo
  readonly startedAt: number
  /** The contracts served with `serve`, by address. */
  readonly contracts: () => ReadonlyMap<string, Contract.Contract>
  readonly snapshot: () => Metrics.Snapshot
  readonly members: () => ReadonlyArray<Discovery.MemberView>
}

// JSON Schemas are computed once per codec: describing a node does not re-derive them.
const jsonSchemas = new WeakMap<object, Schema.Json | null>()

const jsonSchemaOf = (codec: Contract.BodyCodec<unknown>): Schema.Json | null => {
  const known = jsonSchemas.get(codec)
  if (known !== undefined) return known
  let document: Schema.Json | null = null
  if (codec.schema !== undefined) {
    try {
      document = JSON.parse(JSON.stringify(Schema.toJsonSchemaDocument(codec.schema))) as Schema.Json
    } catch {
      // A schema JSON Schema cannot express: describe it as unknown rather than fail describe.
      document = null
    }
  }
  jsonSchemas.set(codec, document)
  return document
}

/**
 * Describes a contract served at `address`.
 *
 * @since 0.1.0
 */
export const describeContract = (address: string, contract: Contract.Contract): ContractDescription => ({
  name: address,
  methods: Object.entries(contract.methods).map(([name, method]) => ({
    name,
    kind: method._tag === "Unary" ? "unary" : "stream",
    idempotent: method.idempotent,
    timeoutMs: method.timeoutMs ?? null,
    delivery: method._tag === "Unary" ? (method.delivery ?? null) : null,
    payload: jsonSchemaOf(method.payload),
    success: jsonSchemaOf(method._tag === "Unary" ? method.success : method.element),
    error: jsonSchemaOf(method.error),
  })),
})

/**
 * The admin handlers of a node.
 *
 * @since 0.1.0
 */
export const handlers = (host: Host) => ({
  describe: () =>
    Effect.sync((): Description => {
      const info = host.info()
      return {
        node: info.id,
        endpoints: info.endpoints,
        services: info.services,
        actors: info.actors,
        meta: info.meta,
        protocolVersion: Envelope.PROTOCOL_VERSION,
        pid: process.pid,
        runtime: `node ${process.version}`,
        startedAt: host.startedAt,
        contracts: [...host.contracts()]
          .filter(([address]) => address !== ADDRESS)
          .map(([address, contract]) => describeContract(address, contract)),
        peers: host.snapshot().peers,
        members: host.members().map((member) => ({
          node: member.nodeId,
          state: member.state,
          registered: member.registered,
          endpoints: member.endpoints,
          services: member.services,
          actors: member.actors,
        })),
      }
    }),
  metrics: () => Effect.sync(host.snapshot),
})

// ---- calling without compile-time types -----------------------------------------------------------------

/** Passes values through: bodies stay in their JSON wire form, validated by the serving node. */
const wireCodec: Contract.BodyCodec<unknown> = {
  encode: (value) => Result.succeed(value),
  decode: (wire) => Result.succeed(wire),
}

/**
 * An untyped contract from a description: payloads, results and application errors are their JSON wire
 * form (the node that serves it validates the payload and answers `invalid_argument` naming the field).
 * Lets tools call any method they discovered, e.g. `zactor call`.
 *
 * @since 0.1.0
 */
export const contractOf = (description: ContractDescription): Contract.Contract => {
  const methods: Record<string, Contract.Method> = {}
  for (const method of description.methods) {
    methods[method.name] =
      method.kind === "unary"
        ? {
            _tag: "Unary",
            payload: wireCodec,
            success: wireCodec,
            error: wireCodec,
            idempotent: method.idempotent,
            timeoutMs: method.timeoutMs ?? undefined,
            delivery: method.delivery === "at-least-once" ? "at-least-once" : undefined,
          }
        : {
            _tag: "ServerStream",
            payload: wireCodec,
            element: wireCodec,
            error: wireCodec,
            idempotent: method.idempotent,
            timeoutMs: method.timeoutMs ?? undefined,
          }
  }
  // Not through Contract.make: actor addresses (`@name`) are not contract names, and the node checked names.
  return { _tag: "Contract", name: description.name, methods }
}
