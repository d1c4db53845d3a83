// A worker's main ends and the process exits: what its node had sent by then still arrives. ZeroMQ writes on a
// thread of its own; `process.exit` at once would drop what it had not written yet (measured here: a fixture
// that told 40 MiB to a receiver stalled for 300 ms, then exited at once, delivered 4 and 6 of the 40 messages).

import { spawn } from "node:child_process"
import { assert, describe, it } from "@effect/vitest"
import { Transport, ZmqTransport } from "@zactor/transport"
import { Effect } from "effect"
import * as Node from "../src/Node.ts"
import { bundle } from "./fixtures/bundle.ts"
import { Echo, waitFor } from "./fixtures.ts"

const COUNT = 40
const BYTES = 1 << 20

describe("a worker process's exit", () => {
  it.live(
    "delivers what it sent before it exits: 40 one-MiB tells queued just before the end all arrive",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const entry = yield* Effect.promise(() =>
            bundle(new URL("./fixtures/exit-after-tells.ts", import.meta.url).pathname),
          )
          // A receiver that takes little into its queue and stalls 300 ms on the first message: the sender is still
          // writing when its main ends, and must wait (within its linger) instead of dropping the rest.
          const transport = yield* ZmqTransport.make({
            receiveHighWaterMark: 2,
            heartbeatInterval: "60 seconds",
            heartbeatTimeout: "120 seconds",
          })
          const receiver = yield* Node.make({ id: "receiver" }).pipe(Effect.provideService(Transport, transport))
          let received = 0
          let bytes = 0
          yield* receiver.serve(Echo, {
            echo: ({ text }) =>
              Effect.sync(() => {
                if (received++ === 0) {
                  const until = Date.now() + 300
                  while (Date.now() < until) {}
                }
                bytes += text.length
                return "ok"
              }),
          })
          const startedAt = Date.now()
          const child = spawn(process.execPath, [entry], {
            env: { ...process.env, TARGET: receiver.endpoints()[0]!, COUNT: String(COUNT), BYTES: String(BYTES) },
            stdio: ["ignore", "inherit", "inherit"],
          })
          yield* Effect.addFinalizer(() => Effect.sync(() => child.exitCode === null && child.kill("SIGKILL")))
          const code = yield* Effect.promise(
            () => new Promise<number | null>((resolve) => child.once("exit", (exitCode) => resolve(exitCode))),
          )
          const exitedAfter = Date.now() - startedAt
          assert.strictEqual(code, 0)
          yield* waitFor(() => received === COUNT, 5000, "every tell to arrive")
          assert.strictEqual(bytes, COUNT * BYTES)
          console.log(`exit after tells: ${COUNT} x ${BYTES} B delivered, process exited after ${exitedAfter} ms`)
        }),
      ),
    30_000,
  )
})
