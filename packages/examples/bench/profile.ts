/**
 * Reading the CPU profiles that benchmark roles write (`--cpu-prof`, see `CPU_PROFILE_ENV` in harness.ts): the
 * main thread's busy time by package or concern, and the functions with the most self time, per call.
 *
 * @since 0.1.0
 */
import { readFileSync } from "node:fs"
import { table } from "./harness.ts"

interface CpuProfile {
  readonly nodes: ReadonlyArray<{
    readonly id: number
    readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number }
    readonly children?: ReadonlyArray<number>
  }>
  readonly startTime: number
  readonly endTime: number
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
}

/**
 * What a function's time is spent on, for the breakdown: the package, and for Node's own modules the concern
 * (timers, async_hooks, buffers), since a per-call `setTimeout` or `AsyncResource` is a cost worth seeing.
 */
const categoryOf = (functionName: string, url: string): string => {
  if (functionName === "(garbage collector)") return "GC (main thread part)"
  if (functionName === "(program)") return "(program): native, outside JS"
  if (url.includes("/effect/") || url.includes("/effect@")) {
    // Schemas whose wire form is base64 (Uint8ArrayFromBase64) run effect's Encoding module in JavaScript.
    if (/\/encoding\/[^/]*\.(ts|js)$/.test(url)) return "effect Encoding (base64)"
    return /\/(Schema[A-Za-z]*|internal\/schema\/[^/]*)\.(ts|js)$/.test(url) ? "effect Schema" : "effect runtime"
  }
  if (url === "node:inspector") return "profiler (overhead)"
  if (url.includes("msgpackr")) return "msgpackr"
  if (url.includes("zeromq")) return "zeromq.js (JS)"
  if (url.includes("/packages/core/")) return "zactor core"
  if (url.includes("/packages/transport/")) return "zactor transport (JS)"
  if (url.includes("/bench/")) return "bench role"
  if (url === "node:timers" || url === "node:internal/timers") return "node timers (setTimeout/clearTimeout)"
  if (url === "node:async_hooks" || url === "node:internal/async_hooks") return "node async_hooks"
  if (url === "node:buffer" || url === "node:internal/buffer") return "node Buffer"
  if (url.startsWith("node:")) return "node internals, other"
  if (url === "") return "native, no JS caller"
  return "other JS"
}

/** Categories whose native callees are zeromq.js's N-API socket calls (send, receive). */
const socketCallers = new Set(["zeromq.js (JS)", "zactor transport (JS)", "bench role"])
/** Wall time: includes the time the ZeroMQ I/O thread, pinned to the same CPU, preempts the caller. */
const SOCKET_NATIVE = "zeromq.js native send/receive"

