/**
 * `pnpm bench:rpc`: typed zactor RPC against the reference use of zeromq.js, measured as in BENCHMARKS.md (see
 * pair.ts for the method: two pinned processes, warm-up, median of rounds, ratios within the run, CPU by thread).
 *
 * - `bare-zmq`: the reference of the transport benchmark (bare-server.ts / bare-client.ts), unchanged.
 * - `bare-zmq-batch`: zeromq.js at its best, no framework work: each turn's calls in one message, synchronous
 *   sends (bare-batch-server.ts / bare-batch-client.ts). The floor of what a call can cost on zeromq.js here.
 * - `zactor-rpc`: a server node serving `Calculator` (rpc-contract.ts) and a client node calling it through the
 *   typed client from `c` fibers (rpc-server.ts / rpc-client.ts); Schema validation on both ends.
 *
 * Scenarios: `add` (`{a, b}` -> number), `add-wait` (the same, answered one turn later: the zactor handler
 * yields once, the bare server answers from `setImmediate`, like handlers that wait on I/O or timers) and `ask`
 * (the same sum asked of an actor in the server process through an `ActorRef`: its mailbox, one message at a
 * time; bare zeromq.js answers `add`) at every `--concurrency`, and at c = `--echo-concurrency` a 4 KiB string
 * echo (`echo-str`) and a 4 KiB bytes echo (`echo-bin`; `Schema.Uint8Array` travels as msgpack bin).
 *
 * Flags: `--seconds N` (default 3), `--rounds N` (3), `--warmup N` seconds (1), `--concurrency 1,32,256`,
 * `--echo-concurrency 32`, `--workloads add,echo-str,echo-bin,add-wait,ask`, `--systems bare-zmq,bare-zmq-batch,zactor-rpc`,
 * `--quick` (1 round of 1 s after 0.5 s of warm-up), `--cpu-prof` or `--heap-prof` (profile the roles over the
 * measured rounds and print a summary per role; kept under .bench/), `--top N` (functions listed per profile,
 * 25), `--max-batch N` / `--early-batch N` (the zactor transports' `maxBatchMessages` and `earlyBatchMessages`,
 * default theirs: 64 and 0, early batches off; for experiments),
 * `--noisy-retries N` (6): a round during which other processes used more than 10 % of a CPU is measured again,
 * up to N times per system and scenario; rounds still noisy after that are kept and flagged.
 *
 * @since 0.1.0
 */
import { isEcho, killRolesOnExit, parseFlags, type Workload, workloads } from "./harness.ts"
import { type Result, runMain, runPairBenchmark, type Scenario } from "./pair.ts"

const systems = {
  "bare-zmq": { server: "bare-server.ts", client: "bare-client.ts" },
  "bare-zmq-batch": { server: "bare-batch-server.ts", client: "bare-batch-client.ts" },
  "zactor-rpc": { server: "rpc-server.ts", client: "rpc-client.ts" },
} as const
type System = keyof typeof systems
const systemNames = Object.keys(systems) as ReadonlyArray<System>

/** The transport benchmark's workloads, one whose handlers wait a turn, and asks of an actor. */
const rpcWorkloads: ReadonlyArray<Workload> = [...workloads, "add-wait", "ask"]

const usage = `usage: pnpm bench:rpc [--seconds N] [--rounds N] [--warmup N] [--concurrency 1,32,256]
                      [--echo-concurrency 32] [--workloads ${rpcWorkloads.join(",")}]
                      [--systems ${systemNames.join(",")}] [--quick] [--cpu-prof | --heap-prof] [--top N]
                      [--max-batch N] [--early-batch N] [--noisy-retries N]`

const flags = parseFlags(usage, {
  concurrency: { type: "string" },
  "echo-concurrency": { type: "string" },
  workloads: { type: "string" },
  systems: { type: "string" },
  "cpu-prof": { type: "boolean" },
  "heap-prof": { type: "boolean" },
  top: { type: "string" },
  "max-batch": { type: "string" },
  "early-batch": { type: "string" },
  "noisy-retries": { type: "string" },
})
const concurrencies = flags.counts("concurrency", [1, 32, 256])
const echoConcurrency = flags.count("echo-concurrency", 32)
const maxBatch = flags.values["max-batch"] === undefined ? undefined : flags.count("max-batch", 64)
const earlyBatch = flags.values["early-batch"] === undefined ? undefined : Number(flags.values["early-batch"])
if (earlyBatch !== undefined && !(Number.isInteger(earlyBatch) && earlyBatch >= 0)) {
  console.error(`--early-batch must be an integer >= 0\n${usage}`)
  process.exit(2)
}
const roleOptions =
  maxBatch === undefined && earlyBatch === undefined
    ? []
    : [JSON.stringify({ maxBatchMessages: maxBatch, earlyBatchMessages: earlyBatch })]
const scenarios: ReadonlyArray<Scenario> = flags
  .list("workloads", rpcWorkloads)
  .flatMap(
    (workload): Array<Scenario> =>
      isEcho(workload)
        ? [{ concurrency: echoConcurrency, workload }]
        : concurrencies.map((concurrency) => ({ concurrency, workload })),
  )

const add = (concurrency: number): Scenario => ({ concurrency, workload: "add" })

killRolesOnExit()
runMain(() =>
  runPairBenchmark({
    name: "rpc",
    title: "RPC benchmark",
    workload:
      "bare-zmq: {id, method, args} msgpackr over DEALER/ROUTER; zactor-rpc: Calculator.add({a: 1, b: 2}) -> 3, " +
      "addWait (answered a turn later), echo(4096-char string), echoBytes(4096-byte Uint8Array) through " +
      "node.client, Adder.add asked of an actor (ask), Schema-validated both ends",
    systems: {
      "bare-zmq": systems["bare-zmq"],
      "bare-zmq-batch": systems["bare-zmq-batch"],
      // Only zactor roles take transport options; bare-zmq has no batching.
      "zactor-rpc": { ...systems["zactor-rpc"], args: roleOptions },
    },
    selected: flags.list("systems", systemNames),
    reference: "bare-zmq",
    candidate: "zactor-rpc",
    scenarios,
    targets: [
      { scenario: add(32), metric: "calls/s", kind: "ratio", value: (r: Result) => r.callsPerSecond, atLeast: 2 },
      { scenario: add(256), metric: "calls/s", kind: "ratio", value: (r: Result) => r.callsPerSecond, atLeast: 4 },
      { scenario: add(1), metric: "p50", kind: "ratio", value: (r: Result) => r.p50Us, atMost: 1.15 },
      { scenario: add(32), metric: "CPU µs/call", kind: "absolute", value: (r: Result) => r.cpuUsPerCall, atMost: 8 },
    ],
    seconds: flags.seconds,
    rounds: flags.rounds,
    warmupSeconds: flags.warmupSeconds,
    noisyRetries: flags.values["noisy-retries"] === "0" ? 0 : flags.count("noisy-retries", 6),
    profile: flags.values["heap-prof"] === true ? "heap" : flags.values["cpu-prof"] === true ? "cpu" : undefined,
    top: flags.count("top", 25),
    settings: { maxBatch, earlyBatch },
  }),
)
