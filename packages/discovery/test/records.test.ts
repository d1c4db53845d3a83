import { assert, describe, it } from "@effect/vitest"
import { Curve } from "@zactor/transport"
import * as BeaconPacket from "../src/internal/beaconPacket.ts"
import { decodeValue, encodeValue } from "../src/internal/etcdValue.ts"
import { decodeRecord, reachableFrom, withHost } from "../src/internal/records.ts"
import { record } from "./beaconHelpers.ts"

describe("records from the network", () => {
  it("wildcard endpoints take the sender's address; host-local ones are dropped for other hosts", () => {
    const endpoints = [
      "tcp://0.0.0.0:5000",
      "tcp://*:5001",
      "tcp://127.0.0.1:5002",
      "ipc:///tmp/n",
      "tcp://10.1.2.3:5003",
    ]
    const rewritten = withHost(endpoints, "10.9.9.9")
    assert.deepStrictEqual(rewritten, [
      "tcp://10.9.9.9:5000",
      "tcp://10.9.9.9:5001",
      "tcp://127.0.0.1:5002",
      "ipc:///tmp/n",
      "tcp://10.1.2.3:5003",
    ])
    assert.deepStrictEqual(reachableFrom(rewritten, false), [
      "tcp://10.9.9.9:5000",
      "tcp://10.9.9.9:5001",
      "tcp://10.1.2.3:5003",
    ])
    assert.deepStrictEqual(reachableFrom(rewritten, true), rewritten)
  })

  it("fields of the wrong type or beyond the limits make the whole record invalid", () => {
    assert.isDefined(decodeRecord(record("ok")))
    assert.isUndefined(decodeRecord({ ...record("x"), nodeId: "" }))
    assert.isUndefined(decodeRecord({ ...record("x"), nodeId: "n".repeat(129) }))
    assert.isUndefined(decodeRecord({ ...record("x"), endpoints: "tcp://a:1" }))
    assert.isUndefined(decodeRecord({ ...record("x"), services: Array.from({ length: 5000 }, () => "s") }))
    assert.isUndefined(decodeRecord({ ...record("x"), meta: { k: 1 } }))
    assert.isUndefined(decodeRecord({ ...record("x"), protocolVersion: 1.5 }))
    assert.isUndefined(decodeRecord({ ...record("x"), publicKey: "short" }))
    assert.isUndefined(decodeRecord({ ...record("x"), publicKey: "|".repeat(40) }))
  })

  it("a node's CURVE public key travels in beacons and etcd values; records without one stay as they were", () => {
    const { publicKey } = Curve.generateKeyPair()
    const keyed = { ...record("keyed"), publicKey }
    const beacon = { cluster: "c", kind: "alive", incarnation: 1, seq: 1, record: keyed } as const
    const decoded = BeaconPacket.decode(BeaconPacket.encode(beacon, "secret"), "c", "secret", 1400)
    assert.isFalse(BeaconPacket.isRejection(decoded))
    assert.strictEqual((decoded as BeaconPacket.Beacon).record.publicKey, publicKey)
    assert.strictEqual(decodeValue("keyed", Buffer.from(encodeValue(keyed)))?.record.publicKey, publicKey)
    const plain = decodeValue("plain", Buffer.from(encodeValue(record("plain"))))?.record
    assert.isDefined(plain)
    assert.isFalse("publicKey" in plain!)
  })
})
