import * as Harness from "@zactor/transport/testing/harness"
import { startEtcd } from "../test/etcdServer.ts"

const fixture = new URL("../test/fixtures/discovery-node.ts", import.meta.url).pathname
const etcd = await startEtcd()
const env = {
  ZACTOR_TEST_SERVE: "1",
  ZACTOR_TEST_WAIT_GO: "1",
  ZACTOR_TEST_DISCOVERY: "etcd",
  ZACTOR_ETCD_ENDPOINTS: etcd.endpoint,
  ZACTOR_ETCD_CLUSTER: "p",
}
const ps = await Promise.all(
  [0, 1, 2].map((i) => Harness.start(fixture, { args: [`n${i}`], env, readyTimeoutMs: 60_000 })),
)
await new Promise((r) => setTimeout(r, 1000))
const go = Date.now()
for (const p of ps) p.send({ type: "go", expect: 3 })
for (const p of ps) {
  const s = await p.waitForMessage((m) => m.type === "started", 30_000)
  const c = await p.waitForMessage((m) => m.type === "converged", 30_000)
  console.log("started", Date.now() - go, "view", Number(c.viewAt) - go, "alive", Number(c.aliveAt) - go, s.endpoint)
}
await Harness.stopAll()
await etcd.dispose()
process.exit(0)
