// Shared vitest settings: sibling packages resolve to their TypeScript sources through the
// "@zactor/source" export condition, so tests need no build step. Reports land in .reports/
// where .ci/run reads them to print the "N passed, N failed" line.
import { basename, resolve } from "node:path"
import { defaultServerConditions } from "vite"
import { defineConfig } from "vitest/config"

const conditions = ["@zactor/source", ...defaultServerConditions]
const reportsDir = resolve(import.meta.dirname, ".reports")

/** Vitest config for one package; `integration` selects the multi-process suite. */
export const zactorVitestConfig = (packageDir: string, options: { readonly integration: boolean }) => {
  const kind = options.integration ? "integration" : "unit"
  return defineConfig({
    resolve: { conditions },
    ssr: { resolve: { conditions, externalConditions: ["@zactor/source"] } },
    test: {
      include: options.integration ? ["test/**/*.integration.test.ts"] : ["test/**/*.test.ts"],
      exclude: options.integration ? [] : ["test/**/*.integration.test.ts"],
      testTimeout: options.integration ? 60_000 : 15_000,
      hookTimeout: 30_000,
      // Integration suites own real processes and ports: run files one at a time on 2 cores.
      fileParallelism: !options.integration,
      reporters: ["default", "json"],
      outputFile: { json: resolve(reportsDir, `${basename(packageDir)}.${kind}.json`) },
    },
  })
}
