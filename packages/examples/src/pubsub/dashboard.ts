/**
 * A subscriber (Promise API): `dashboard.ts <name> [--snapshot] [--prefix <key prefix>]`. Subscribes to
 * `readings` through the beacon and counts what its stream says: live events, snapshot entries, gaps by reason,
 * publishers going down and coming back under a new epoch. On SIGTERM it stops, prints its tally and sends it to
 * its parent.
 */
import { start } from "@zactor/core/promise"
import { Discovery } from "@zactor/discovery"
import { Readings } from "./topics.ts"

const [name = "dashboard", ...flags] = process.argv.slice(2)
const snapshot = flags.includes("--snapshot")
const prefix = flags.includes("--prefix") ? flags[flags.indexOf("--prefix") + 1] : undefined

const node = await start({ id: `${name}-${process.pid}`, discovery: Discovery.layerBeaconFromEnv() })
const stop = new AbortController()
process.once("SIGTERM", () => stop.abort())

const tally = {
  name,
  live: 0,
  snapshot: 0,
  synced: false,
  /** Entries of the first snapshot (a publisher coming back sends another). */
  firstSnapshot: 0,
  keys: new Set<string>(),
  epochs: new Set<number>(),
  gaps: {} as Record<string, number>,
  downs: [] as Array<string>,
  ups: 0,
}
process.send?.({ type: "ready" })
try {
  for await (const message of node.topics.subscribe(Readings, {
    snapshot,
    keyPrefix: prefix,
    signal: stop.signal,
  })) {
    switch (message._tag) {
      case "Event":
        if (message.fromSnapshot) tally.snapshot++
        else tally.live++
        tally.keys.add(message.value.sensor)
        tally.epochs.add(message.epoch)
        break
      case "Gap":
        tally.gaps[message.reason] = (tally.gaps[message.reason] ?? 0) + message.missed
        console.log(`${name}: gap of ${message.missed} (${message.reason})`)
        break
      case "PublisherDown":
        tally.downs.push(message.reason)
        console.log(`${name}: publisher ${message.publisher} down (${message.reason})`)
        break
      case "PublisherUp":
        tally.ups++
        console.log(`${name}: publisher ${message.publisher} up (epoch ${message.epoch})`)
        break
      case "Synced":
        if (!tally.synced) tally.firstSnapshot = tally.snapshot
        tally.synced = true
        console.log(`${name}: snapshot of ${tally.snapshot} sensors, then live from seq ${message.seq + 1}`)
        break
    }
  }
} catch (error) {
  if (!stop.signal.aborted) throw error
}
const summary = { ...tally, keys: [...tally.keys].sort(), epochs: tally.epochs.size }
console.log(
  `${name}: ${summary.live} live events, ${summary.snapshot} from the snapshot, ${summary.epochs} publisher epochs, gaps ${JSON.stringify(summary.gaps)}`,
)
await new Promise<void>((done) => (process.send ? process.send({ type: "summary", summary }, () => done()) : done()))
await node.close()
process.exit(0)
