// Runs protoc-gen-zactor on the fixtures of test/fixtures/, next to protoc-gen-es, in two ways:
// - `generate`: buf (npm-pinned, offline) compiles the fixture to descriptors, and both plugins run in this
//   process on the CodeGeneratorRequest buf would send. One compiler run per fixture keeps the golden suite fast.
// - `generateThroughBuf`: exactly what users run, `buf generate` with both plugins as local executables (the
//   zactor plugin from its TypeScript sources through tsx, so no build is needed).
// - `generateThroughProtoc`: the same with protoc, when the machine has one (Debian's protobuf-compiler).
// Work directories live under node_modules/.cache: ignored by git and biome, and node resolution from there finds
// this package's dependencies. zactor/options.proto is importable as in a user's project (a second buf module).
import { execFile } from "node:child_process"
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from "node:fs/promises"
import { createRequire } from "node:module"
import { join, relative, resolve } from "node:path"
import { promisify } from "node:util"
import { create, fromBinary } from "@bufbuild/protobuf"
import { CodeGeneratorRequestSchema, FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt"
import type { Plugin } from "@bufbuild/protoplugin"
import { protocGenZactor } from "../src/Plugin.ts"

const run = promisify(execFile)

/** This package's directory. */
export const packageDir = resolve(import.meta.dirname, "..")
const bin = (name: string) => join(packageDir, "node_modules", ".bin", name)
const pluginSource = join(packageDir, "src", "bin.ts")
const protocGenEs = (
  createRequire(import.meta.url)("@bufbuild/protoc-gen-es/dist/cjs/src/protoc-gen-es-plugin.js") as {
    readonly protocGenEs: Plugin
  }
).protocGenEs

/** The plugin parameters used throughout: TypeScript, with `.js` import extensions (NodeNext resolution). */
export const parameter = "target=ts,import_extension=js"

/** What one run produced: the generated files by path, or the error output of the compiler or a plugin. */
export type Generated =
  | { readonly _tag: "Generated"; readonly files: ReadonlyMap<string, string> }
  | { readonly _tag: "Failed"; readonly stderr: string }

/** Reads every file under `dir`, by relative path. */
export const readTree = async (dir: string): Promise<Map<string, string>> => {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true })
  const paths = entries
    .filter((entry) => entry.isFile())
    .map((entry) => relative(dir, join(entry.parentPath, entry.name)))
    .sort()
  const files = new Map<string, string>()
  for (const path of paths) files.set(path, await readFile(join(dir, path), "utf8"))
  return files
}

/** The fixtures, one directory each. */
export const fixtures = async (): Promise<Array<string>> =>
  (await readdir(join(packageDir, "test", "fixtures"), { withFileTypes: true }))
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort()

const stderrOf = (error: unknown): string => (error as { readonly stderr?: string }).stderr ?? String(error)

/** Runs `body` in a fresh buf workspace holding the fixture and zactor's options, then removes it. */
const inWorkspace = async <A>(fixture: string, body: (work: string) => Promise<A>): Promise<A> => {
  const cache = join(packageDir, "node_modules", ".cache", "zactor-codegen-test")
  await mkdir(cache, { recursive: true })
  const work = await mkdtemp(join(cache, `${fixture}-`))
  try {
    await symlink(join(packageDir, "test", "fixtures", fixture), join(work, "proto"))
    await symlink(join(packageDir, "proto"), join(work, "zactor-options"))
    await writeFile(join(work, "buf.yaml"), "version: v2\nmodules:\n  - path: proto\n  - path: zactor-options\n")
    return await body(work)
  } finally {
    await rm(work, { recursive: true, force: true })
  }
}

const runPlugin = (plugin: Plugin, request: Parameters<Plugin["run"]>[0], files: Map<string, string>) => {
  const response = plugin.run(request)
  if (response.error !== undefined && response.error !== "") throw new Error(response.error)
  for (const file of response.file) files.set(file.name, file.content)
}

