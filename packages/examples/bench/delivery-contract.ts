/**
 * The contract of the delivery benchmark (delivery.bench.ts), shared by its server and client roles: the small
 * `add` call of the other benchmarks, declared neither idempotent nor at-least-once, so that the client chooses
 * the delivery per call: plain (at most once, no ACK, no key) or at least once with an idempotency key.
 *
 * @since 0.1.0
 */
import { Contract } from "@zactor/core"
import { Schema } from "effect"

/** The benchmark service. @since 0.1.0 */
export const Adder = Contract.make("Adder", {
  add: Contract.unary({
    payload: Schema.Struct({ a: Schema.Number, b: Schema.Number }),
    success: Schema.Number,
  }),
})
