/**
 * The delivery declarations of one rpc, read from its options: the standard `idempotency_level` and zactor's
 * own `(zactor.method)` options (proto/zactor/options.proto). They become fields of the generated method object
 * (`idempotent`, `timeoutMs`, `delivery`, `dedupe`), which is where core reads them.
 *
 * Validation happens here, at generation time, so that a declaration that cannot mean anything at run time (a
 * zero timeout, a resent stream, deduplication of calls that are never resent) is reported with its method
 * instead of being generated.
 *
 * @since 0.1.0
 */
import { type DescMethod, getOption, hasOption } from "@bufbuild/protobuf"
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt"
import { atMethod, type Problem } from "./CodegenError.ts"
import { method as zactorMethod } from "./gen/zactor/options_pb.ts"

/**
 * What a generated method declares.
 *
 * @since 0.1.0
 */
export interface Declarations {
  /** `idempotency_level` is `NO_SIDE_EFFECTS` or `IDEMPOTENT`: repeating the call is harmless. */
  readonly idempotent: boolean
  /** `(zactor.method).timeout_ms`: the default deadline in ms; `undefined`: the node's default. */
  readonly timeoutMs: number | undefined
  /** `(zactor.method).at_least_once`: generated as `delivery: "at-least-once"`. */
  readonly atLeastOnce: boolean
  /** `(zactor.method).dedupe`: retries carry an idempotency key even when the method is idempotent. */
  readonly dedupe: boolean
}

/**
 * The declarations of an rpc, or the problems with its options.
 *
 * @since 0.1.0
 */
export type DeclarationsResult =
  | { readonly _tag: "Declared"; readonly declarations: Declarations }
  | { readonly _tag: "Invalid"; readonly problems: ReadonlyArray<Problem> }

/**
 * Reads and checks the declarations of an rpc.
 *
 * @since 0.1.0
 */
export const fromMethod = (method: DescMethod): DeclarationsResult => {
  const idempotent =
    method.idempotency === MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS ||
    method.idempotency === MethodOptions_IdempotencyLevel.IDEMPOTENT
  const options = hasOption(method, zactorMethod) ? getOption(method, zactorMethod) : undefined
  const declarations: Declarations = {
    idempotent,
    timeoutMs: options?.timeoutMs,
    atLeastOnce: options?.atLeastOnce ?? false,
    dedupe: options?.dedupe ?? false,
  }
  const problems = check(method, declarations)
  return problems.length === 0 ? { _tag: "Declared", declarations } : { _tag: "Invalid", problems }
}

const check = (method: DescMethod, declared: Declarations): Array<Problem> => {
  const problems: Array<Problem> = []
  // An explicit 0 is a mistake, not "no deadline": zactor has no unbounded calls, and unset already means
  // "the node's default".
  if (declared.timeoutMs === 0) {
    problems.push(
      atMethod(method, "(zactor.method).timeout_ms must be greater than 0; leave it unset for the node's default"),
    )
  }
  if (declared.atLeastOnce && method.methodKind !== "unary") {
    problems.push(
      atMethod(method, "(zactor.method).at_least_once applies to unary methods only (a stream is not resent)"),
    )
  }
  // Only resent calls can arrive twice, so dropping repeats means nothing for a call that is sent once.
  if (declared.dedupe && !declared.atLeastOnce) {
    problems.push(
      atMethod(
        method,
        "(zactor.method).dedupe only affects at-least-once retries: set at_least_once = true as well, or remove it",
      ),
    )
  }
  return problems
}
