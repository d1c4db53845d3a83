/**
 * `pnpm bench`: ZmqTransport against the reference use of zeromq.js, measured as in BENCHMARKS.md (see pair.ts
 * for the method: two pinned processes, warm-up, median of rounds, ratios within the run, CPU by thread). The
 * client keeps `c` `add` calls outstanding: `{id, method: "add", args: [1, 2]}` encoded with msgpackr, answered
 * with `{id, result}`.
 *
 * - `bare-zmq`: DEALER/ROUTER, one ZeroMQ message per call, awaited send queue (bare-server.ts / bare-client.ts).
 * - `zactor-transport`: the same workload through ZmqTransport's offer and poll/await API, which batches
 *   (zactor-server.ts / zactor-client.ts).
 *
 * Flags: `--seconds N` (default 3), `--rounds N` (3), `--warmup N` seconds (1), `--concurrency 1,32,256`,
 * `--systems bare-zmq,zactor-transport`, `--quick` (1 round of 1 s after 0.5 s of warm-up), `--cpu-prof` or
 * `--heap-prof`, `--top N` (25), `--early-batch N` (the transport's `earlyBatchMessages`, default 0: early batches
 * off), `--noisy-retries N` (6; see rpc.bench.ts).
 *
 * @since 0.1.0
 */
import { killRolesOnExit, parseFlags } from "./harness.ts"
import { type Result, runMain, runPairBenchmark } from "./pair.ts"

const systems = {
  "bare-zmq": { server: "bare-server.ts", client: "bare-client.ts" },
  "zactor-transport": { server: "zactor-server.ts", client: "zactor-client.ts" },
} as const
type System = keyof typeof systems
const systemNames = Object.keys(systems) as ReadonlyArray<System>

const usage = `usage: pnpm bench [--seconds N] [--rounds N] [--warmup N] [--concurrency 1,32,256]
                  [--systems ${systemNames.join(",")}] [--quick] [--cpu-prof | --heap-prof] [--top N]
                  [--early-batch N] [--noisy-retries N]`

const flags = parseFlags(usage, {
  concurrency: { type: "string" },
  systems: { type: "string" },
  "cpu-prof": { type: "boolean" },
  "heap-prof": { type: "boolean" },
  top: { type: "string" },
  "early-batch": { type: "string" },
  "noisy-retries": { type: "string" },
})

const add = (concurrency: number) => ({ concurrency, workload: "add" }) as const
const earlyBatch = flags.values["early-batch"] === undefined ? undefined : Number(flags.values["early-batch"])
if (earlyBatch !== undefined && !(Number.isInteger(earlyBatch) && earlyBatch >= 0)) {
  console.error(`--early-batch must be an integer >= 0\n${usage}`)
  process.exit(2)
}

killRolesOnExit()
runMain(() =>
  runPairBenchmark({
    name: "transport",
    title: "Transport benchmark",
    workload: 'request {id, method: "add", args: [1, 2]}, reply {id, result}, msgpackr, loopback TCP',
    systems: {
      "bare-zmq": systems["bare-zmq"],
      "zactor-transport": {
        ...systems["zactor-transport"],
        args: earlyBatch === undefined ? [] : [JSON.stringify({ earlyBatchMessages: earlyBatch })],
      },
    },
    selected: flags.list("systems", systemNames),
    reference: "bare-zmq",
    candidate: "zactor-transport",
    scenarios: flags.counts("concurrency", [1, 32, 256]).map(add),
    targets: [
      { scenario: add(32), metric: "calls/s", kind: "ratio", value: (r: Result) => r.callsPerSecond, atLeast: 2.5 },
      { scenario: add(256), metric: "calls/s", kind: "ratio", value: (r: Result) => r.callsPerSecond, atLeast: 5 },
      { scenario: add(1), metric: "p50", kind: "ratio", value: (r: Result) => r.p50Us, atMost: 1.1 },
    ],
    seconds: flags.seconds,
    rounds: flags.rounds,
    warmupSeconds: flags.warmupSeconds,
    noisyRetries: flags.values["noisy-retries"] === "0" ? 0 : flags.count("noisy-retries", 6),
    profile: flags.values["heap-prof"] === true ? "heap" : flags.values["cpu-prof"] === true ? "cpu" : undefined,
    top: flags.count("top", 25),
    settings: { earlyBatch },
  }),
)
