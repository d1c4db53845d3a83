// Topics whose events are protobuf messages (protobuf-es v2), declared with `Topic.fromProtobuf`. The message
// type is built from a file descriptor here, as protoc-gen-es output would embed it, so the unit run needs no
// code generation.

import * as protobuf from "@bufbuild/protobuf"
import type { GenMessage } from "@bufbuild/protobuf/codegenv2"
import {
  FieldDescriptorProto_Label,
  FieldDescriptorProto_Type,
  FileDescriptorProtoSchema,
} from "@bufbuild/protobuf/wkt"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Result } from "effect"
import * as Topic from "../src/Topic.ts"
import { collect, eventsOf, gapsOf, publisherAndSubscriber, waitFor } from "./topicFixtures.ts"

/** `message Reading { string sensor = 1; double value = 2; }`, the shape protoc-gen-es would generate. */
type Reading = protobuf.Message<"zactor.test.topics.Reading"> & { sensor: string; value: number }

const readingsFile = protobuf.create(FileDescriptorProtoSchema, {
  name: "zactor/test/topics/readings.proto",
  package: "zactor.test.topics",
  syntax: "proto3",
  messageType: [
    {
      name: "Reading",
      field: [
        {
          name: "sensor",
          number: 1,
          type: FieldDescriptorProto_Type.STRING,
          label: FieldDescriptorProto_Label.OPTIONAL,
        },
        {
          name: "value",
          number: 2,
          type: FieldDescriptorProto_Type.DOUBLE,
          label: FieldDescriptorProto_Label.OPTIONAL,
        },
      ],
    },
  ],
})

/** The message schema; generated code types it the same way. */
const ReadingSchema = protobuf
  .createFileRegistry(readingsFile, () => undefined)
  .getMessage("zactor.test.topics.Reading") as unknown as GenMessage<Reading>

/** Readings keyed by sensor, with a last-value cache. */
const Readings = Topic.fromProtobuf("readings", {
  schema: ReadingSchema,
  protobuf,
  key: (reading) => reading.sensor,
  lastValueCache: true,
})

const reading = (sensor: string, value: number) => protobuf.create(ReadingSchema, { sensor, value })

const up = (messages: ReadonlyArray<Topic.Message<unknown>>) => messages.some((m) => m._tag === "PublisherUp")

