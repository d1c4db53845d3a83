/**
 * @zactor/codegen: protoc-gen-zactor, zactor contracts generated from .proto services. Run it through buf or
 * protoc (docs/CODEGEN.md); this entry point exposes the plugin for in-process use.
 *
 * @since 0.1.0
 */

/** The generator's failure: what it refuses to generate, and where. @since 0.1.0 */
export * from "./CodegenError.ts"
/** Delivery declarations read from rpc options. @since 0.1.0 */
export * as Declarations from "./Declarations.ts"
/** The plugin. @since 0.1.0 */
export { protocGenZactor, version } from "./Plugin.ts"
