#!/usr/bin/env node
// The `zactor` executable: runs the compiled CLI (`pnpm --filter @zactor/cli build`, which turbo's `build` does).
// From a checkout without a build, `pnpm --filter @zactor/cli zactor <args>` runs it from the TypeScript sources.
import { existsSync } from "node:fs"

const compiled = new URL("../dist/bin.js", import.meta.url)
if (!existsSync(compiled)) {
  process.stderr.write(
    "zactor: not built yet; run `pnpm build` (or `pnpm --filter @zactor/cli zactor <args>` to run from source)\n",
  )
  process.exit(1)
}
await import(compiled.href)
