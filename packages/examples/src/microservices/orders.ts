/**
 * The Orders service, written with the Promise API. It joins the cluster through the beacon, serves `Orders`,
 * and calls `Pricing.quote` by name to price each order. Runs until SIGTERM.
 */
import { start } from "@zactor/core/promise"
import { Discovery } from "@zactor/discovery"
import { Orders, Pricing } from "./contracts.ts"

const node = await start({ id: `orders-${process.pid}`, discovery: Discovery.layerBeaconFromEnv() })
const pricing = node.client(Pricing)
const placed = new Map<string, number>()
let nextOrder = 1

await node.serve(Orders, {
  place: async ({ customer, sku, quantity }, context) => {
    // The quote runs within this call's deadline and is cancelled with it.
    const quote = await pricing.quote({ customer, sku, quantity }, { signal: context.signal })
    placed.set(customer, (placed.get(customer) ?? 0) + 1)
    return { orderId: `o-${nextOrder++}`, totalCents: quote.totalCents, discountPercent: quote.discountPercent }
  },
  history: async ({ customer }) => ({ orders: placed.get(customer) ?? 0 }),
})
console.log(`orders: node ${node.id} serving Orders on ${node.endpoints().join(", ")}`)
process.send?.({ type: "ready", role: "orders" })

process.once("SIGTERM", () => {
  node.close().then(
    () => process.exit(0),
    () => process.exit(1),
  )
})
