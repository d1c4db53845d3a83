// The topic of the pub/sub example: temperature readings keyed by sensor, with a last-value cache so that a
// subscriber joining late starts from every sensor's current reading.
import { Topic } from "@zactor/core"
import { Schema } from "effect"

/** One reading of one sensor. */
export const Readings = Topic.make("readings", {
  schema: Schema.Struct({ sensor: Schema.String, celsius: Schema.Number, at: Schema.Number }),
  key: (reading) => reading.sensor,
  lastValueCache: true,
})
