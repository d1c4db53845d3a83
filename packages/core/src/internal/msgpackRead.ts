/**
 * A msgpack reader for envelopes: the hot path's decoder. msgpackr is fast at reading, but each `unpack` of a
 * small payload pays a fixed set-up (a `DataView` over the input, attached to it, plus state resets) that costs
 * more than reading a 30-byte envelope; every payload arrives as a fresh view into its batch frame, so none of
 * it is ever reused. This reader keeps its state in module variables and reads multi-byte numbers byte by byte.
 *
 * It reads what envelopes hold (nil, booleans, numbers, strings, bin, arrays, maps with string, number or
 * boolean keys) with the same results as the envelope's msgpackr settings (nil as null, 64-bit integers as
 * numbers, bin as a view of the input, maps as plain objects, `__proto__` keys renamed `__proto_`), and answers
 * `UNSUPPORTED` for the rest (extension types such as timestamps, 0xc1, other map keys), which the caller then
 * hands to msgpackr. Malformed input (truncated, lengths past the end, trailing bytes) throws.
 */

/** Returned for input this reader leaves to msgpackr. */
export const UNSUPPORTED: unique symbol = Symbol.for("@zactor/core/msgpackRead/UNSUPPORTED")

let src: Uint8Array = new Uint8Array(0)
let pos = 0
let end = 0

const scratch = new DataView(new ArrayBuffer(8))
const decoder = new TextDecoder()
const fromCharCode = String.fromCharCode

class Unsupported {}
const unsupported = new Unsupported()

const truncated = (): never => {
  throw new Error("msgpack: unexpected end of input")
}

/** Reads one msgpack value from `bytes`, which must hold exactly one; `UNSUPPORTED` if it cannot. */
export const read = (bytes: Uint8Array): unknown => {
  src = bytes
  pos = 0
  end = bytes.length
  try {
    const value = readValue()
    if (pos !== end) throw new Error(`msgpack: ${end - pos} bytes after the value`)
    return value
  } catch (error) {
    if (error === unsupported) return UNSUPPORTED
    throw error
  } finally {
    src = EMPTY
  }
}

const EMPTY = new Uint8Array(0)

const u8 = (): number => {
  if (pos >= end) truncated()
  return src[pos++]!
}

const u16 = (): number => {
  if (pos + 2 > end) truncated()
  const value = (src[pos]! << 8) | src[pos + 1]!
  pos += 2
  return value
}

const u32 = (): number => {
  if (pos + 4 > end) truncated()
  const value = src[pos]! * 0x1000000 + ((src[pos + 1]! << 16) | (src[pos + 2]! << 8) | src[pos + 3]!)
  pos += 4
  return value
}

const toScratch = (length: number): void => {
  if (pos + length > end) truncated()
  for (let i = 0; i < length; i++) scratch.setUint8(i, src[pos + i]!)
  pos += length
}

const readValue = (): unknown => {
  const token = u8()
  if (token < 0x80) return token
  if (token < 0x90) return readMap(token & 0x0f)
  if (token < 0xa0) return readArray(token & 0x0f)
  if (token < 0xc0) return readString(token & 0x1f)
  if (token >= 0xe0) return token - 0x100
  switch (token) {
    case 0xc0:
      return null
    case 0xc2:
      return false
    case 0xc3:
      return true
    case 0xc4:
      return readBin(u8())
    case 0xc5:
      return readBin(u16())
    case 0xc6:
      return readBin(u32())
    case 0xca:
      toScratch(4)
      return scratch.getFloat32(0)
    case 0xcb:
      toScratch(8)
      return scratch.getFloat64(0)
    case 0xcc:
      return u8()
    case 0xcd:
      return u16()
    case 0xce:
      return u32()
    case 0xcf:
      return u32() * 0x1_0000_0000 + u32()
    case 0xd0:
      return (u8() << 24) >> 24
    case 0xd1:
      return (u16() << 16) >> 16
    case 0xd2:
      return u32() | 0
    case 0xd3:
      return (u32() | 0) * 0x1_0000_0000 + u32()
    case 0xd9:
      return readString(u8())
    case 0xda:
      return readString(u16())
    case 0xdb:
      return readString(u32())
    case 0xdc:
      return readArray(u16())
    case 0xdd:
      return readArray(u32())
    case 0xde:
      return readMap(u16())
    case 0xdf:
      return readMap(u32())
    default:
      // Extension types (0xc7-0xc9, 0xd4-0xd8) and the never-used 0xc1: msgpackr's business.
      throw unsupported
  }
}

const readBin = (length: number): Uint8Array => {
  if (pos + length > end) truncated()
  const start = pos
  pos += length
  return src.subarray(start, pos)
}

/** Recently read short strings (targets, map keys, codes), direct-mapped by length and a few of their bytes. */
const CACHE_SIZE = 1024
const cachedBytes = new Array<Uint8Array | undefined>(CACHE_SIZE)
const cachedStrings = new Array<string>(CACHE_SIZE)
const CACHED_LENGTH = 48

const readString = (length: number): string => {
  if (pos + length > end) truncated()
  const start = pos
  pos += length
  if (length === 0) return ""
  if (length > CACHED_LENGTH) return decoder.decode(src.subarray(start, pos))
  // The same few strings come in every envelope (method paths, keys): compare against the last one seen in
  // this slot instead of decoding again.
  const slot =
    (length * 0x9e3 + src[start]! * 0x3b + src[start + (length >> 1)]! * 0x7 + src[pos - 1]!) & (CACHE_SIZE - 1)
  const known = cachedBytes[slot]
  if (known !== undefined && known.length === length) {
    let i = 0
    while (i < length && known[i] === src[start + i]) i++
    if (i === length) return cachedStrings[slot]!
  }
  let ascii = ""
  for (let i = start; i < pos; i++) {
    const byte = src[i]!
    if (byte >= 0x80) return decoder.decode(src.subarray(start, pos))
    ascii += fromCharCode(byte)
  }
  // A copy (Buffer's slice would be a view, keeping the whole frame alive and changing with it).
  cachedBytes[slot] = Uint8Array.prototype.slice.call(src, start, pos)
  cachedStrings[slot] = ascii
  return ascii
}

const readArray = (length: number): Array<unknown> => {
  // Every element takes at least a byte: a length past that is malformed, not an allocation to attempt.
  if (length > end - pos) truncated()
  const array = new Array<unknown>(length)
  for (let i = 0; i < length; i++) array[i] = readValue()
  return array
}

const readMap = (length: number): Record<string, unknown> => {
  if (length * 2 > end - pos) truncated()
  const object: Record<string, unknown> = {}
  for (let i = 0; i < length; i++) {
    let key = readKey()
    if (key === "__proto__") key = "__proto_"
    object[key] = readValue()
  }
  return object
}

const readKey = (): string => {
  const key = readValue()
  if (typeof key === "string") return key
  if (typeof key === "number" || typeof key === "boolean") return String(key)
  if (key === null) return "null"
  throw unsupported
}
