// Smoke tests of the runnable examples: each `main` starts every role as its own process and exits 0 only when
// the example's own checks hold; the output shows what a user sees.
import { execFile } from "node:child_process"
import { promisify } from "node:util"
import { describe, expect, it } from "vitest"

const run = promisify(execFile)
const main = (example: string) => new URL(`../src/${example}/main.ts`, import.meta.url).pathname
const runExample = (example: string) =>
  run(process.execPath, ["--conditions=@zactor/source", "--import", "tsx", main(example)], {
    timeout: 60_000,
    killSignal: "SIGKILL",
  })

describe("examples", () => {
  it("microservices: two services call each other by name through the beacon", async () => {
    const { stdout } = await runExample("microservices")
    expect(stdout).toMatch(/orders: node orders-\d+ serving Orders/)
    expect(stdout).toMatch(/pricing: node pricing-\d+ serving Pricing/)
    const discounts = [...stdout.matchAll(/\((\d+)% off\)/g)].map((match) => Number(match[1]))
    expect(discounts).toEqual([0, 5, 10, 15])
    expect(stdout).toContain('Pricing refused "durian" and the error reached the shop as UnknownSku')
    expect(stdout).toContain("microservices: shop exited 0, services exited 0, 0")
  }, 70_000)

  it("actors: members in other processes join a room by ref and see every line once", async () => {
    const { stdout } = await runExample("actors")
    const linesOf = (member: string) => stdout.match(new RegExp(`${member}: saw 6 lines: (.*)`))?.[1]
    // The room numbers lines once for everyone: both members hold the same sequence.
    expect(linesOf("ada")).toBe(linesOf("grace"))
    for (const member of ["ada", "grace"]) {
      const seen = stdout.match(new RegExp(`${member}: saw 6 lines: (.*)`))?.[1]?.split(" ") ?? []
      // Numbered 1..6 by the room, in order; three from each member, whatever the interleaving.
      expect(seen.map((line) => Number(line.split(":")[0]))).toEqual([1, 2, 3, 4, 5, 6])
      expect(seen.filter((line) => line.endsWith(":ada"))).toHaveLength(3)
      expect(seen.filter((line) => line.endsWith(":grace"))).toHaveLength(3)
    }
    expect(stdout).toContain("actors: members exited 0, 0, room exited 0")
  }, 70_000)

  it("pubsub: a late joiner starts from the snapshot; a restarted publisher is seen under a new epoch", async () => {
    const { stdout } = await runExample("pubsub")
    expect(stdout).toMatch(/late: snapshot of 10 sensors, then live from seq \d+/)
    for (const name of ["all", "boilers", "late"]) {
      expect(stdout).toMatch(new RegExp(`${name}: publisher sensors down`))
      expect(stdout).toMatch(new RegExp(`${name}: \\d+ live events, \\d+ from the snapshot, 2 publisher epochs`))
    }
    expect(stdout.match(/pubsub: ✓/g)).toHaveLength(4)
  }, 70_000)
})
