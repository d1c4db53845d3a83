/**
 * Codecs run on values from the wire and from users, and some code they run throws: a Schema encoder overflows
 * the stack on a value nested deeply enough (a recursive schema), a hand-written codec has a bug. What they throw
 * becomes an issue of that one value, so a node answers that one call instead of losing what else it was handling.
 */
import { Result } from "effect"
import type { BodyCodec, CodecIssue } from "../Contract.ts"

/** Runs a codec step, turning what it throws into a `CodecIssue`. */
export const guarded = <A>(run: () => Result.Result<A, CodecIssue>): Result.Result<A, CodecIssue> => {
  try {
    return run()
  } catch (error) {
    const text = error instanceof Error ? `${error.message} ${String(error.cause ?? "")}` : String(error)
    const message = text.includes("Maximum call stack size exceeded")
      ? "is nested too deeply to encode or decode"
      : `broke its codec: ${text.trim()}`
    return Result.fail({ message, path: [] })
  }
}

/** Decodes a wire value with a codec that may throw. */
export const decode = <A>(codec: BodyCodec<A>, wire: unknown): Result.Result<A, CodecIssue> =>
  guarded(() => codec.decode(wire))
