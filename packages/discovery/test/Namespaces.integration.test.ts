import { afterAll, assert, describe, it } from "vitest"
import { createLan, type Host, type NsProcess, namespacesUnavailable, startIn, teardown } from "./netns.ts"

const fixture = new URL("./fixtures/discovery-node.ts", import.meta.url).pathname

if (namespacesUnavailable !== undefined) {
  console.warn(`network-namespace test skipped: cannot create namespaces here (${namespacesUnavailable})`)
}

afterAll(() => teardown())

interface Member {
  readonly nodeId: string
  readonly state: string
  readonly endpoint: string | undefined
}

const members = async (process: NsProcess): Promise<ReadonlyArray<Member>> =>
  (await process.ask({ type: "members" }, "members")).members as ReadonlyArray<Member>

const waitFor = async (what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<number> => {
  const started = Date.now()
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  return Date.now() - started
}

const stateIn = async (process: NsProcess, nodeId: string) =>
  (await members(process)).find((m) => m.nodeId === nodeId)?.state ?? "absent"

describe.skipIf(namespacesUnavailable !== undefined)("beacon discovery across network namespaces", () => {
  it("a client on one host calls a service by name on other hosts, with no endpoint configured", async () => {
    const [h1, h2, h3] = createLan(3) as [Host, Host, Host]
    // Default beacon settings (multicast group, port) but for the cluster name; nodes bind every interface
    // and are reached at their beacon's source address.
    const env = { ZACTOR_BEACON_CLUSTER: "netns", ZACTOR_TEST_BIND: "tcp://0.0.0.0:*" }
    const serve = { ...env, ZACTOR_TEST_SERVE: "1" }
    const [a, , client] = await Promise.all([
      startIn(h1, fixture, ["a"], serve),
      startIn(h2, fixture, ["b"], serve),
      startIn(h3, fixture, ["c"], env),
    ])
    await waitFor("a and b alive in c's view", 10_000, async () => {
      const view = await members(client!)
      return ["a", "b"].every((id) => view.find((m) => m.nodeId === id)?.state === "alive")
    })
    const view = await members(client!)
    assert.deepStrictEqual(view.map((m) => m.endpoint?.replace(/:\d+$/, "")).sort(), [
      `tcp://${h1.address}`,
      `tcp://${h2.address}`,
    ])
    const called = await client!.ask({ type: "call", count: 20 }, "called")
    assert.deepStrictEqual(called.errors, [])
    assert.deepStrictEqual([...new Set(called.answers as Array<string>)].sort(), ["a", "b"])

    // Crash host 1's node: it leaves c's view within the beacon bound, and calls go to b only.
    const killedAt = Date.now()
    await a!.kill()
    await waitFor("a to disappear", 5000, async () => (await stateIn(client!, "a")) === "absent")
    // The bound is 1.53 s (docs/DISCOVERY.md); 0.7 s more for scheduling delay and the polling over IPC.
    assert.isBelow(Date.now() - killedAt, 1250 + 275 + 700)
    const after = await client!.ask({ type: "call", count: 10 }, "called")
    assert.deepStrictEqual(after.errors, [])
    assert.deepStrictEqual([...new Set(after.answers as Array<string>)], ["b"])

    // Restart it: it reappears and takes calls again.
    await startIn(h1, fixture, ["a"], serve)
    await waitFor("a to reappear", 10_000, async () => (await stateIn(client!, "a")) === "alive")
    const again = await client!.ask({ type: "call", count: 20 }, "called")
    assert.include(again.answers as Array<string>, "a")
  }, 60_000)
})
