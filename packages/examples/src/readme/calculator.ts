// The contract used by the README's examples (and run by the examples' smoke test).
import { Contract } from "@zactor/core"
import { Schema } from "effect"

/** An application error declared by the contract: it travels back to the caller as itself. */
export class DivisionByZero extends Schema.TaggedError<DivisionByZero>()("DivisionByZero", {
  dividend: Schema.Number,
}) {}

/** Two methods, validated on both ends. */
export const Calculator = Contract.make("Calculator", {
  add: Contract.unary({ payload: Schema.Struct({ a: Schema.Number, b: Schema.Number }), success: Schema.Number }),
  divide: Contract.unary({
    payload: Schema.Struct({ a: Schema.Number, b: Schema.Number }),
    success: Schema.Number,
    error: DivisionByZero,
  }),
})
