/**
 * The msgpack settings of everything zactor puts on the wire (envelopes, topic frames) or keeps in their wire form
 * (the dedupe window's outcomes): plain msgpack for other languages. No records extension, `undefined` travels as
 * nil, and 64-bit integers (which other encoders use for values past 2^32) decode as numbers rather than BigInt.
 */
import { Packr } from "msgpackr"
import * as MsgpackRead from "./msgpackRead.ts"

/** The one packer of wire values. */
export const wirePackr = new Packr({
  useRecords: false,
  encodeUndefinedAsNil: true,
  moreTypes: false,
  int64AsType: "number",
})

/**
 * Reads one wire value from a peer: the bounded fast reader, and msgpackr for the extension values it leaves
 * (only once it has checked the whole input). Throws on malformed input.
 */
export const unpackWire = (bytes: Uint8Array): unknown => {
  const value = MsgpackRead.read(bytes)
  return value === MsgpackRead.UNSUPPORTED ? wirePackr.unpack(bytes) : value
}