const shortUrl = (url: string): string =>
  url
    .replace(/^file:\/\/.*\/node_modules\/\.pnpm\/[^/]+\/node_modules\//, "")
    .replace(/^file:\/\/.*\/packages\//, "")
    .replace(/^file:\/\/\/work\/main\//, "")

/**
 * Summarizes one CPU profile: busy time of the main thread by category and the top functions by self time, as a share
 * and in µs per call (`callsPerSecond` of the run times the profile's duration). Native functions without a
 * script (N-API calls such as zeromq.js's send and receive, `setTimeout`'s binding) are charged to the category
 * of their JavaScript caller, marked "native".
 */
export const summarizeProfile = (file: string, callsPerSecond: number | undefined, topFunctions = 25): string => {
  const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile
  const nodeById = new Map(profile.nodes.map((n) => [n.id, n]))
  const parentOf = new Map<number, number>()
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id)
  const selfUs = new Map<number, number>()
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0))
  }
  const describe = (id: number): { readonly name: string; readonly category: string } => {
    const { functionName, url, lineNumber } = nodeById.get(id)!.callFrame
    const name = `${functionName || "(anonymous)"}${url === "" ? "" : ` ${shortUrl(url)}:${lineNumber + 1}`}`
    if (url !== "" || functionName.startsWith("(")) return { name, category: categoryOf(functionName, url) }
    // A native function: find the nearest JavaScript caller.
    let caller = parentOf.get(id)
    while (caller !== undefined && nodeById.get(caller)!.callFrame.url === "") caller = parentOf.get(caller)
    if (caller === undefined) return { name: `${name} (native)`, category: "native, no JS caller" }
    const outer = describe(caller)
    // V8 names N-API functions unreliably ("Proxy", "terminate", ""): every native a socket caller calls is taken
    // for a socket call, but performance.now.
    const socketCall = socketCallers.has(outer.category) && functionName !== "now"
    return { name: `${name} (native) <- ${outer.name}`, category: socketCall ? SOCKET_NATIVE : outer.category }
  }
  const byFunction = new Map<string, { name: string; category: string; us: number }>()
  const byCategory = new Map<string, number>()
  let busyUs = 0
  for (const [id, us] of selfUs) {
    if (nodeById.get(id)!.callFrame.functionName === "(idle)") continue
    busyUs += us
    const { name, category } = describe(id)
    byCategory.set(category, (byCategory.get(category) ?? 0) + us)
    const entry = byFunction.get(name) ?? { name, category, us: 0 }
    entry.us += us
    byFunction.set(name, entry)
  }
  const durationUs = profile.endTime - profile.startTime
  const calls = callsPerSecond === undefined ? undefined : (callsPerSecond * durationUs) / 1e6
  const pct = (us: number): string => `${((100 * us) / busyUs).toFixed(1)} %`
  const perCall = (us: number): string => (calls === undefined ? "-" : (us / calls).toFixed(2))
  const categories = [...byCategory].sort((a, b) => b[1] - a[1])
  const functions = [...byFunction.values()].sort((a, b) => b.us - a.us).slice(0, topFunctions)
  return [
    `main thread busy ${(busyUs / 1000).toFixed(0)} of ${(durationUs / 1000).toFixed(0)} ms` +
      (calls === undefined ? "" : `, ${perCall(busyUs)} µs per call (~${calls.toFixed(0)} calls)`),
    table(
      ["category", "share", "µs/call"],
      categories.map(([category, us]) => [category, pct(us), perCall(us)]),
    ),
    "",
    table(
      ["function (self time)", "category", "share", "µs/call"],
      functions.map((f) => [f.name, f.category, pct(f.us), perCall(f.us)]),
    ),
  ].join("\n")
}

interface HeapProfileNode {
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number }
  readonly selfSize: number
  readonly children: ReadonlyArray<HeapProfileNode>
}

/**
 * Summarizes one allocation profile (`--heap-prof`: sampled allocations, including objects already collected):
 * bytes allocated per call in total and by allocation site, over `calls` calls.
 */
export const summarizeHeapProfile = (file: string, calls: number | undefined, topSites = 25): string => {
  const { head } = JSON.parse(readFileSync(file, "utf8")) as { head: HeapProfileNode }
  const bySite = new Map<string, number>()
  let total = 0
  const visit = (node: HeapProfileNode): void => {
    if (node.selfSize > 0) {
      const { functionName, url, lineNumber } = node.callFrame
      const site = `${functionName || "(anonymous)"}${url === "" ? " (native)" : ` ${shortUrl(url)}:${lineNumber + 1}`}`
      bySite.set(site, (bySite.get(site) ?? 0) + node.selfSize)
      total += node.selfSize
    }
    for (const child of node.children) visit(child)
  }
  visit(head)
  const perCall = (bytes: number): string => (calls === undefined || calls === 0 ? "-" : (bytes / calls).toFixed(0))
  const sites = [...bySite].sort((a, b) => b[1] - a[1]).slice(0, topSites)
  return [
    `allocated ${(total / 1e6).toFixed(0)} MB, ${perCall(total)} bytes per call (~${calls?.toFixed(0) ?? "?"} calls)`,
    table(
      ["allocation site", "share", "bytes/call"],
      sites.map(([site, bytes]) => [site, `${((100 * bytes) / total).toFixed(1)} %`, perCall(bytes)]),
    ),
  ].join("\n")
}
