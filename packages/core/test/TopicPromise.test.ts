import { describe, expect, it } from "vitest"
import { start } from "../src/promise.ts"
import * as Topic from "../src/Topic.ts"
import { Prices } from "./topicFixtures.ts"

describe("topics through the Promise facade, over ZeroMQ", () => {
  it("publishes and subscribes with async code: snapshot, live events, typed errors, early break", async () => {
    await using pub = await start({ id: "promise-pub" })
    await using sub = await start({ id: "promise-sub" })
    const publisher = await pub.topics.publisher(Prices)
    publisher.publish({ symbol: "EUR/USD", price: 1.1 })
    publisher.publish({ symbol: "GBP/USD", price: 1.3 })
    expect(() => publisher.publish({ symbol: "EUR/USD", price: "x" as unknown as number })).toThrow(Topic.TopicError)
    await sub.connect(pub.endpoints()[0]!)
    const seen: Array<string> = []
    const signal = AbortSignal.timeout(10_000)
    for await (const message of sub.topics.subscribe(Prices, { signal })) {
      if (message._tag === "Event")
        seen.push(`${message.fromSnapshot ? "snapshot" : "live"} ${message.key} ${message.seq}`)
      else seen.push(message._tag)
      // Once synchronised, publish live events; stop after the second live one.
      if (message._tag === "Synced") {
        publisher.publish({ symbol: "EUR/USD", price: 1.2 })
        publisher.publish({ symbol: "USD/JPY", price: 150 })
      }
      if (seen.filter((s) => s.startsWith("live")).length === 2) break
    }
    expect(seen).toEqual([
      "PublisherUp",
      "snapshot EUR/USD 1",
      "snapshot GBP/USD 2",
      "Synced",
      "live EUR/USD 3",
      "live USD/JPY 4",
    ])
    expect(pub.topics.metrics().snapshotsServed).toBe(1)
    await publisher.close()
    expect(() => publisher.publish({ symbol: "EUR/USD", price: 1 })).toThrow(/closed/)
    // The subscription ended with the loop.
    expect(sub.topics.metrics().subscriptions).toBe(0)
  })
})
