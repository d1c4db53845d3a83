/**
 * Actor references: the address of one actor as plain data (`_tag`, `name`, `node`, `endpoints`, `contract`),
 * typed by the actor's contract. A ref is all a caller needs to reach an actor from anywhere: it names the
 * hosting node's endpoints, so a ref received in a message (through any number of nodes) is used exactly like
 * a local one, through the node's ordinary client (`ActorRef.ask`) or teller (`ActorRef.tell`). Refs travel
 * inside payloads through `ActorRef.schema(contract)`, which encodes to a JSON-safe object and decodes back to
 * a usable, typed ref.
 *
 * This module owns the ref's shape, its codec and the way a ref becomes a client. It does not own the actor
 * behind the ref (spawning, mailboxes, stopping: `Actor.ts`), nor routing and connections (`Node.ts`).
 *
 * @since 0.1.0
 */
import { type Effect, Schema, SchemaTransformation } from "effect"
import type * as Contract from "./Contract.ts"
import * as Node from "./Node.ts"

/**
 * The key under which a ref carries its contract object. A symbol, so the contract (with its codecs) stays out
 * of `JSON.stringify`, `Object.keys` and the wire form, while a ref remains enough to build a typed client.
 *
 * @since 0.1.0
 */
export const ContractKey: unique symbol = Symbol.for("@zactor/core/ActorRef/contract")

/**
 * A reference to an actor serving contract `C`.
 *
 * @since 0.1.0
 */
export interface ActorRef<C extends Contract.Contract = Contract.Contract> {
  readonly _tag: "ActorRef"
  /** The actor's name, unique on its node; its wire address is `@name`. */
  readonly name: string
  /** The id of the node hosting the actor. */
  readonly node: string
  /** The endpoints the hosting node is bound to; callers connect to the first. */
  readonly endpoints: ReadonlyArray<string>
  /** The name of the actor's contract. */
  readonly contract: C["name"]
  /** The contract itself, for typing and for building clients; never serialized. */
  readonly [ContractKey]: C
}

/**
 * The wire form of a ref: plain JSON-safe data.
 *
 * @since 0.1.0
 */
export interface ActorRefEncoded {
  readonly _tag: "ActorRef"
  readonly name: string
  readonly node: string
  readonly endpoints: ReadonlyArray<string>
  readonly contract: string
}

/**
 * Builds a ref from its parts. Spawning returns refs already; this is for refs known by other means (e.g. a
 * well-known actor on a configured endpoint).
 *
 * @since 0.1.0
 */
export const make = <C extends Contract.Contract>(
  contract: C,
  fields: { readonly name: string; readonly node: string; readonly endpoints: ReadonlyArray<string> },
): ActorRef<C> => ({
  _tag: "ActorRef",
  name: fields.name,
  node: fields.node,
  endpoints: fields.endpoints,
  contract: contract.name,
  [ContractKey]: contract,
})

/**
 * Whether a value is an actor ref (of any contract).
 *
 * @since 0.1.0
 */
export const isActorRef = (u: unknown): u is ActorRef =>
  typeof u === "object" &&
  u !== null &&
  (u as { _tag?: unknown })._tag === "ActorRef" &&
  typeof (u as { [ContractKey]?: unknown })[ContractKey] === "object"

/**
 * The wire address of the actor: `@name`.
 *
 * @since 0.1.0
 */
export const address = (ref: ActorRef): string => `@${ref.name}`

/**
 * The plain-data form of a ref (what `schema` encodes to), e.g. for logs.
 *
 * @since 0.1.0
 */
export const encode = (ref: ActorRef): ActorRefEncoded => ({
  _tag: "ActorRef",
  name: ref.name,
  node: ref.node,
  endpoints: ref.endpoints,
  contract: ref.contract,
})

/**
 * Whether two refs name the same actor (same node, same name).
 *
 * @since 0.1.0
 */
export const equals = (a: ActorRef, b: ActorRef): boolean => a.node === b.node && a.name === b.name

const schemas = new WeakMap<Contract.Contract, Contract.WireSchema<ActorRef>>()

/**
 * The schema of refs to actors of `contract`, for use inside payloads:
 * `Contract.unary({ payload: Schema.Struct({ replyTo: ActorRef.schema(Counter) }) })`. It encodes to
 * `ActorRefEncoded` and decodes back to a ref carrying `contract`; decoding fails when the encoded ref names
 * another contract, so a ref can never be used with methods its actor does not serve.
 *
 * @since 0.1.0
 */
export const schema = <C extends Contract.Contract>(contract: C): Contract.WireSchema<ActorRef<C>> => {
  const cached = schemas.get(contract)
  if (cached !== undefined) return cached as Contract.WireSchema<ActorRef<C>>
  const encoded = Schema.Struct({
    _tag: Schema.Literal("ActorRef"),
    name: Schema.String,
    node: Schema.String,
    endpoints: Schema.Array(Schema.String),
    contract: Schema.Literal(contract.name),
  })
  const decoded = Schema.declare((u: unknown): u is ActorRef<C> => isActorRef(u) && u.contract === contract.name, {
    identifier: `ActorRef<${contract.name}>`,
  })
  const codec = encoded.pipe(
    Schema.decodeTo(
      decoded,
      SchemaTransformation.transform({
        decode: (wire) => make(contract, wire),
        encode: (ref) => ({
          _tag: "ActorRef" as const,
          name: ref.name,
          node: ref.node,
          endpoints: ref.endpoints,
          contract: contract.name,
        }),
      }),
    ),
  )
  schemas.set(contract, codec as Contract.WireSchema<ActorRef>)
  return codec
}

/** Where calls to the ref go: its node's first endpoint, or the node by id when the ref names no endpoint. */
const targetOf = (ref: ActorRef): { readonly endpoint: string } | { readonly node: string } => {
  const endpoint = ref.endpoints[0]
  return endpoint === undefined ? { node: ref.node } : { endpoint }
}

/**
 * Typed asks (request/reply with a deadline) to the actor behind `ref`, sent through `node`. A local ref goes
 * through the same client as a remote one: one code path. Calls fail with `RpcError` `not_found` once the actor
 * has stopped and `overloaded` when its mailbox is full.
 *
 * @since 0.1.0
 */
export const ask = <C extends Contract.Contract>(node: Node.NodeShape, ref: ActorRef<C>): Node.Client<C> =>
  node.client(ref[ContractKey], targetOf(ref), { address: address(ref) })

/**
 * Typed tells (one-way, at most once) to the actor behind `ref`, sent through `node`. A tell resolves once
 * queued for sending; a full mailbox drops it on arrival and counts it as a dead letter.
 *
 * @since 0.1.0
 */
export const tell = <C extends Contract.Contract>(node: Node.NodeShape, ref: ActorRef<C>): Node.Teller<C> =>
  node.teller(ref[ContractKey], targetOf(ref), { address: address(ref) })

/**
 * `ask` through the `Node` service in context.
 *
 * @since 0.1.0
 */
export const client = <C extends Contract.Contract>(
  ref: ActorRef<C>,
): Effect.Effect<Node.Client<C>, never, Node.Node> => Node.Node.useSync((node) => ask(node, ref))

/**
 * `tell` through the `Node` service in context.
 *
 * @since 0.1.0
 */
export const teller = <C extends Contract.Contract>(
  ref: ActorRef<C>,
): Effect.Effect<Node.Teller<C>, never, Node.Node> => Node.Node.useSync((node) => tell(node, ref))
