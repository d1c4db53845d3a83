/**
 * What protoc-gen-zactor refuses to generate, and why. Every problem names the .proto file and the element
 * (service or rpc) at fault, so that a user reading buf's or protoc's output knows what to change. The plugin
 * collects the problems of every file it was asked for before failing, so one run reports them all.
 *
 * @since 0.1.0
 */
import type { DescMethod, DescService } from "@bufbuild/protobuf"

/**
 * One thing the generator cannot turn into a contract.
 *
 * @since 0.1.0
 */
export interface Problem {
  /** The .proto file, as the compiler names it (e.g. `acme/billing/v1/billing.proto`). */
  readonly file: string
  /** The element at fault, e.g. `rpc acme.billing.v1.Billing.Charge`. */
  readonly element: string
  /** What is wrong and how to fix it. */
  readonly message: string
}

/**
 * The generator's only failure: one or more problems, one per line of the message after a summary line.
 *
 * @since 0.1.0
 */
export class CodegenError extends Error {
  override readonly name = "CodegenError"
  readonly problems: ReadonlyArray<Problem>

  constructor(problems: ReadonlyArray<Problem>) {
    const count = problems.length === 1 ? "1 problem" : `${problems.length} problems`
    super([`cannot generate zactor contracts (${count}):`, ...problems.map(format)].join("\n"))
    this.problems = problems
  }

  /** Guard that works across duplicated installs, where `instanceof` would not. */
  static is(u: unknown): u is CodegenError {
    return u instanceof Error && u.name === "CodegenError" && Array.isArray((u as { problems?: unknown }).problems)
  }
}

/**
 * A problem with a method.
 *
 * @since 0.1.0
 */
export const atMethod = (method: DescMethod, message: string): Problem => ({
  file: method.parent.file.proto.name,
  element: `rpc ${method.parent.typeName}.${method.name}`,
  message,
})

/**
 * A problem with a service.
 *
 * @since 0.1.0
 */
export const atService = (service: DescService, message: string): Problem => ({
  file: service.file.proto.name,
  element: `service ${service.typeName}`,
  message,
})

/** `file: element: message`, the shape compilers use, so editors and CI logs can point at the file. */
const format = (problem: Problem): string => `${problem.file}: ${problem.element}: ${problem.message}`
