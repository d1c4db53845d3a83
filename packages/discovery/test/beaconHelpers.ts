// Helpers for beacon tests on one host: every packet goes to the loopback broadcast address 127.255.255.255,
// which stays on this machine, on a port and cluster name unique to the test.

import * as Dgram from "node:dgram"
import { Envelope } from "@zactor/core"
import { Effect } from "effect"
import type { BeaconOptions } from "../src/BeaconOptions.ts"

let nextPort = 40_000 + Math.floor(Math.random() * 20_000)

/** Options for a beacon confined to loopback, on a fresh port and cluster. */
export const loopbackBeacon = (overrides: BeaconOptions = {}): BeaconOptions => ({
  address: "127.255.255.255",
  port: nextPort++,
  cluster: `test-${Math.random().toString(36).slice(2, 8)}`,
  interval: 50,
  expiry: 300,
  ...overrides,
})

/** A socket that sends raw datagrams to a loopback beacon port, closed with the scope. */
export const rawSender = (port: number) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const socket = Dgram.createSocket({ type: "udp4", reuseAddr: true })
      let bound = false
      const send = (packet: Uint8Array) =>
        new Promise<void>((resolve, reject) => {
          const go = () => socket.send(packet, port, "127.255.255.255", (error) => (error ? reject(error) : resolve()))
          if (bound) return go()
          socket.bind(0, "127.0.0.1", () => {
            socket.setBroadcast(true)
            bound = true
            go()
          })
        })
      return { socket, send: (packet: Uint8Array) => Effect.promise(() => send(packet)) }
    }),
    ({ socket }) => Effect.sync(() => socket.close()),
  )

/** A record for hand-made beacons. */
export const record = (nodeId: string, endpoints: ReadonlyArray<string> = ["tcp://127.0.0.1:1"]) => ({
  nodeId,
  endpoints,
  services: ["Greeter"],
  actors: [],
  meta: {},
  protocolVersion: Envelope.PROTOCOL_VERSION,
})
