/**
 * How Schema contracts meet msgpack, beyond `Schema.toCodecJson`:
 *
 * - **Bytes travel as msgpack bin.** The JSON-safe form of `Schema.Uint8Array` is a base64 string, which costs
 *   a third more bytes and an encode and decode in JavaScript on every call (4 KiB echoes ran at a fifth of the
 *   rate of strings). msgpack has a binary type, so `wireSchema` rewrites every `Schema.Uint8Array` that keeps
 *   Effect's default JSON form into one that stays binary; decoding gives a plain `Uint8Array`, a view of the
 *   received frame (a copy up to 64 bytes). Schemas that chose an encoding themselves (`Uint8ArrayFromBase64`,
 *   ...) keep it.
 * - **A fast path for plain shapes.** Structs, tuples and arrays of finite numbers, strings, booleans, literals
 *   and null encode to themselves; for those, `fastCodec` checks and copies a value in a few dozen nanoseconds
 *   instead of running the Schema parser (~0.3 µs and ~0.5 KB of garbage per struct on the hot path). It
 *   answers `MISS` for anything it is not sure of, and the caller then runs the full codec, which validates and
 *   reports the issue with its path: fast and full paths agree on every value the fast one accepts (tested).
 */
import { Schema, SchemaAST, SchemaTransformation } from "effect"

// ---- bytes as bin ----------------------------------------------------------------------------------------------

/** Effect's JSON form of `Schema.Uint8Array` (base64): the annotation that marks a declaration to rewrite. */
const base64Form = Schema.Uint8Array.ast.annotations?.toCodecJson

/** A `Uint8Array` already in its wire form: msgpack writes it as bin, and reads bin back as a Buffer. */
const binary = Schema.Uint8Array.annotate({ toCodecJson: () => undefined })

/**
 * Up to this length received bytes are copied: V8 keeps such small typed arrays on its heap, so the copy costs
 * about what a view does, and a small value kept for long (an id, a token, a hash) holds no frame in memory.
 */
const COPY_MAX_BYTES = 64

/**
 * Received bytes as a plain `Uint8Array` (not a Buffer): a copy when small, else a view of the batch frame they
 * arrived in. Copying larger values allocated a backing store per value, and that allocation and its collection
 * cost more than the rest of a 4 KiB call; frames are never reused, so a view never changes under its holder.
 */
const binaryForm = () =>
  Schema.link<Uint8Array>()(
    binary,
    SchemaTransformation.transform<Uint8Array, Uint8Array>({
      decode: (bytes) =>
        bytes.length <= COPY_MAX_BYTES
          ? new Uint8Array(bytes)
          : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength),
      encode: (bytes) => bytes,
    }),
  )

type Memo = Map<SchemaAST.AST, SchemaAST.AST>

const mapAll = <A>(items: ReadonlyArray<A>, f: (a: A) => A): ReadonlyArray<A> => {
  let out: Array<A> | undefined
  for (let i = 0; i < items.length; i++) {
    const mapped = f(items[i]!)
    if (mapped !== items[i] && out === undefined) out = items.slice(0, i)
    out?.push(mapped)
  }
  return out ?? items
}

const rewriteEncoding = (encoding: SchemaAST.Encoding | undefined, memo: Memo): SchemaAST.Encoding | undefined => {
  if (encoding === undefined) return undefined
  const links = mapAll(encoding, (link) => {
    const to = rewrite(link.to, memo)
    return to === link.to ? link : new SchemaAST.Link(to, link.transformation)
  })
  return links === encoding ? encoding : (links as SchemaAST.Encoding)
}

