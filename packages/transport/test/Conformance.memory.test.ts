/**
 * Runs the transport conformance suite over `MemoryTransport`, once with tcp-style endpoints (fake ports) and once
 * with inproc names. Every case gets a fresh `MemoryNetwork`, so cases never see each other's endpoints.
 */
import { Effect } from "effect"
import * as MemoryNetwork from "../src/MemoryNetwork.ts"
import * as MemoryTransport from "../src/MemoryTransport.ts"
import { transportConformance } from "../src/testing.ts"

let names = 0

const memory = (endpoint: () => string) => ({
  make: MemoryTransport.make,
  endpoint,
  supportsCurve: true,
  supportsPubSub: true,
  supportsReconnect: true,
  around: <A, E, R>(test: Effect.Effect<A, E, R>) =>
    Effect.flatMap(MemoryNetwork.make(), (network) => Effect.provideService(test, MemoryNetwork.Current, network)),
})

transportConformance(
  "memory (tcp)",
  memory(() => "tcp://127.0.0.1:*"),
)
transportConformance(
  "memory (inproc)",
  memory(() => `inproc://conformance-${++names}`),
)
