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
    // Wall time of the whole command as `pnpm demo` runs it: loading TypeScript, bundling the worker (the demo's
    // own first step), starting the pool, 9 s of load and the tally. The README promises it within a minute.
    const startedAt = performance.now()
    const { stdout } = await runMain("../src/worker-pool/main.ts")
    const wallMs = performance.now() - startedAt
    expect(wallMs).toBeLessThan(60_000)
    expect(stdout.match(/✗ chaos: SIGKILL \S+ \(pid \d+\) with [1-9]\d* calls in flight/g)).toHaveLength(3)
    expect(stdout).toMatch(/workers restarted\s+3 /)
    const count = (label: string): number => Number(stdout.match(new RegExp(`^  ${label}\\s+(\\d+)`, "m"))?.[1])
    // Each kill caught calls in flight (asserted above); each of those failed over and was retried elsewhere.
    expect(count("calls retried")).toBeGreaterThan(0)
    // Counted from the workers' own stats: printed as a number, not necessarily above zero, since a retry is
    // deduplicated only when the killed worker had finished the job but its reply was lost, which the moment of
    // a kill does not guarantee.
    expect(count("calls deduplicated")).toBeGreaterThanOrEqual(0)
    // From the ledger: every call the client saw succeed has exactly one effect, and every call ended.
    expect(stdout).toMatch(/calls lost\s+0 \(0 succeeded without exactly one ledger line, 0 never finished\)\n/)
    expect(stdout).toMatch(/calls failed\s+0\n/)
    expect(stdout).toMatch(/ledger\s+\d+ effects, 0 duplicated, 0 missing/)
    expect(stdout).toMatch(/\d+\.\d s: \d+ calls ok/) // the progress display
    expect(stdout).toContain("worker-pool demo: OK")
  }, 100_000)
})

describe("the transport demo", () => {
  it("a server killed and restarted under load: every call answered or timed out, replies resume on their own", async () => {
    const { stdout } = await runMain("../src/transport-demo/main.ts")
    expect(stdout).toMatch(/SIGKILL server pid \d+ \(\d+ calls in flight\)/)
    expect(stdout).toMatch(/server restarted as pid \d+/)
    const count = (label: string): number => {
      const value = stdout.match(new RegExp(`^  ${label}\\s+([\\d,]+)`, "m"))?.[1]
      expect(value, `"${label}" in the tally`).toBeDefined()
      return Number(value!.replace(/,/g, ""))
    }
    const sent = count("calls sent")
    const completed = count("calls completed")
    const timedOut = count("calls timed out")
    // Every call sent is accounted for: answered, or timed out (the transport does not retry; calls caught by
    // the crash time out visibly). None vanished, none was answered twice or after its timeout.
    expect(completed + timedOut).toBe(sent)
    // A late reply can only answer a call already counted as timed out (one that reached the new server just
    // as its caller gave up).
    expect(count("late replies")).toBeLessThanOrEqual(timedOut)
    expect(count("refused by offer")).toBe(0)
    // The kill caught calls in flight. At most 32 are in flight at once and each is given up after 1 s, so the
    // outage costs at most 32 calls per second of it: 20 s (well past the demo's own wait for a restart) bounds it.
    expect(timedOut).toBeGreaterThan(0)
    expect(timedOut).toBeLessThanOrEqual(32 * 20)
    expect(completed).toBeGreaterThan(1000)
    expect(stdout).toMatch(/transport events\s+Connected 2, Disconnected 1,/)
    // Replies resumed on their own after the restart, and the new server did real work.
    expect(stdout).toMatch(/replies resumed\s+[\d,]+ ms after the new server was listening/)
    const served = Number(stdout.match(/restarted server\s+answered ([\d,]+) calls/)?.[1]?.replace(/,/g, ""))
    expect(served).toBeGreaterThan(0)
  }, 100_000)
})
