/**
 * The `protoc-gen-zactor` executable: reads a CodeGeneratorRequest on stdin, writes the response on stdout.
 * On a `CodegenError` it prints every problem on stderr and exits 1, which buf and protoc report as a failure.
 *
 * @since 0.1.0
 */
import { runNodeJs } from "@bufbuild/protoplugin"
import { protocGenZactor } from "./Plugin.ts"

runNodeJs(protocGenZactor)
