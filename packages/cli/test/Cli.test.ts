import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import type { Admin, Metrics } from "@zactor/core"
import { Curve } from "@zactor/transport"
import { Effect } from "effect"
import { afterEach, assert, beforeEach, describe, it, vi } from "vitest"
import { run } from "../src/Cli.ts"
import { parseMethod } from "../src/commands/call.ts"
import { membershipOf, stateOf, viewsOf } from "../src/commands/ls.ts"
import { render, rowOf } from "../src/commands/top.ts"
import { parseDuration } from "../src/internal/flags.ts"
import { table } from "../src/internal/output.ts"

/** Runs the CLI in this process, capturing what it prints. */
const runCaptured = async (args: ReadonlyArray<string>) => {
  const out: Array<string> = []
  const err: Array<string> = []
  const capture = (sink: Array<string>) => (chunk: unknown) => {
    sink.push(String(chunk))
    return true
  }
  const spies = [
    vi.spyOn(process.stdout, "write").mockImplementation(capture(out) as typeof process.stdout.write),
    vi.spyOn(process.stderr, "write").mockImplementation(capture(err) as typeof process.stderr.write),
    vi.spyOn(console, "log").mockImplementation((...parts) => void out.push(`${parts.join(" ")}\n`)),
    vi.spyOn(console, "error").mockImplementation((...parts) => void err.push(`${parts.join(" ")}\n`)),
  ]
  try {
    const code = await run(args)
    return { code, stdout: out.join(""), stderr: err.join("") }
  } finally {
    for (const spy of spies) spy.mockRestore()
  }
}

let dir: string
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "zactor-cli-"))
})
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }))

