// A client written in another language from docs/PROTOCOL.md alone (Python: pyzmq + msgpack, in test/python)
// against a real node process: proves the document is enough to interoperate. Needs python3 with the zmq and
// msgpack modules (Debian: python3-zmq python3-msgpack; .ci/run installs them).
import { execFileSync, spawn } from "node:child_process"
import * as Harness from "@zactor/transport/testing/harness"
import { afterEach, assert, describe, it } from "vitest"

const fixture = new URL("./fixtures/python-peer-node.ts", import.meta.url).pathname
const checkScript = new URL("./python/check_node.py", import.meta.url).pathname

/** How long the whole Python run may take before it is killed (it needs about 2 s). */
const RUN_TIMEOUT_MS = 30_000

interface CheckResult {
  readonly name: string
  readonly ok: boolean
  readonly detail: unknown
}

interface Report {
  readonly ok: boolean
  readonly results: ReadonlyArray<CheckResult>
}

/** The first interpreter that can import zmq and msgpack: $ZACTOR_PYTHON, python3 on PATH, then the system one. */
const findPython = (): string => {
  const candidates = [process.env.ZACTOR_PYTHON, "python3", "/usr/bin/python3"].filter(
    (c): c is string => c !== undefined && c !== "",
  )
  for (const candidate of candidates) {
    try {
      execFileSync(candidate, ["-c", "import zmq, msgpack"], { stdio: "ignore", timeout: 10_000 })
      return candidate
    } catch {
      // Not installed, or without the modules: try the next one.
    }
  }
  throw new Error(
    `no python3 with the zmq and msgpack modules among ${candidates.join(", ")}: ` +
      "install python3-zmq python3-msgpack (Debian) or set ZACTOR_PYTHON",
  )
}

/** Runs a command, killing it (by its pid) if it outlives `timeoutMs`. */
const run = (command: string, args: ReadonlyArray<string>, timeoutMs: number) =>
  new Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }>((resolve, reject) => {
    // No __pycache__ next to the sources.
    const child = spawn(command, args, {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, PYTHONDONTWRITEBYTECODE: "1" },
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString()
    })
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString()
    })
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs)
    child.once("error", (error) => {
      clearTimeout(timer)
      reject(error)
    })
    child.once("close", (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr })
    })
  })

afterEach(() => Harness.stopAll())

describe("a Python client written from docs/PROTOCOL.md", () => {
  it("talks to a real node: greeting, calls, batches, errors, large numbers, deadlines, cancel, tell, malformed input, id-0 failures, versions", async () => {
    const python = findPython()
    const node = await Harness.start(fixture, { args: ["tcp://127.0.0.1:*", "python-peer"] })
    const endpoint = node.ready.endpoint as string

    const result = await run(python, [checkScript, endpoint, "--node-id", "python-peer"], RUN_TIMEOUT_MS)
    assert.isNull(result.signal, `check_node.py was killed after ${RUN_TIMEOUT_MS} ms; stderr: ${result.stderr}`)
    let report: Report
    try {
      report = JSON.parse(result.stdout) as Report
    } catch {
      assert.fail(`check_node.py printed no JSON report (exit ${result.code}): ${result.stdout}\n${result.stderr}`)
    }
    const failed = report.results.filter((r) => !r.ok)
    assert.deepStrictEqual(failed, [], "every check passes")
    assert.strictEqual(result.code, 0)
    assert.isTrue(report.ok)

    const byName = new Map(report.results.map((r) => [r.name, r]))
    const expected = [
      "hello_welcome",
      "worked_example_bytes",
      "add",
      "batch_of_100",
      "application_error",
      "not_found",
      "invalid_argument",
      "large_integers",
      "optional_field_and_void_reply",
      "headers_and_caller_id",
      "deadline_exceeded_on_the_node",
      "client_timeout_and_cancel",
      "timeout_zero_is_dropped",
      "timeout_beyond_the_timer_limit",
      "duplicate_id_in_flight",
      "tell",
      "ping_pong",
      "repeated_hello_is_an_update",
      "malformed_input_keeps_the_node_answering",
      "malformed_hello_refuses_before_welcome",
      "unknown_failure_code_is_internal",
      "incompatible_version_request",
      "incompatible_version_connection",
      "failure_envelope_is_well_formed",
    ]
    assert.deepStrictEqual([...byName.keys()], expected)
    const welcome = byName.get("hello_welcome")!.detail as { id: string; services: Array<string> }
    assert.strictEqual(welcome.id, "python-peer")
    assert.deepStrictEqual(welcome.services, ["Calculator"])
    assert.deepStrictEqual(byName.get("application_error")!.detail, {
      message: "DivisionByZero",
      error: { _tag: "DivisionByZero", dividend: 7 },
    })
    assert.deepStrictEqual(byName.get("large_integers")!.detail, [
      2 ** 40 + 1,
      -(2 ** 40) - 1,
      2 ** 40 + 1,
      2 ** 53 - 1,
    ])
    assert.deepStrictEqual(byName.get("batch_of_100")!.detail, { calls: 100 })
    // PONG load (PROTOCOL.md 3.12): `inflight` plus the other load signals.
    assert.include(byName.get("ping_pong")!.detail as object, { inflight: 0, mailbox: 0 })

    // The node is still healthy after everything the client threw at it.
    assert.strictEqual(await Promise.race([node.exited, Promise.resolve("running")]), "running")
  })
})
