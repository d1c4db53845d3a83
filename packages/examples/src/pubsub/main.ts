/**
 * One-command run of the pub/sub example (`pnpm --filter @zactor/examples demo:pubsub`): a sensors publisher and
 * three dashboards that find it through the beacon. `all` and `boilers` (key prefix `boiler/`) subscribe from the
 * start; `late` joins 1.5 s later and starts from the last-value snapshot. Then the publisher is killed with
 * SIGKILL and restarted: every dashboard reports it down, then up under a new epoch, and goes on.
 */
import { randomBytes } from "node:crypto"
import { setTimeout as sleep } from "node:timers/promises"
import { roles } from "../shared/roles.ts"

interface Summary {
  readonly name: string
  readonly live: number
  readonly snapshot: number
  readonly synced: boolean
  readonly firstSnapshot: number
  readonly keys: ReadonlyArray<string>
  readonly epochs: number
  readonly gaps: Readonly<Record<string, number>>
  readonly downs: ReadonlyArray<string>
  readonly ups: number
}

const run = roles(import.meta, "pubsub", 60_000)
const env = { ZACTOR_BEACON_CLUSTER: `sensors-${randomBytes(4).toString("hex")}` }

run.main(async () => {
  let sensors = run.start("sensors", [], env)
  await run.messageOf(sensors, "ready")
  const dashboard = (name: string, args: ReadonlyArray<string>) => {
    const child = run.start("dashboard", [name, ...args], env)
    return {
      child,
      ready: run.messageOf(child, "ready"),
      summary: run.messageOf<{ type: string; summary: Summary }>(child, "summary"),
    }
  }
  const all = dashboard("all", [])
  const boilers = dashboard("boilers", ["--prefix", "boiler/"])
  await Promise.all([all.ready, boilers.ready])
  await sleep(1_500)
  const late = dashboard("late", ["--snapshot"])
  await late.ready
  await sleep(1_500)

  console.log("pubsub: SIGKILL the publisher")
  sensors.kill("SIGKILL")
  await run.exitOf(sensors)
  await sleep(2_000) // long enough for subscribers to call it silent (3 heartbeats of 500 ms)
  console.log("pubsub: restarting the publisher")
  sensors = run.start("sensors", [], env)
  await run.messageOf(sensors, "ready")
  await sleep(2_000)

  for (const { child } of [all, boilers, late]) child.kill("SIGTERM")
  const [a, b, l] = (await Promise.all([all.summary, boilers.summary, late.summary])).map((m) => m.summary)
  sensors.kill("SIGTERM")
  await run.exitOf(sensors)

  const checks: Array<[string, boolean]> = [
    [
      "every dashboard saw the publisher go down and come back under a new epoch",
      [a, b, l].every((s) => s!.downs.length >= 1 && s!.ups >= 2 && s!.epochs === 2),
    ],
    ["boilers saw only boiler/ sensors", b!.keys.length === 2 && b!.keys.every((key) => key.startsWith("boiler/"))],
    ["late started from a snapshot of all 10 sensors", l!.synced && l!.firstSnapshot === 10],
    ["all saw all 10 sensors live", a!.keys.length === 10 && a!.live > 0],
  ]
  for (const [what, ok] of checks) console.log(`pubsub: ${ok ? "✓" : "✗"} ${what}`)
  return checks.every(([, ok]) => ok) ? 0 : 1
})
