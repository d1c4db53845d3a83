/**
 * The contracts of the RPC benchmark (rpc.bench.ts), shared by its server and client roles: `add` is the small
 * call of the transport benchmark, `addWait` the same answered a turn later, `echo` and `echoBytes` the 4 KiB
 * ones; `Adder` is the actor the `ask` workload asks. Every payload and result is validated by its Schema on both
 * ends, as in any zactor service.
 *
 * @since 0.1.0
 */
import { Contract } from "@zactor/core"
import { Schema } from "effect"

/** The benchmark service. @since 0.1.0 */
export const Calculator = Contract.make("Calculator", {
  add: Contract.unary({
    payload: Schema.Struct({ a: Schema.Number, b: Schema.Number }),
    success: Schema.Number,
  }),
  // Served by a handler that yields once before answering: one that waits on something, as most real ones do.
  addWait: Contract.unary({
    payload: Schema.Struct({ a: Schema.Number, b: Schema.Number }),
    success: Schema.Number,
  }),
  echo: Contract.unary({ payload: Schema.String, success: Schema.String }),
  // Schema.Uint8Array travels as msgpack bin (docs/PROTOCOL.md 3.5), not as JSON's base64.
  echoBytes: Contract.unary({ payload: Schema.Uint8Array, success: Schema.Uint8Array }),
})

/** The contract of the benchmark actor: `add` answers the sum. @since 0.1.0 */
export const Adder = Contract.make("Adder", {
  add: Contract.unary({
    payload: Schema.Struct({ a: Schema.Number, b: Schema.Number }),
    success: Schema.Number,
  }),
})

/** The name the server spawns the benchmark actor under. @since 0.1.0 */
export const ADDER_NAME = "adder"

/** The server node's id, which the client's ref to the actor names. @since 0.1.0 */
export const SERVER_ID = "bench-server"
