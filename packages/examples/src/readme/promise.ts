// The README's Promise example: the same flow without Effect.
import { start } from "@zactor/core/promise"
import { Calculator, DivisionByZero } from "./calculator.ts"

const server = await start({ id: "server" })
await server.serve(Calculator, {
  add: async ({ a, b }) => a + b,
  divide: async ({ a, b }) => {
    if (b === 0) throw new DivisionByZero({ dividend: a })
    return a / b
  },
})
const client = await start({ id: "client" })
await client.connect(server.endpoints()[0]!)
const calculator = client.client(Calculator)
console.log(await calculator.add({ a: 2, b: 3 }, { signal: AbortSignal.timeout(1000) })) // 5
await calculator.divide({ a: 1, b: 0 }).catch((error) => console.log(error instanceof DivisionByZero)) // true
await client.close()
await server.close()
