// The two services of the microservices example. Each calls the other by name: Orders asks Pricing for a quote,
// and Pricing asks Orders how many orders a customer has placed before, for a loyalty discount.
import { Contract } from "@zactor/core"
import { Schema } from "effect"

/** A SKU that Pricing does not sell: a typed application error that reaches the buyer as itself. */
export class UnknownSku extends Schema.TaggedError<UnknownSku>()("UnknownSku", { sku: Schema.String }) {}

/** Prices, with a discount for returning customers. Served with the Effect API (`pricing.ts`). */
export const Pricing = Contract.make("Pricing", {
  quote: Contract.unary({
    payload: Schema.Struct({ customer: Schema.String, sku: Schema.String, quantity: Schema.Int }),
    success: Schema.Struct({ unitCents: Schema.Int, discountPercent: Schema.Int, totalCents: Schema.Int }),
    error: UnknownSku,
    idempotent: true,
  }),
})

/** Orders, priced by Pricing. Served with the Promise API (`orders.ts`). */
export const Orders = Contract.make("Orders", {
  place: Contract.unary({
    payload: Schema.Struct({ customer: Schema.String, sku: Schema.String, quantity: Schema.Int }),
    success: Schema.Struct({ orderId: Schema.String, totalCents: Schema.Int, discountPercent: Schema.Int }),
    error: UnknownSku,
  }),
  history: Contract.unary({
    payload: Schema.Struct({ customer: Schema.String }),
    success: Schema.Struct({ orders: Schema.Int }),
    idempotent: true,
  }),
})