describe("protobuf topics", () => {
  it("the codec is the message's binary encoding, and refuses what is not a message of the schema", () => {
    const encoded = Readings.codec.encode(reading("boiler", 71.5))
    assert.deepStrictEqual(encoded, Result.succeed(protobuf.toBinary(ReadingSchema, reading("boiler", 71.5))))
    const plain = Readings.codec.encode({ sensor: "boiler", value: 1 } as Reading)
    assert.isTrue(Result.isFailure(plain))
    // msgpack hands bytes over as a Buffer: any Uint8Array decodes.
    const decoded = Readings.codec.decode(Buffer.from(protobuf.toBinary(ReadingSchema, reading("pump/1", 2))))
    assert.isTrue(Result.isSuccess(decoded) && decoded.success.sensor === "pump/1" && decoded.success.value === 2)
  })

  it.live("publishes and subscribes protobuf messages; a late joiner's snapshot decodes them too", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { publisher, sub } = yield* publisherAndSubscriber(Readings)
        const refused = publisher.offer({ sensor: "boiler", value: 1 } as Reading)
        assert.strictEqual(refused?.reason, "InvalidEvent")
        for (let i = 0; i < 10; i++) assert.isUndefined(publisher.offer(reading(`s${i % 5}`, i)))
        const messages = yield* collect(sub.topics.subscribe(Readings))
        yield* waitFor(() => messages.some((m) => m._tag === "Synced"), "synced")
        for (let i = 10; i < 20; i++) publisher.offer(reading(`s${i % 5}`, i))
        yield* waitFor(() => eventsOf(messages).length === 15, "5 snapshot entries and 10 live events")
        const events = eventsOf(messages)
        const snapshot = events.filter((e) => e.fromSnapshot)
        assert.deepStrictEqual(
          snapshot.map((e) => [e.key, e.value.sensor, e.value.value]).sort(),
          [5, 6, 7, 8, 9].map((i) => [`s${i % 5}`, `s${i % 5}`, i]).sort(),
        )
        const live = events.filter((e) => !e.fromSnapshot)
        assert.deepStrictEqual(
          live.map((e) => [e.seq, e.key, e.value.sensor, e.value.value]),
          Array.from({ length: 10 }, (_, k) => [11 + k, `s${k % 5}`, `s${k % 5}`, 10 + k]),
        )
        // Subscribers get real protobuf messages, usable with the library's functions.
        assert.isTrue(events.every((e) => protobuf.isMessage(e.value, ReadingSchema)))
        assert.deepStrictEqual(gapsOf(messages), [])
      }),
    ),
  )

  it.live("key filters select protobuf events by their key, and skipped ones are not gaps", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { publisher, sub } = yield* publisherAndSubscriber(Readings)
        const exact = yield* collect(sub.topics.subscribe(Readings, { keys: ["boiler"], snapshot: false }))
        const prefix = yield* collect(sub.topics.subscribe(Readings, { keyPrefix: "pump/", snapshot: false }))
        yield* waitFor(() => up(exact) && up(prefix), "publisher up")
        const sensors = ["boiler", "pump/1", "pump/2", "fan"]
        for (let i = 0; i < 400; i++) publisher.offer(reading(sensors[i % 4]!, i))
        publisher.offer(reading("fan", -1))
        // The last event matches neither: the heartbeat that accounts for it must not turn it into a gap.
        yield* waitFor(() => eventsOf(exact).length === 100 && eventsOf(prefix).length === 200, "filtered events")
        yield* Effect.sleep(250)
        assert.deepStrictEqual(
          eventsOf(exact).map((e) => [e.seq, e.value.value]),
          Array.from({ length: 100 }, (_, k) => [4 * k + 1, 4 * k]),
        )
        assert.isTrue(eventsOf(prefix).every((e) => e.key === e.value.sensor && e.value.sensor.startsWith("pump/")))
        assert.deepStrictEqual([...gapsOf(exact), ...gapsOf(prefix)], [])
        assert.strictEqual(sub.topics.metrics().invalid, 0)
      }),
    ),
  )

  it.live("bytes that are not a valid message are reported as an Invalid gap, and the valid ones delivered", () =>
    Effect.scoped(
      Effect.gen(function* () {
        // A publisher of the same topic name that sends whatever bytes it is given (another version, a bug).
        const Raw = Topic.fromCodec<Uint8Array | string>("readings", {
          codec: { encode: Result.succeed, decode: (wire) => Result.succeed(wire as Uint8Array) },
        })
        const { publisher: raw, sub } = yield* publisherAndSubscriber(Raw)
        const messages = yield* collect(sub.topics.subscribe(Readings, { snapshot: false }))
        yield* waitFor(() => up(messages), "publisher up")
        const valid = (i: number) => protobuf.toBinary(ReadingSchema, reading("boiler", i))
        raw.offer(valid(1))
        raw.offer(Uint8Array.of(0x0a, 0xff)) // field 1 claims 255 bytes: truncated
        raw.offer(Uint8Array.of(0x0a, 0x02, 0xc3, 0x28)) // field 1 is not UTF-8
        raw.offer(Uint8Array.of(0x0f)) // wire type 7 does not exist
        raw.offer("not bytes at all")
        raw.offer(valid(6))
        yield* waitFor(() => eventsOf(messages).length === 2, "the valid events")
        yield* waitFor(() => sub.topics.metrics().invalid === 4, "4 invalid")
        assert.deepStrictEqual(
          eventsOf(messages).map((e) => [e.seq, e.value.value]),
          [
            [1, 1],
            [6, 6],
          ],
        )
        assert.deepStrictEqual(
          gapsOf(messages).map((g) => [g.reason, g.missed]),
          [["Invalid", 4]],
        )
        assert.strictEqual(sub.topics.metrics().eventsReceived, 6)
      }),
    ),
  )
})
