/**
 * protoc-gen-zactor: a protoc / buf plugin that turns every `service` of the .proto files it is given into a
 * zactor contract (`<name>_zactor.ts`, next to protoc-gen-es's `<name>_pb.ts`), with typed client and handler
 * types. Core serves and calls these contracts exactly like Schema-defined ones.
 *
 * Every file is checked before anything is written: unsupported streaming kinds, invalid delivery options and
 * clashing names are reported together, each naming its file and element, and the run fails (nothing is
 * silently skipped). Parameters are protoplugin's standard ones (`target`, `import_extension`, ...); the
 * plugin has none of its own.
 *
 * @since 0.1.0
 */
import type { DescFile, DescMethod } from "@bufbuild/protobuf"
import { createEcmaScriptPlugin, type Schema } from "@bufbuild/protoplugin"
import { atMethod, CodegenError, type Problem } from "./CodegenError.ts"
import * as Declarations from "./Declarations.ts"
import { emitFile, type FilePlan } from "./internal/emitFile.ts"
import { methodNameProblems, nameClashes } from "./internal/names.ts"

/**
 * The plugin's version, printed in the preamble of every generated file.
 *
 * @since 0.1.0
 */
export const version = "0.1.0"

const kindNames: Record<DescMethod["methodKind"], string> = {
  unary: "unary",
  server_streaming: "server-streaming",
  client_streaming: "client-streaming",
  bidi_streaming: "bidi-streaming",
}

const methodProblems = (method: DescMethod): Array<Problem> => {
  if (method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming") {
    return [
      atMethod(
        method,
        `is ${kindNames[method.methodKind]}, which zactor does not support (unary and server-streaming only); ` +
          "split it into unary calls or a server stream, or move it to a service you do not generate for zactor",
      ),
    ]
  }
  return methodNameProblems(method)
}

/** Checks one file and returns what to emit, or its problems. */
const planFile = (file: DescFile): { readonly plan: FilePlan; readonly problems: ReadonlyArray<Problem> } => {
  const problems: Array<Problem> = [...nameClashes(file.services)]
  const declarations = new Map<DescMethod, Declarations.Declarations>()
  for (const service of file.services) {
    for (const method of service.methods) {
      problems.push(...methodProblems(method))
      const declared = Declarations.fromMethod(method)
      if (declared._tag === "Invalid") problems.push(...declared.problems)
      else declarations.set(method, declared.declarations)
    }
  }
  return { plan: { file, declarations }, problems }
}

const generateTs = (schema: Schema): void => {
  const plans = schema.files.filter((file) => file.services.length > 0).map(planFile)
  const problems = plans.flatMap((planned) => planned.problems)
  if (problems.length > 0) throw new CodegenError(problems)
  for (const { plan } of plans) emitFile(schema, plan)
}

/**
 * The plugin. `runNodeJs(protocGenZactor)` runs it as a protoc plugin (what the `protoc-gen-zactor` bin does);
 * `protocGenZactor.run(request)` runs it in process, e.g. in tests. Fails with a `CodegenError`.
 *
 * @since 0.1.0
 */
export const protocGenZactor = createEcmaScriptPlugin({
  name: "protoc-gen-zactor",
  version: `v${version}`,
  generateTs,
})