/** The AST with every default-encoded `Uint8Array` declaration made binary; the same node when none is. */
const rewrite = (ast: SchemaAST.AST, memo: Memo): SchemaAST.AST => {
  const known = memo.get(ast)
  if (known !== undefined) return known
  // Placeholder against cycles through shared nodes; Suspend (the only way to recurse) rewrites lazily.
  memo.set(ast, ast)
  const encoding = rewriteEncoding(ast.encoding, memo)
  const rec = (child: SchemaAST.AST) => rewrite(child, memo)
  let out: SchemaAST.AST = ast
  switch (ast._tag) {
    case "Declaration": {
      const bytes =
        ast.encoding === undefined && base64Form !== undefined && ast.annotations?.toCodecJson === base64Form
      const typeParameters = mapAll(ast.typeParameters, rec)
      if (bytes || typeParameters !== ast.typeParameters || encoding !== ast.encoding) {
        out = new SchemaAST.Declaration(
          typeParameters,
          ast.run,
          bytes ? { ...ast.annotations, toCodecJson: binaryForm } : ast.annotations,
          ast.checks,
          encoding,
          ast.context,
          ast.encodingChecks,
          ast.encodingRun,
        )
      }
      break
    }
    case "Objects": {
      const properties = mapAll(ast.propertySignatures, (p) => {
        const type = rec(p.type)
        return type === p.type ? p : new SchemaAST.PropertySignature(p.name, type)
      })
      const indexes = mapAll(ast.indexSignatures, (s) => {
        const type = rec(s.type)
        return type === s.type ? s : new SchemaAST.IndexSignature(s.parameter, type)
      })
      if (properties !== ast.propertySignatures || indexes !== ast.indexSignatures || encoding !== ast.encoding) {
        out = new SchemaAST.Objects(
          properties,
          indexes,
          ast.annotations,
          ast.checks,
          encoding,
          ast.context,
          ast.encodingChecks,
        )
      }
      break
    }
    case "Arrays": {
      const elements = mapAll(ast.elements, rec)
      const rest = mapAll(ast.rest, rec)
      if (elements !== ast.elements || rest !== ast.rest || encoding !== ast.encoding) {
        out = new SchemaAST.Arrays(
          ast.isMutable,
          elements,
          rest,
          ast.annotations,
          ast.checks,
          encoding,
          ast.context,
          ast.encodingChecks,
        )
      }
      break
    }
    case "Union": {
      const types = mapAll(ast.types, rec)
      if (types !== ast.types || encoding !== ast.encoding) {
        out = new SchemaAST.Union(
          types,
          ast.options,
          ast.annotations,
          ast.checks,
          encoding,
          ast.context,
          ast.encodingChecks,
        )
      }
      break
    }
    case "Suspend": {
      const thunk = ast.thunk
      out = new SchemaAST.Suspend(() => rewrite(thunk(), memo), ast.annotations, ast.checks, encoding, ast.context)
      break
    }
    default:
    // Leaves (strings, numbers, ...) hold no bytes; one whose own encoding ends in bytes keeps base64.
  }
  memo.set(ast, out)
  return out
}

/**
 * The schema whose JSON codec is the wire form: `schema` itself, or a copy whose `Uint8Array`s stay binary.
 */
export const wireSchema = <S extends Schema.Top>(schema: S): S => {
  const ast = rewrite(schema.ast, new Map())
  return ast === schema.ast ? schema : Schema.make<S>(ast)
}

// ---- fast path -------------------------------------------------------------------------------------------------

/** What a fast codec answers when the full codec must decide. */
export const MISS: unique symbol = Symbol.for("@zactor/core/schemaWire/MISS")

/** Checks and copies one value (encoding or decoding), or answers `MISS`. */
export type Fast = (value: unknown) => unknown

const isPlainObject = (u: unknown): u is Record<string, unknown> => {
  if (typeof u !== "object" || u === null) return false
  const proto = Object.getPrototypeOf(u)
  return proto === Object.prototype || proto === null
}

/** The number of own enumerable keys of a plain object, counting no further than `limit + 1` (no allocation). */
const ownKeyCount = (u: Record<string, unknown>, limit: number): number => {
  let n = 0
  for (const key in u) {
    if (!Object.hasOwn(u, key)) continue
    if (++n > limit) break
  }
  return n
}

interface FastProperty {
  readonly name: string
  readonly optional: boolean
  readonly fast: Fast
}

