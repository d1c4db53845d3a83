/**
 * A pool worker: `worker.ts <ledger file> <dedupe directory> <stats directory>`. Serves `Jobs` through
 * `WorkerProcess.serve` (ready handshake with the pool, graceful drain on SIGTERM) with a dedupe store shared by
 * all workers of the host, and writes its node's counters to `<stats directory>/<pid>.json` every 100 ms so the
 * demo can count deduplicated retries (a worker killed with SIGKILL loses at most its last 100 ms of counts).
 */
import { appendFileSync, renameSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { DedupeStore, FileDedupeStore, WorkerProcess } from "@zactor/core"
import { Effect } from "effect"
import { Jobs } from "./contract.ts"

const [ledger = "", dedupeDirectory = "", statsDirectory = ""] = process.argv.slice(2)

/** A few ms of work before and after the effect, so that kills land mid-call. */
const work = Effect.suspend(() => Effect.sleep(1 + Math.floor(Math.random() * 4)))

const program = Effect.gen(function* () {
  const store = yield* FileDedupeStore.make({ directory: dedupeDirectory })
  yield* WorkerProcess.run((node) =>
    Effect.gen(function* () {
      // Written aside and renamed, so that a kill mid-write never leaves a torn file.
      const file = join(statsDirectory, `${process.pid}.json`)
      const stats = setInterval(() => {
        writeFileSync(`${file}.tmp`, JSON.stringify(node.metrics()))
        renameSync(`${file}.tmp`, file)
      }, 100)
      yield* Effect.addFinalizer(() => Effect.sync(() => clearInterval(stats)))
      yield* node.serve(Jobs, {
        run: ({ job, n }) =>
          work.pipe(
            // The effect and its reply are uninterruptible: a cancelled call never leaves half an effect.
            Effect.andThen(
              Effect.uninterruptible(Effect.sync(() => appendFileSync(ledger, `${job} ${process.pid}\n`))),
            ),
            Effect.andThen(work),
            Effect.as({ square: n * n, worker: process.pid }),
          ),
      })
    }),
  ).pipe(Effect.provideService(DedupeStore.DedupeStore, store))
})

WorkerProcess.runMain(Effect.scoped(program))