describe("zactor command line", () => {
  it("--help works on the root and on every command, exit 0", async () => {
    const root = await runCaptured(["--help"])
    assert.strictEqual(root.code, 0)
    for (const command of ["ping", "ls", "call", "top", "keys"]) assert.include(root.stdout, command)
    for (const command of ["ping", "ls", "call", "top", "keys"]) {
      const help = await runCaptured([command, "--help"])
      assert.strictEqual(help.code, 0, command)
      assert.include(help.stdout, `zactor ${command}`, command)
      assert.include(help.stdout, "FLAGS", command)
    }
    const ping = await runCaptured(["ping", "--help"])
    for (const flag of ["--count", "--timeout", "--json", "--static", "--etcd", "--curve-key", "--server-key"]) {
      assert.include(ping.stdout, flag)
    }
  })

  it("a wrong command line exits 2 with the problem", async () => {
    const unknown = await runCaptured(["bogus"])
    assert.strictEqual(unknown.code, 2)
    assert.include(unknown.stdout + unknown.stderr, 'Unknown subcommand "bogus"')
    const missing = await runCaptured(["ping"])
    assert.strictEqual(missing.code, 2)
    assert.include(missing.stdout + missing.stderr, "target")
    const badJson = await runCaptured(["call", "Shop.price", "{nope", "--static", "tcp://127.0.0.1:1"])
    assert.strictEqual(badJson.code, 2)
    assert.include(badJson.stderr, "not JSON")
    const badMethod = await runCaptured(["call", "Shop", "{}", "--static", "tcp://127.0.0.1:1"])
    assert.strictEqual(badMethod.code, 2)
    const badTimeout = await runCaptured(["ping", "tcp://127.0.0.1:1", "--timeout", "soon"])
    assert.strictEqual(badTimeout.code, 2)
    assert.include(badTimeout.stderr, "--timeout")
  })

  it("keys: a printed pair and a written file load with Curve.loadKeyPair; --public reads it back", async () => {
    const printed = await runCaptured(["keys"])
    assert.strictEqual(printed.code, 0)
    const printedFile = path.join(dir, "printed.key")
    fs.writeFileSync(printedFile, printed.stdout)
    const fromPrinted = await Effect.runPromise(Curve.loadKeyPair(printedFile))
    assert.strictEqual(Curve.publicKeyOf(fromPrinted.secretKey), fromPrinted.publicKey)

    const file = path.join(dir, "server.key")
    const written = await runCaptured(["keys", "--out", file])
    assert.strictEqual(written.code, 0)
    const pair = await Effect.runPromise(Curve.loadKeyPair(file))
    assert.strictEqual(written.stdout.trim(), pair.publicKey)
    assert.strictEqual(fs.statSync(file).mode & 0o777, 0o600)
    const again = await runCaptured(["keys", "--out", file])
    assert.strictEqual(again.code, 2, "an existing key file is not replaced without --force")
    assert.strictEqual((await Effect.runPromise(Curve.loadKeyPair(file))).secretKey, pair.secretKey)
    const shown = await runCaptured(["keys", "--public", file, "--json"])
    assert.deepStrictEqual(JSON.parse(shown.stdout), { publicKey: pair.publicKey })
    const replaced = await runCaptured(["keys", "--out", file, "--force"])
    assert.strictEqual(replaced.code, 0)
    assert.notStrictEqual((await Effect.runPromise(Curve.loadKeyPair(file))).secretKey, pair.secretKey)
  })

  it("parses methods and durations", () => {
    assert.deepStrictEqual(parseMethod("Shop.price"), { service: "Shop", method: "price" })
    assert.deepStrictEqual(parseMethod("acme.billing.Invoices.create"), {
      service: "acme.billing.Invoices",
      method: "create",
    })
    assert.deepStrictEqual(parseMethod("@counter-1/add"), { service: "@counter-1", method: "add" })
    assert.isUndefined(parseMethod("Shop"))
    assert.isUndefined(parseMethod("Shop."))
    assert.strictEqual(parseDuration("250ms", "t"), 250)
    assert.strictEqual(parseDuration("1.5s", "t"), 1500)
    assert.strictEqual(parseDuration("2m", "t"), 120_000)
    assert.strictEqual(parseDuration("40", "t"), 40)
    assert.isString(parseDuration("0s", "t"))
    assert.isString(parseDuration("fast", "t"))
  })

  it("top computes rates and interval percentiles from two snapshots", () => {
    const histogram = (counts: Array<number>): Metrics.Histogram => ({
      boundsMs: [1, 10],
      counts,
      sumMs: 0,
      count: counts.reduce((a, b) => a + b, 0),
    })
    const snapshot = (at: number, served: number, serve: Array<number>, reconnects: number): Metrics.Snapshot => ({
      node: "n1",
      at,
      uptimeMs: at,
      counters: { requestsServed: served, callsStarted: 0, retried: 0, deadLettered: 0 },
      transport: { reconnects, bytesReceived: served * 100, bytesSent: served * 50 },
      gauges: { inflight: 2, outstanding: 1, queued: 4, mailboxQueued: 9, mailboxMax: 6 },
      latency: { call: histogram([0, 0, 0]), serve: histogram(serve) },
      errors: { call: {}, serve: { not_found: served > 100 ? 5 : 0 } },
      deadLetters: {},
      mailboxes: [
        { actor: "@cart-7", depth: 6 },
        { actor: "@cart-2", depth: 3 },
      ],
      peers: [],
    })
    const row = rowOf("tcp://x:1", snapshot(1000, 100, [100, 0, 0], 1), snapshot(3000, 300, [100, 200, 0], 2))
    assert.strictEqual(row.servedPerSecond, 100)
    assert.strictEqual(row.errorsPerSecond, 2.5)
    assert.deepStrictEqual(row.errorsByCode, { not_found: 5 })
    assert.strictEqual(row.reconnectsInInterval, 1)
    assert.strictEqual(row.bytesInPerSecond, 10_000)
    // All 200 observations of the interval fell in (1, 10] ms: the median is inside that bucket.
    assert.isAbove(row.p50Ms!, 1)
    assert.isAtMost(row.p50Ms!, 10)
    const text = render([row], ["n2"])
    assert.include(text, "NODE")
    assert.include(text, "100/s")
    assert.include(text, "not_found 5")
    assert.include(text, "no answer: n2")
    assert.match(text, /MAILBOX/)
    assert.match(text, /^n1 .* 4 +9 \(max 6\) /m)
    assert.include(text, "deepest actor mailboxes:\n  n1: @cart-7 6, @cart-2 3")
  })

  it("ls takes a silent member's state from the other nodes' liveness and membership views", () => {
    const described = (
      node: string,
      peers: Array<[string, string]>,
      members: Array<[string, string]> = [],
    ): Admin.Description => ({
      node,
      endpoints: [`tcp://${node}:1`],
      services: [],
      actors: [],
      meta: {},
      protocolVersion: 1,
      pid: 1,
      runtime: "node",
      startedAt: 0,
      contracts: [],
      peers: peers.map(([peer, state]) => ({
        endpoint: `tcp://${peer}:1`,
        node: peer,
        outstanding: 0,
        connected: state !== "dead",
        state,
        rttMs: null,
      })),
      members: members.map(([member, state]) => ({
        node: member,
        state,
        registered: true,
        endpoints: [`tcp://${member}:1`],
        services: [],
        actors: [],
      })),
    })
    const b = { node: "b", endpoint: "tcp://b:1" }
    const views = viewsOf(b, [
      described("a", [["b", "suspect"]], [["b", "alive"]]),
      described("c", [["b", "dead"]], [["b", "unreachable"]]),
      described("d", [["e", "alive"]]),
      described("b", [["a", "alive"]]),
    ])
    assert.deepStrictEqual(views, [
      { by: "a", liveness: "suspect", membership: "alive" },
      { by: "c", liveness: "dead", membership: "unreachable" },
    ])
    assert.strictEqual(stateOf(false, views, true), "dead")
    assert.strictEqual(stateOf(true, views, true), "alive")
    assert.strictEqual(membershipOf(views), "unreachable")
    assert.strictEqual(stateOf(false, views.slice(0, 1), false), "suspect")
    // Its watchers still see it alive (it did not answer this command in time): not dead.
    assert.strictEqual(stateOf(false, [{ by: "a", liveness: "alive", membership: "alive" }], false), "suspect")
    // No node knows it: a registered member is suspect, a static entry nothing answers at is dead.
    assert.strictEqual(stateOf(false, [], true), "suspect")
    assert.strictEqual(stateOf(false, [], false), "dead")
    assert.strictEqual(membershipOf([]), null)
  })

  it("lays tables out in columns", () => {
    assert.strictEqual(
      table(
        ["A", "BB"],
        [
          ["long", "x"],
          ["s", "yy"],
        ],
      ),
      "A     BB\nlong  x\ns     yy",
    )
  })
})
