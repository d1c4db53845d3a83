/**
 * The publisher (Effect API): ten sensors, one reading each every 10 ms, on the `readings` topic. Found by
 * subscribers through the beacon; runs until SIGTERM (or SIGKILL: the demo kills and restarts it).
 */
import { Node } from "@zactor/core"
import { Discovery } from "@zactor/discovery"
import { Effect, Layer } from "effect"
import { Readings } from "./topics.ts"

const sensors = ["boiler/1", "boiler/2", "hall/1", "hall/2", "lab/1", "lab/2", "lab/3", "roof/1", "roof/2", "yard/1"]

const program = Effect.gen(function* () {
  const node = yield* Node.Node
  const readings = yield* node.topics.publisher(Readings)
  process.send?.({ type: "ready", epoch: readings.epoch })
  console.log(`sensors: publishing as ${node.id} (epoch ${readings.epoch})`)
  let tick = 0
  for (;;) {
    const sensor = sensors[tick++ % sensors.length]!
    readings.offer({ sensor, celsius: 20 + 5 * Math.sin(tick / 50), at: Date.now() })
    if (tick % sensors.length === 0) yield* Effect.sleep("10 millis")
  }
})

// A stable id: a restarted process is the same publisher under a new epoch.
const NodeLive = Node.layerZmq({ id: "sensors" }).pipe(Layer.provide(Discovery.layerBeaconFromEnv()))
Effect.runPromise(program.pipe(Effect.scoped, Effect.provide(NodeLive))).catch((error) => {
  console.error("sensors failed:", error)
  process.exit(1)
})
