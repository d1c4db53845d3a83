// The README's Effect example: serve a contract on one node, call it from another.
import { Node } from "@zactor/core"
import { Effect } from "effect"
import { Calculator, DivisionByZero } from "./calculator.ts"

const program = Effect.gen(function* () {
  // Two nodes in one process for brevity; normally each process runs one.
  const server = yield* Node.makeZmq({ id: "server" })
  yield* server.serve(Calculator, {
    add: ({ a, b }) => Effect.succeed(a + b),
    divide: ({ a, b }) => (b === 0 ? Effect.fail(new DivisionByZero({ dividend: a })) : Effect.succeed(a / b)),
  })
  const client = yield* Node.makeZmq({ id: "client" })
  yield* client.connect(server.endpoints()[0]!)
  const calculator = client.client(Calculator) // by service name; or { endpoint } / { node }
  console.log(yield* calculator.add({ a: 2, b: 3 }, { timeout: "1 second" })) // 5
  const error = yield* Effect.flip(calculator.divide({ a: 1, b: 0 }))
  console.log(error instanceof DivisionByZero, error) // true, the application error as itself
})

Effect.runPromise(Effect.scoped(program)) // closing the scope stops both nodes
