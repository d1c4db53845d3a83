// The `zactor` executable against real nodes in child processes: every command runs as its own process,
// exactly as a person or a health check would run it, and is judged by its output and exit status.
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Curve } from "@zactor/transport"
import * as Harness from "@zactor/transport/testing/harness"
import { Effect } from "effect"
import { afterEach, assert, describe, it } from "vitest"
import type { Listed } from "../src/commands/ls.ts"

const packageDir = path.resolve(import.meta.dirname, "..")
const bin = path.join(packageDir, "src", "bin.ts")
const fixture = path.join(packageDir, "test", "fixtures", "shop-node.ts")

interface Ran {
  readonly code: number | string
  readonly stdout: string
  readonly stderr: string
  readonly ms: number
}

/** Each command is a process started through tsx: seconds each on a loaded 2-core machine. */
const TEST_TIMEOUT_MS = 180_000

const running = new Set<ChildProcess>()

const zactorArgv = (args: ReadonlyArray<string>) => [
  process.execPath,
  "--conditions=@zactor/source",
  "--import",
  "tsx",
  bin,
  ...args,
]

/** Runs a command line in the package directory, collecting its output, killed (by PID) after `timeoutMs`. */
const runProcess = (argv: ReadonlyArray<string>, timeoutMs: number): Promise<Ran> =>
  new Promise((resolve, reject) => {
    const started = performance.now()
    const child = spawn(argv[0]!, argv.slice(1), {
      cwd: packageDir,
      env: { ...process.env, ZACTOR_LOG_LEVEL: "error", FORCE_COLOR: "0" },
      stdio: ["ignore", "pipe", "pipe"],
    })
    running.add(child)
    let stdout = ""
    let stderr = ""
    child.stdout!.on("data", (chunk) => (stdout += String(chunk)))
    child.stderr!.on("data", (chunk) => (stderr += String(chunk)))
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new Error(`${argv.join(" ")} did not exit within ${timeoutMs} ms\n${stdout}\n${stderr}`))
    }, timeoutMs)
    child.once("exit", (code, signal) => {
      clearTimeout(timer)
      running.delete(child)
      resolve({ code: code ?? signal ?? "unknown", stdout, stderr, ms: performance.now() - started })
    })
  })

/** Runs `zactor args...` as a process (TypeScript sources through tsx) and waits for it to exit. */
const zactor = (args: ReadonlyArray<string>, timeoutMs = 30_000): Promise<Ran> =>
  runProcess(zactorArgv(args), timeoutMs)

/**
 * Runs `zactor args...` with a terminal as its standard output (util-linux `script` allocates the pseudo-terminal),
 * as a person watching `top` would. `timeout` inside bounds the command itself, should `script` be killed first.
 */
const zactorInTerminal = async (args: ReadonlyArray<string>, timeoutMs = 60_000): Promise<Ran> => {
  const quote = (word: string) => `'${word.replace(/'/g, "'\\''")}'`
  const command = ["timeout", "-s", "KILL", String(Math.ceil(timeoutMs / 1000)), ...zactorArgv(args)]
  const ran = await runProcess(["script", "-qfec", command.map(quote).join(" "), "/dev/null"], timeoutMs + 5000)
  // The terminal turns every newline into CR LF.
  return { ...ran, stdout: ran.stdout.replace(/\r\n/g, "\n") }
}

const startShop = (id: string, env: Record<string, string> = {}) =>
  Harness.start(fixture, { args: [id], env, readyTimeoutMs: 30_000 })

/** A loopback beacon on a port and cluster of this test's own; the fixtures and the CLI use it. */
const beacon = (expiry = 3000) => {
  const port = 40_000 + Math.floor(Math.random() * 20_000)
  const cluster = `cli-${Math.random().toString(36).slice(2, 8)}`
  return {
    fixtureEnv: {
      ZACTOR_TEST_BEACON: JSON.stringify({ address: "127.255.255.255", port, cluster, interval: 100, expiry }),
    },
    flags: [
      "--beacon-address",
      "127.255.255.255",
      "--beacon-port",
      String(port),
      "--cluster",
      cluster,
      "--wait",
      "800ms",
    ],
  }
}

