import { execFile } from "node:child_process"
import { promisify } from "node:util"
import { describe, expect, it } from "vitest"

const run = promisify(execFile)

describe("the transport demo", () => {
  it("runs to its tally and exits 0, with the server killed and restarted on the way", async () => {
    const main = new URL("../src/transport-demo/main.ts", import.meta.url).pathname
    const { stdout } = await run(process.execPath, ["--conditions=@zactor/source", "--import", "tsx", main], {
      timeout: 60_000,
      killSignal: "SIGKILL",
      env: { ...process.env, CI: "true" },
    })
    expect(stdout).toMatch(/SIGKILL/i)
    expect(stdout).toMatch(/calls completed|completed/i)
  }, 70_000)
})
