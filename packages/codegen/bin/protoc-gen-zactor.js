#!/usr/bin/env node
// The plugin executable that buf and protoc start: runs the compiled plugin. In this repository turbo builds it
// before every `generate` task that needs it; by hand: `pnpm --filter @zactor/codegen build`.
import { existsSync } from "node:fs"

const compiled = new URL("../dist/bin.js", import.meta.url)
if (!existsSync(compiled)) {
  process.stderr.write("protoc-gen-zactor: not built yet; run `pnpm --filter @zactor/codegen build` first\n")
  process.exit(1)
}
await import(compiled.href)