/**
 * The fast codec of a schema's type, for one direction (`Void` is `undefined` as a value and nil on the wire),
 * or `undefined` when the schema is not a plain shape (checks, transformations, declarations, optional values,
 * records, suspensions: the full codec handles those).
 */
export const fastCodec = (ast: SchemaAST.AST, direction: "encode" | "decode"): Fast | undefined => {
  if (ast.checks !== undefined || ast.encoding !== undefined) return undefined
  switch (ast._tag) {
    case "Number":
      // Non-finite numbers travel as strings ("NaN", "Infinity"): the full codec does that.
      return (u) => (typeof u === "number" && Number.isFinite(u) ? u : MISS)
    case "String":
      return (u) => (typeof u === "string" ? u : MISS)
    case "Boolean":
      return (u) => (typeof u === "boolean" ? u : MISS)
    case "Null":
      return (u) => (u === null ? u : MISS)
    case "Void":
    case "Undefined":
      return direction === "encode" ? (u) => (u === undefined ? null : MISS) : (u) => (u === null ? undefined : MISS)
    case "Literal": {
      const literal = ast.literal
      if (typeof literal === "bigint") return undefined
      return (u) => (u === literal ? u : MISS)
    }
    case "Union": {
      // Unions of literals (`Schema.Literals`); other unions need the parser's member selection.
      const literals = new Set<unknown>()
      for (const member of ast.types) {
        if (!SchemaAST.isLiteral(member) || member.checks !== undefined || member.encoding !== undefined)
          return undefined
        if (typeof member.literal === "bigint") return undefined
        literals.add(member.literal)
      }
      return (u) => (literals.has(u) ? u : MISS)
    }
    case "Objects": {
      if (ast.indexSignatures.length > 0) return undefined
      const properties: Array<FastProperty> = []
      for (const property of ast.propertySignatures) {
        const name = property.name
        if (typeof name !== "string" || name === "__proto__") return undefined
        const fast = fastCodec(property.type, direction)
        if (fast === undefined) return undefined
        properties.push({ name, optional: property.type.context?.isOptional === true, fast })
      }
      const count = properties.length
      return (u) => {
        if (!isPlainObject(u)) return MISS
        // The common case, without a copy: exactly the declared properties (no extra ones to strip), each
        // already in its wire form (the checks of plain shapes return primitives unchanged).
        if (ownKeyCount(u, count) === count) {
          let same = true
          for (let i = 0; i < count; i++) {
            const { name, fast } = properties[i]!
            const value = u[name]
            if (value === undefined && !Object.hasOwn(u, name)) {
              same = false
              break
            }
            const checked = fast(value)
            if (checked === MISS) return MISS
            if (checked !== value) {
              same = false
              break
            }
          }
          if (same) return u
        }
        const out: Record<string, unknown> = {}
        for (let i = 0; i < properties.length; i++) {
          const { name, optional, fast } = properties[i]!
          const value = u[name]
          if (value === undefined && !Object.hasOwn(u, name)) {
            if (optional) continue
            return MISS
          }
          const checked = fast(value)
          if (checked === MISS) return MISS
          out[name] = checked
        }
        return out
      }
    }
    case "Arrays": {
      if (ast.rest.length > 1) return undefined
      const elements: Array<Fast> = []
      for (const element of ast.elements) {
        if (element.context?.isOptional === true) return undefined
        const fast = fastCodec(element, direction)
        if (fast === undefined) return undefined
        elements.push(fast)
      }
      const restAst = ast.rest[0]
      const rest = restAst === undefined ? undefined : fastCodec(restAst, direction)
      if (restAst !== undefined && rest === undefined) return undefined
      const fixed = elements.length
      return (u) => {
        if (!Array.isArray(u)) return MISS
        if (rest === undefined ? u.length !== fixed : u.length < fixed) return MISS
        const out = new Array<unknown>(u.length)
        for (let i = 0; i < u.length; i++) {
          const checked = i < fixed ? elements[i]!(u[i]) : rest!(u[i])
          if (checked === MISS) return MISS
          out[i] = checked
        }
        return out
      }
    }
    default:
      return undefined
  }
}