/** Compiles the fixture with buf and runs protoc-gen-es and protoc-gen-zactor in process. */
export const generate = (fixture: string, pluginParameter: string = parameter): Promise<Generated> =>
  inWorkspace(fixture, async (work) => {
    let image: Buffer
    try {
      const output = await run(bin("buf"), ["build", "--as-file-descriptor-set", "-o", "-"], {
        cwd: work,
        encoding: "buffer",
        maxBuffer: 64 * 1024 * 1024,
        timeout: 60_000,
      })
      image = output.stdout
    } catch (error) {
      return { _tag: "Failed", stderr: String(stderrOf(error)) }
    }
    const set = fromBinary(FileDescriptorSetSchema, image)
    // What buf generate asks for: every file of the workspace's modules, with the well-known types as imports.
    const request = create(CodeGeneratorRequestSchema, {
      fileToGenerate: set.file.map((file) => file.name).filter((name) => !name.startsWith("google/protobuf/")),
      parameter: pluginParameter,
      protoFile: set.file,
    })
    const files = new Map<string, string>()
    try {
      runPlugin(protocGenEs, request, files)
      runPlugin(protocGenZactor, request, files)
    } catch (error) {
      return { _tag: "Failed", stderr: `${error instanceof Error ? error.message : String(error)}\n` }
    }
    return { _tag: "Generated", files: new Map([...files].sort(([a], [b]) => (a < b ? -1 : 1))) }
  })

const bufGenYaml = `version: v2
clean: true
plugins:
  - local: ${JSON.stringify(bin("protoc-gen-es"))}
    out: gen
    strategy: all
    opt: [${parameter}]
  - local: ${JSON.stringify(["node", "--import", "tsx", pluginSource])}
    out: gen
    strategy: all
    opt: [${parameter}]
`

/**
 * Runs `buf generate` on the fixture with both plugins as executables. buf's messages name the plugin by its
 * command line; they are rewritten to `protoc-gen-zactor`.
 */
export const generateThroughBuf = (fixture: string): Promise<Generated> =>
  inWorkspace(fixture, async (work) => {
    await writeFile(join(work, "buf.gen.yaml"), bufGenYaml)
    try {
      await run(bin("buf"), ["generate"], { cwd: work, timeout: 60_000 })
    } catch (error) {
      return {
        _tag: "Failed",
        stderr: stderrOf(error).replaceAll(`node --import tsx ${pluginSource}`, "protoc-gen-zactor"),
      }
    }
    return { _tag: "Generated", files: await readTree(join(work, "gen")) }
  })

/**
 * Runs protoc on the fixture with both plugins as executables (docs/CODEGEN.md's command), given a protoc on
 * the PATH whose include directory has the well-known types.
 */
export const generateThroughProtoc = (fixture: string): Promise<Generated> =>
  inWorkspace(fixture, async (work) => {
    // protoc takes one executable per plugin: a wrapper that runs the sources through tsx.
    const plugin = join(work, "protoc-gen-zactor")
    await writeFile(plugin, `#!/bin/sh\nexec node --import tsx ${JSON.stringify(pluginSource)}\n`)
    await chmod(plugin, 0o755)
    const sources = (await readdir(join(work, "proto"), { recursive: true }))
      .filter((path) => path.endsWith(".proto"))
      .map((path) => join("proto", path))
    await mkdir(join(work, "gen"))
    try {
      await run(
        "protoc",
        [
          "-I",
          "proto",
          "-I",
          "zactor-options",
          `--plugin=protoc-gen-es=${bin("protoc-gen-es")}`,
          `--plugin=protoc-gen-zactor=${plugin}`,
          "--es_out=gen",
          `--es_opt=${parameter}`,
          "--zactor_out=gen",
          `--zactor_opt=${parameter}`,
          ...sources,
          "zactor-options/zactor/options.proto",
        ],
        { cwd: work, timeout: 60_000 },
      )
    } catch (error) {
      return { _tag: "Failed", stderr: stderrOf(error) }
    }
    return { _tag: "Generated", files: await readTree(join(work, "gen")) }
  })

/** Whether protoc is installed (it is optional: the generator's tests and builds use buf from npm). */
export const hasProtoc = async (): Promise<boolean> =>
  run("protoc", ["--version"]).then(
    () => true,
    () => false,
  )
