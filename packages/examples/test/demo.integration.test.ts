// Smoke tests of the demos: the README's `pnpm demo` (the worker pool under chaos) and the transport demo.
import { execFile } from "node:child_process"
import { promisify } from "node:util"
import { describe, expect, it } from "vitest"

const run = promisify(execFile)
const runMain = (path: string, env: Record<string, string> = {}) =>
  run(process.execPath, ["--conditions=@zactor/source", "--import", "tsx", new URL(path, import.meta.url).pathname], {
    timeout: 90_000,
    killSignal: "SIGKILL",
    env: { ...process.env, CI: "true", ...env },
  })

describe("the worker-pool demo (pnpm demo)", () => {
  it("kills three workers under load; all are restarted, no call is lost and no effect doubled", async () => {
    const { stdout } = await runMain("../src/worker-pool/main.ts")
    expect(stdout.match(/✗ chaos: SIGKILL/g)).toHaveLength(3)
    expect(stdout).toMatch(/workers restarted\s+3 /)
    expect(stdout).toMatch(/calls lost\s+0\n/)
    expect(stdout).toMatch(/calls failed\s+0\n/)
    expect(stdout).toMatch(/ledger\s+\d+ effects, 0 duplicated, 0 missing/)
    expect(stdout).toMatch(/\d+\.\d s: \d+ calls ok/) // the progress display
    expect(stdout).toContain("worker-pool demo: OK")
  }, 100_000)
})

describe("the transport demo", () => {
  it("runs to its tally and exits 0, with the server killed and restarted on the way", async () => {
    const { stdout } = await runMain("../src/transport-demo/main.ts")
    expect(stdout).toMatch(/SIGKILL/i)
    expect(stdout).toMatch(/calls completed|completed/i)
  }, 100_000)
})
