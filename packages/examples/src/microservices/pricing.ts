/**
 * The Pricing service, written with the Effect API. It joins the cluster through the beacon (no endpoints
 * configured), serves `Pricing`, and calls `Orders.history` by name to give returning customers a discount.
 * Runs until SIGTERM; tells its parent (if any) when it is serving.
 */

import { Node } from "@zactor/core"
import { Discovery } from "@zactor/discovery"
import { Effect, Layer } from "effect"
import { Orders, Pricing, UnknownSku } from "./contracts.ts"

const catalog: Readonly<Record<string, number>> = { apple: 40, pear: 55, fig: 120 }

const program = Effect.gen(function* () {
  const node = yield* Node.Node
  const orders = node.client(Orders) // by service name: discovery says who serves it
  yield* node.serve(Pricing, {
    quote: ({ customer, sku, quantity }) =>
      Effect.gen(function* () {
        const unitCents = catalog[sku]
        if (unitCents === undefined) return yield* Effect.fail(new UnknownSku({ sku }))
        const { orders: before } = yield* orders.history({ customer }, { timeout: "2 seconds" })
        const discountPercent = Math.min(before * 5, 20)
        const totalCents = Math.round((unitCents * quantity * (100 - discountPercent)) / 100)
        return { unitCents, discountPercent, totalCents }
      }),
  })
  console.log(`pricing: node ${node.id} serving Pricing on ${node.endpoints().join(", ")}`)
  process.send?.({ type: "ready", role: "pricing" })
  yield* Effect.callback<void>((resume) => {
    process.once("SIGTERM", () => resume(Effect.void))
  })
})

const NodeLive = Node.layerZmq({ id: `pricing-${process.pid}` }).pipe(Layer.provide(Discovery.layerBeaconFromEnv()))

Effect.runPromise(program.pipe(Effect.scoped, Effect.provide(NodeLive))).then(
  () => process.exit(0),
  (error) => {
    console.error("pricing failed:", error)
    process.exit(1)
  },
)
