/**
 * One-command run of the microservices example (`pnpm --filter @zactor/examples demo:microservices`): starts
 * Pricing (Effect API), Orders (Promise API) and the shop front as three processes that find each other through
 * the LAN beacon, on a cluster name of their own so that other runs on the network do not mix in.
 */
import { randomBytes } from "node:crypto"
import { roles } from "../shared/roles.ts"

const run = roles(import.meta, "microservices", 45_000)
const env = { ZACTOR_BEACON_CLUSTER: `shop-${randomBytes(4).toString("hex")}` }
run.main(async () => {
  const pricing = run.start("pricing", [], env)
  const orders = run.start("orders", [], env)
  await Promise.all([run.messageOf(pricing, "ready"), run.messageOf(orders, "ready")])
  const shopStatus = await run.exitOf(run.start("client", [], env))
  pricing.kill("SIGTERM")
  orders.kill("SIGTERM")
  const statuses = await Promise.all([run.exitOf(pricing), run.exitOf(orders)])
  console.log(`microservices: shop exited ${shopStatus}, services exited ${statuses.join(", ")}`)
  return shopStatus === 0 && statuses.every((status) => status === 0) ? 0 : 1
})
