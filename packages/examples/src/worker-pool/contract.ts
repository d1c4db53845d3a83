// The contract of the worker-pool demo: one job, with a side effect (a line in a ledger file) that must happen
// exactly once per job even while workers are killed mid-call.
import { Contract } from "@zactor/core"
import { Schema } from "effect"

/**
 * `run` squares `n` and appends `job pid` to the shared ledger: its side effect. At-least-once and not
 * idempotent, so calls carry an idempotency key, are acknowledged on receipt, and are retried (on another
 * worker) when a worker dies; the workers' shared dedupe store answers a retry of a job that already ran.
 */
export const Jobs = Contract.make("Jobs", {
  run: Contract.unary({
    payload: Schema.Struct({ job: Schema.String, n: Schema.Int }),
    success: Schema.Struct({ square: Schema.Int, worker: Schema.Int }),
    delivery: "at-least-once",
  }),
})
