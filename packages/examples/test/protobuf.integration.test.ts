// The protobuf example from scratch, as a user would build it: generate the code from greeter.proto with buf and
// both plugins (protoc-gen-es, protoc-gen-zactor), compile it with tsc under the repository's strict settings, and
// run the compiled demo, whose server and client are separate processes with their own zactor nodes. Everything
// happens in a scratch copy under node_modules/.cache, so src/gen is neither needed nor touched.
import { execFile } from "node:child_process"
import { cp, mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises"
import { join, relative, resolve } from "node:path"
import { promisify } from "node:util"
import { describe, expect, it } from "vitest"

const run = promisify(execFile)
const packageDir = resolve(import.meta.dirname, "..")
const rootDir = resolve(packageDir, "../..")

describe("the protobuf example", () => {
  it("generates, compiles with tsc, and runs server and client as processes", async () => {
    const cache = join(packageDir, "node_modules", ".cache")
    await mkdir(cache, { recursive: true })
    const work = await mkdtemp(join(cache, "protobuf-example-"))
    try {
      // buf.gen.yaml writes to src/gen; -o puts that under the scratch directory instead.
      await run(join(packageDir, "node_modules", ".bin", "buf"), ["generate", "-o", work], {
        cwd: packageDir,
        env: { ...process.env, PATH: `${join(packageDir, "node_modules", ".bin")}:${process.env.PATH}` },
      })
      expect((await readdir(join(work, "src", "gen"))).sort()).toEqual(["greeter_pb.ts", "greeter_zactor.ts", "zactor"])
      await cp(join(packageDir, "src", "protobuf"), join(work, "src", "protobuf"), { recursive: true })
      await cp(join(packageDir, "src", "shared"), join(work, "src", "shared"), { recursive: true })
      await writeFile(
        join(work, "tsconfig.json"),
        JSON.stringify({
          extends: relative(work, join(rootDir, "tsconfig.base.json")),
          compilerOptions: { rootDir: "src", outDir: "dist", declaration: false, declarationMap: false },
          include: ["src"],
        }),
      )
      await run(join(rootDir, "node_modules", ".bin", "tsc"), ["-p", join(work, "tsconfig.json")], { cwd: work })

      // The compiled example; @zactor/core itself still runs from its sources, as everywhere in this repository.
      const main = join(work, "dist", "protobuf", "main.js")
      const { stdout } = await run(process.execPath, ["--conditions=@zactor/source", "--import", "tsx", main], {
        cwd: packageDir,
        timeout: 60_000,
        killSignal: "SIGKILL",
      })
      expect(stdout).toMatch(/server listening on tcp:\/\/127\.0\.0\.1:\d+/)
      expect(stdout).toContain("SayHello: Hello, Ada!")
      expect(stdout).toContain("StreamGreetings: 1 Hello #1, Grace!")
      expect(stdout).toContain("StreamGreetings: 3 Hello #3, Grace!")
      expect(stdout).toContain('SayHello(""): invalid_argument')
      expect(stdout).toContain("client exited 0, server exited 0")
    } finally {
      await rm(work, { recursive: true, force: true })
    }
  }, 240_000) // tsc type-checks @zactor/core's sources too: most of the time on 2 cores
})
