/**
 * A shop front, written with the Promise API: places orders by service name (it knows no endpoint), shows the
 * loyalty discount growing, and a typed application error crossing two services. Exits 0 when every check holds.
 */
import { start } from "@zactor/core/promise"
import { Discovery } from "@zactor/discovery"
import { Orders, UnknownSku } from "./contracts.ts"

const node = await start({ id: `shop-${process.pid}`, discovery: Discovery.layerBeaconFromEnv() })
const orders = node.client(Orders)
let ok = true
try {
  const discounts: Array<number> = []
  for (let i = 0; i < 4; i++) {
    const order = await orders.place({ customer: "ada", sku: "fig", quantity: 3 }, { timeout: "10 seconds" })
    discounts.push(order.discountPercent)
    console.log(`shop: order ${order.orderId} for ada: ${order.totalCents} cents (${order.discountPercent}% off)`)
  }
  if (discounts.join(",") !== "0,5,10,15") {
    console.error(`shop: expected discounts 0,5,10,15, got ${discounts.join(",")}`)
    ok = false
  }
  const refused = await orders.place({ customer: "ada", sku: "durian", quantity: 1 }).catch((error) => error)
  if (refused instanceof UnknownSku) {
    console.log(`shop: Pricing refused "${refused.sku}" and the error reached the shop as UnknownSku`)
  } else {
    console.error("shop: expected UnknownSku, got", refused)
    ok = false
  }
} catch (error) {
  console.error("shop: a call failed:", error)
  ok = false
} finally {
  await node.close()
}
process.exit(ok ? 0 : 1)
