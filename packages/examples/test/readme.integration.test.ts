import { execFile } from "node:child_process"
import { promisify } from "node:util"
import { describe, expect, it } from "vitest"

const run = promisify(execFile)
const script = (name: string) => new URL(`../src/readme/${name}`, import.meta.url).pathname
const node = (name: string) =>
  run(process.execPath, ["--conditions=@zactor/source", "--import", "tsx", script(name)], {
    timeout: 30_000,
    killSignal: "SIGKILL",
  })

describe("the README's examples run as written", () => {
  it("Effect API", async () => {
    const { stdout } = await node("effect.ts")
    // The sum, then the application error as itself: its class (instanceof holds) and its fields.
    expect(stdout.split("\n")).toEqual(["5", "true { _tag: 'DivisionByZero', dividend: 1 }", ""])
  })

  it("Promise API", async () => {
    const { stdout } = await node("promise.ts")
    expect(stdout.split("\n")).toEqual(["5", "true", ""])
  })
})
