// Shared test contracts and node builders.

import { Transport, ZmqTransport } from "@zactor/transport"
import { waitUntil } from "@zactor/transport/testing/harness"
import { Effect, Schema } from "effect"
import * as Contract from "../src/Contract.ts"
import * as Node from "../src/Node.ts"
import type { NodeOptions } from "../src/NodeOptions.ts"

/** An application error declared by the contract. */
export class DivisionByZero extends Schema.TaggedError<DivisionByZero>()("DivisionByZero", {
  dividend: Schema.Number,
}) {}

/** A small contract exercising success, application errors, slow work and idempotency. */
export const Calculator = Contract.make("Calculator", {
  add: Contract.unary({
    payload: Schema.Struct({ a: Schema.Number, b: Schema.Number }),
    success: Schema.Number,
    idempotent: true,
  }),
  divide: Contract.unary({
    payload: Schema.Struct({ a: Schema.Number, b: Schema.Number }),
    success: Schema.Number,
    error: DivisionByZero,
  }),
  sleep: Contract.unary({
    payload: Schema.Struct({ ms: Schema.Number }),
    success: Schema.String,
  }),
})

/** Echo: lets a test process serve something a fixture node calls back (calls in both directions). */
export const Echo = Contract.make("Echo", {
  echo: Contract.unary({ payload: Schema.Struct({ text: Schema.String }), success: Schema.String }),
})

/** Relay: a node that forwards Calculator/add to the node named in header `via` (three-node calls). */
export const Relay = Contract.make("Relay", {
  add: Contract.unary({ payload: Schema.Struct({ a: Schema.Number, b: Schema.Number }), success: Schema.Number }),
})

/** A node on a real ZeroMQ transport (tcp on loopback), scoped. */
export const zmqNode = (options: NodeOptions = {}) =>
  Effect.flatMap(ZmqTransport.make({}), (transport) =>
    Node.make(options).pipe(Effect.provideService(Transport, transport)),
  )

/** Layer form, for tests that prefer it. */
export const zmqNodeLayer = (options: NodeOptions = {}) => Node.layerZmq(options)

/** Polls `condition` every 5 ms until it holds; dies naming `what` after `timeoutMs`. Succeeds with the ms waited. */
export const waitFor = (condition: () => boolean, timeoutMs: number, what: string) =>
  Effect.promise(() => waitUntil(condition, timeoutMs, what))