let dir: string | undefined
afterEach(async () => {
  for (const child of running) child.kill("SIGKILL")
  running.clear()
  await Harness.stopAll()
  if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true })
  dir = undefined
})

describe("zactor against real nodes", () => {
  it(
    "ping: a node answers (exit 0, round trips); a frozen node and a closed port do not (exit 1)",
    async () => {
      const shop = await startShop("shop-1")
      const endpoint = String(shop.ready.endpoint)
      const ok = await zactor(["ping", endpoint, "--count", "3", "--interval", "100ms"])
      assert.strictEqual(ok.code, 0, ok.stderr)
      assert.strictEqual(ok.stdout.match(/answer from shop-1 /g)?.length, 3, ok.stdout)
      assert.match(ok.stdout, /3 sent, 3 answered, 0% lost, round trip min\/avg\/max/)

      const asJson = await zactor(["ping", endpoint, "--json"])
      assert.strictEqual(asJson.code, 0)
      const report = JSON.parse(asJson.stdout)
      assert.strictEqual(report.received, 1)
      assert.strictEqual(report.replies[0].node, "shop-1")
      assert.isAbove(report.rttMs.min, 0)

      // A frozen process keeps its port open (the kernel still accepts connections) but never answers.
      shop.freeze()
      const frozen = await zactor(["ping", endpoint, "--timeout", "500ms"])
      shop.thaw()
      assert.strictEqual(frozen.code, 1, frozen.stdout + frozen.stderr)
      assert.match(frozen.stdout, /no answer from/)
      assert.match(frozen.stdout, /1 sent, 0 answered, 100% lost/)

      const port = await Harness.freePort()
      const closed = await zactor(["ping", `tcp://127.0.0.1:${port}`, "--timeout", "500ms", "--json"])
      assert.strictEqual(closed.code, 1)
      assert.strictEqual(JSON.parse(closed.stdout).received, 0)
    },
    TEST_TIMEOUT_MS,
  )

  it(
    "ping and ls find nodes through the LAN beacon; ls --static tells alive from dead",
    async () => {
      const { fixtureEnv, flags } = beacon()
      const [a, b] = await Promise.all([startShop("shop-a", fixtureEnv), startShop("shop-b", fixtureEnv)])
      const ping = await zactor(["ping", "Shop", ...flags])
      assert.strictEqual(ping.code, 0, ping.stdout + ping.stderr)
      assert.match(ping.stdout, /answer from shop-a /)
      assert.match(ping.stdout, /answer from shop-b /)

      const listed = await zactor(["ls", "--json", ...flags])
      assert.strictEqual(listed.code, 0, listed.stderr)
      const members = JSON.parse(listed.stdout).members as Array<Record<string, unknown>>
      assert.deepStrictEqual(
        members.map((m) => [m.node, m.state, m.services, m.endpoint]),
        [
          ["shop-a", "alive", ["Shop"], a.ready.endpoint],
          ["shop-b", "alive", ["Shop"], b.ready.endpoint],
        ],
      )
      const nobody = await zactor(["ping", "Nothing", ...flags])
      assert.strictEqual(nobody.code, 1)
      assert.match(nobody.stderr, /no node is, or serves, "Nothing": 2 member\(s\) found \(beacon\)/)

      await b.kill()
      const text = await zactor([
        "ls",
        "--timeout",
        "1s",
        "--static",
        `${String(a.ready.endpoint)},${String(b.ready.endpoint)}`,
      ])
      assert.strictEqual(text.code, 0, text.stderr)
      assert.match(text.stdout, /^NODE\s+STATE\s+MEMBERSHIP\s+ENDPOINT\s+SERVICES/m)
      // MEMBERSHIP: no other answering node has a view of shop-a.
      assert.match(text.stdout, /^shop-a\s+alive\s+-\s+tcp:\/\/127\.0\.0\.1:\d+\s+Shop\s/m)
      // The killed node: nothing answers at its endpoint any more.
      assert.match(
        text.stdout,
        new RegExp(`^\\S+\\s+dead\\s+\\S+\\s+${String(b.ready.endpoint).replace(/\./g, "\\.")}\\s`, "m"),
      )
    },
    TEST_TIMEOUT_MS,
  )

  it(
    "ls: states come from the cluster's own liveness; a frozen node is shown dead by the node that watched it",
    async () => {
      // Registrations outlive the test (30 s), so the frozen node stays a registered member of shop-a's view:
      // what decides its state is liveness, not the registry forgetting it.
      const { fixtureEnv, flags } = beacon(30_000)
      const [a, b] = await Promise.all([
        startShop("shop-a", fixtureEnv),
        startShop("shop-b", { ...fixtureEnv, ZACTOR_TEST_ACTOR: "till" }),
      ])
      const ls = async (): Promise<Array<Listed>> => {
        const run = await zactor(["ls", "--json", "--timeout", "1s", ...flags])
        assert.strictEqual(run.code, 0, run.stderr)
        return JSON.parse(run.stdout).members
      }
      const shopB = (members: Array<Listed>) => members.find((m) => m.node === "shop-b")
      // Both answer; shop-a connects to shop-b (it serves something) and its liveness sees it alive.
      let members = await ls()
      for (let i = 0; i < 5 && shopB(members)?.views.find((v) => v.by === "shop-a")?.liveness !== "alive"; i++) {
        members = await ls()
      }
      assert.deepStrictEqual(
        members.map((m) => [m.node, m.state, m.actors]),
        [
          ["shop-a", "alive", []],
          ["shop-b", "alive", ["till"]],
        ],
      )
      assert.deepInclude(shopB(members)!.views, { by: "shop-a", liveness: "alive", membership: "alive" })

      // Frozen: it stops announcing (the CLI's beacon no longer hears it) and stops answering, but its port
      // stays open. shop-a's heartbeats declare it dead within about a second (docs/LIVENESS.md).
      b.freeze()
      for (let i = 0; i < 5 && shopB(members)?.state !== "dead"; i++) members = await ls()
      assert.deepInclude(shopB(members), { state: "dead", membership: "unreachable", actors: ["till"] })
      assert.deepInclude(shopB(members)!.views, { by: "shop-a", liveness: "dead", membership: "unreachable" })
      assert.strictEqual(members.find((m) => m.node === "shop-a")?.state, "alive")

      const text = await zactor(["ls", "--timeout", "1s", ...flags])
      assert.strictEqual(text.code, 0, text.stderr)
      assert.match(text.stdout, /^NODE\s+STATE\s+MEMBERSHIP\s+ENDPOINT\s+SERVICES\s+ACTORS/m)
      assert.match(text.stdout, /^shop-a\s+alive\s+-\s+tcp:\S+\s+Shop\s+-\s/m)
      assert.match(text.stdout, /^shop-b\s+dead\s+unreachable\s+tcp:\S+\s+Shop\s+till\s/m)
      assert.strictEqual(members.find((m) => m.node === "shop-a")?.endpoint, a.ready.endpoint)
    },
    TEST_TIMEOUT_MS,
  )

  it(
    "call: results and streams as JSON; invalid payloads (2, naming the field), failures (1)",
    async () => {
      const shop = await startShop("shop-1")
      const at = ["--static", String(shop.ready.endpoint)]
      const ok = await zactor(["call", "Shop.price", '{"item":"tea","quantity":3}', ...at])
      assert.strictEqual(ok.code, 0, ok.stderr)
      assert.deepStrictEqual(JSON.parse(ok.stdout), { total: 7.5 })

      const stream = await zactor(["call", "Shop.countdown", '{"from":3}', ...at])
      assert.strictEqual(stream.code, 0, stream.stderr)
      assert.deepStrictEqual(stream.stdout.trim().split("\n"), ["3", "2", "1", "0"])

      const invalid = await zactor(["call", "Shop.price", '{"item":"tea","quantity":0}', ...at])
      assert.strictEqual(invalid.code, 2)
      assert.match(invalid.stderr, /invalid payload for Shop\/price: at quantity: /)
      const outOfStock = await zactor(["call", "Shop/price", '{"item":"unicorn","quantity":1}', "--json", ...at])
      assert.strictEqual(outOfStock.code, 1)
      assert.deepStrictEqual(JSON.parse(outOfStock.stdout).error.error, { _tag: "OutOfStock", item: "unicorn" })

      const unknown = await zactor(["call", "Shop.refund", "{}", ...at])
      assert.strictEqual(unknown.code, 1)
      assert.match(unknown.stderr, /Shop has no method refund \(price, countdown\)/)
    },
    TEST_TIMEOUT_MS,
  )

  it(
    "call on a protobuf contract: the payload in its canonical JSON form, results and stream elements back in it",
    async () => {
      const shop = await startShop("clock-1", { ZACTOR_TEST_PROTOBUF: "1" })
      const at = ["--static", String(shop.ready.endpoint)]
      // google.protobuf.Duration in, google.protobuf.Timestamp out, both in their proto3 JSON forms.
      const later = await zactor(["call", "test.Clock.later", '"90.5s"', ...at])
      assert.strictEqual(later.code, 0, later.stderr)
      assert.strictEqual(JSON.parse(later.stdout), "2026-01-01T00:01:30.500Z")
      const json = await zactor(["call", "test.Clock/later", '"1s"', "--json", ...at])
      assert.deepStrictEqual(JSON.parse(json.stdout), { result: "2026-01-01T00:00:01Z" })
      // A stream of google.protobuf.StringValue, from a google.protobuf.Int32Value.
      const count = await zactor(["call", "test.Clock.count", "3", ...at])
      assert.strictEqual(count.code, 0, count.stderr)
      assert.deepStrictEqual(count.stdout.trim().split("\n"), ['"1"', '"2"', '"3"'])
      // Not a Duration: refused before anything is sent (exit 2), with protobuf's reason.
      const invalid = await zactor(["call", "test.Clock.later", '"soon"', ...at])
      assert.strictEqual(invalid.code, 2, invalid.stdout)
      assert.match(invalid.stderr, /invalid payload for test\.Clock\/later: .*google\.protobuf\.Duration/)
    },
    TEST_TIMEOUT_MS,
  )

  it(
    "top --json: one report of live rates from a node under load, then exit",
    async () => {
      const shop = await startShop("busy", { ZACTOR_TEST_LOAD: "1" })
      const top = await zactor(["top", "--json", "--interval", "700ms", "--static", String(shop.ready.endpoint)])
      assert.strictEqual(top.code, 0, top.stderr)
      const lines = top.stdout.trim().split("\n")
      assert.strictEqual(lines.length, 1, "one report")
      const report = JSON.parse(lines[0]!)
      assert.strictEqual(report.intervalMs, 700)
      assert.strictEqual(report.nodes.length, 1)
      const row = report.nodes[0]
      assert.strictEqual(row.node, "busy")
      // The load calls every 5 ms: well over 20 calls/s even on a loaded machine.
      assert.isAbove(row.servedPerSecond, 20)
      assert.isAbove(row.bytesInPerSecond, 0)
      assert.isNumber(row.p50Ms)
      assert.strictEqual(row.errorsPerSecond, 0)
    },
    TEST_TIMEOUT_MS,
  )

  it(
    "top in a terminal: the screen is redrawn at each refresh with the new interval's numbers, then it exits",
    async () => {
      const shop = await startShop("busy", { ZACTOR_TEST_LOAD: "1", ZACTOR_TEST_BACKLOG: "1" })
      const top = await zactorInTerminal([
        "top",
        "--interval",
        "1100ms",
        "--iterations",
        "2",
        "--static",
        String(shop.ready.endpoint),
      ])
      assert.strictEqual(top.code, 0, top.stdout + top.stderr)
      // Each refresh clears the screen and draws a report: two refreshes, then the command ends by itself.
      const screens = top.stdout.split("\u001b[H\u001b[2J").slice(1)
      assert.strictEqual(screens.length, 2, JSON.stringify(top.stdout))
      const reports = screens.map((screen) => {
        const header = screen.match(/^zactor top: 1 node\(s\) via static, rates over 1\.10 s, (.+)$/m)
        assert.isNotNull(header, screen)
        const lines = screen.split("\n")
        const columns = lines.find((line) => line.startsWith("NODE"))!.split(/\s{2,}/)
        const row = lines.find((line) => line.startsWith("busy "))
        assert.isDefined(row, screen)
        const cells = row!.split(/\s{2,}/)
        const cell = (name: string) => cells[columns.indexOf(name)]!
        return {
          time: header![1],
          served: Number.parseFloat(cell("SERVED")),
          mailbox: Number.parseInt(cell("MAILBOX"), 10),
          deepest: Number(screen.match(/^ {2}busy: @backlog (\d+)$/m)?.[1]),
        }
      })
      const [first, second] = reports as [(typeof reports)[0], (typeof reports)[0]]
      // The load calls every 5 ms: over 20 calls/s in each interval even on a loaded machine.
      assert.isAbove(first.served, 20)
      assert.isAbove(second.served, 20)
      // The backlog actor is told a message every 5 ms and takes 50 ms for each: its mailbox only grows, so the
      // second refresh shows a deeper one (and the clock, 1.1 s later, another second).
      assert.isAbove(first.mailbox, 0)
      assert.isAbove(second.mailbox, first.mailbox)
      assert.strictEqual(first.deepest, first.mailbox)
      assert.strictEqual(second.deepest, second.mailbox)
      assert.notStrictEqual(second.time, first.time)
    },
    TEST_TIMEOUT_MS,
  )

  it(
    "keys: pairs made by the CLI secure a node with CURVE, and the CLI reaches it only with an admitted key",
    async () => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), "zactor-keys-"))
      const serverFile = path.join(dir, "server.key")
      const clientFile = path.join(dir, "client.key")
      const strangerFile = path.join(dir, "stranger.key")
      await Effect.runPromise(Curve.saveKeyPair(strangerFile, Curve.generateKeyPair()))
      const made = await Promise.all([serverFile, clientFile].map((file) => zactor(["keys", "--out", file])))
      for (const one of made) assert.strictEqual(one.code, 0, one.stderr)
      const [serverPublic, clientPublic] = made.map((one) => one.stdout.trim())
      fs.writeFileSync(path.join(dir, "allowed"), `# clients\n${clientPublic}\n`)
      const shop = await startShop("vault", {
        ZACTOR_TEST_CURVE_KEY: serverFile,
        ZACTOR_TEST_ALLOWED: path.join(dir, "allowed"),
      })
      assert.strictEqual(shop.ready.publicKey, serverPublic)
      const endpoint = String(shop.ready.endpoint)
      const admitted = await zactor(["ping", endpoint, "--server-key", serverPublic!, "--curve-key", clientFile])
      assert.strictEqual(admitted.code, 0, admitted.stdout + admitted.stderr)
      assert.match(admitted.stdout, /answer from vault /)
      const refused = await zactor([
        "ping",
        endpoint,
        "--server-key",
        serverPublic!,
        "--curve-key",
        strangerFile,
        "--timeout",
        "700ms",
      ])
      assert.strictEqual(refused.code, 1)
      const plaintext = await zactor(["ping", endpoint, "--timeout", "700ms"])
      assert.strictEqual(plaintext.code, 1)
    },
    TEST_TIMEOUT_MS,
  )
})
