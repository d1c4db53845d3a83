// The Promise facade of supervision: `supervise` (children that need no services) and `startPool` with
// in-process workers written as async functions.

import { assert, describe, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import * as ChildSpec from "../src/ChildSpec.ts"
import * as Contract from "../src/Contract.ts"
import { inProcessWorkers, start, startPool, supervise } from "../src/promise.ts"
import { RpcError } from "../src/RpcError.ts"
import { SupervisorError } from "../src/SupervisorError.ts"

const Greeter = Contract.make("PromiseGreeter", {
  greet: Contract.unary({ payload: Schema.Struct({ name: Schema.String }), success: Schema.String }),
})

describe("supervision through the Promise facade", () => {
  it("supervise: children, restarts, escalation as a rejected `done`", async () => {
    let starts = 0
    const crashing = ChildSpec.make(
      "crashing",
      Effect.sync(() => {
        starts++
        return { value: starts, exit: Effect.succeed<ChildSpec.ExitReason>({ _tag: "Died", defect: "boom" }) }
      }),
    )
    const steady = ChildSpec.make("steady", Effect.succeed({ value: "up", exit: Effect.never }))
    const supervisor = await supervise({ maxRestarts: 2, initialBackoff: "1 millis", children: [steady, crashing] })
    const error = await supervisor.done.then(
      () => undefined,
      (e: unknown) => e,
    )
    assert.isTrue(SupervisorError.is(error) && error.reason === "RestartIntensity")
    assert.strictEqual(starts, 3)
    assert.deepStrictEqual(
      supervisor.children().map((c) => [c.id, c.status]),
      [
        ["steady", "stopped"],
        ["crashing", "stopped"],
      ],
    )
    const events: Array<string> = []
    const controller = new AbortController()
    for await (const event of supervisor.events({ signal: controller.signal })) {
      events.push(event._tag)
      if (event._tag === "Escalated") break
    }
    assert.include(events, "ChildRestarted")
    await supervisor.stop()
  })

  it("startPool with in-process async workers: calls, resize, drain", async () => {
    await using node = await start({ id: "promise-pool" })
    let built = 0
    const pool = await startPool(
      node,
      Greeter,
      inProcessWorkers(Greeter, () => {
        const worker = ++built
        return { greet: async ({ name }) => `hello ${name} from ${worker}` }
      }),
      { size: 2, maxSize: 3 },
    )
    assert.strictEqual(await pool.client.greet({ name: "ada" }), "hello ada from 1")
    await pool.resize(3)
    assert.strictEqual(pool.workers().length, 3)
    await pool.drain()
    // Drained and closed: the node no longer serves the contract.
    const refused = await pool.client.greet({ name: "late" }).catch((e: unknown) => e)
    assert.strictEqual(RpcError.is(refused) ? refused.code : refused, "not_found")
    await pool.done
  })
})
