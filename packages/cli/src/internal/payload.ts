/**
 * Checks a payload typed on the command line against the JSON Schema a node describes for it, before
 * sending: a mistake is reported with the path of the offending field, without a round trip. The node
 * validates again (it is the authority); a schema this cannot import is left to the node alone.
 */
import { type JsonSchema, Result, Schema, SchemaIssue, SchemaRepresentation } from "effect"

const nonFinite = 'Expected "Infinity" | "-Infinity" | "NaN"'

/** Why a payload does not fit, or `undefined` when it fits (or the schema cannot be checked here). */
export const check = (document: unknown, payload: unknown): string | undefined => {
  if (document === null || typeof document !== "object") return undefined
  let schema: Schema.Top
  try {
    schema = SchemaRepresentation.fromJsonSchemaDocument(document as JsonSchema.Document<"draft-2020-12">, {
      patterns: "apply",
    })
  } catch {
    return undefined
  }
  const decoded = Schema.decodeUnknownResult(schema as Schema.Codec<unknown, unknown>)(payload, { errors: "all" })
  if (Result.isSuccess(decoded)) return undefined
  const issues = SchemaIssue.makeFormatterStandardSchemaV1()(decoded.failure.issue).issues
  return issues
    .map((issue) => {
      const path = (issue.path ?? []).map((segment) =>
        String(typeof segment === "object" && segment !== null ? segment.key : segment),
      )
      // A number's JSON form also admits the strings of non-finite numbers: a string there fails that branch.
      const message = issue.message === nonFinite ? "Expected a number" : issue.message
      return path.length > 0 ? `at ${path.join(".")}: ${message}` : message
    })
    .join("; ")
}
