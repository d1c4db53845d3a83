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
 * hands to msgpackr. Malformed input (truncated, lengths past the end, trailing bytes, arrays and maps nested
 * deeper than `MAX_DEPTH`) throws.
 *
 * The depth bound keeps damaged or hostile input cheap to refuse: without it a payload of a few kilobytes of
 * nested one-element arrays ran the reader into a stack overflow, which cost milliseconds per payload. Extension
 * values are skipped over, not handed to msgpackr at once, so the whole input is checked before msgpackr (which
 * has no bound) reads it.
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

/** Deepest nesting of arrays and maps read; deeper input is malformed. @since 0.1.0 */
export const MAX_DEPTH = 512
let depth = 0
/** An extension value or a map key this reader leaves to msgpackr was met (it reads on, checking the rest). */
let sawUnsupported = false

const truncated = (): never => {
  throw new Error("msgpack: unexpected end of input")
}

/** Reads one msgpack value from `bytes`, which must hold exactly one; `UNSUPPORTED` if it cannot. */
export const read = (bytes: Uint8Array): unknown => {
  src = bytes
  pos = 0
  end = bytes.length
  depth = 0
  sawUnsupported = false
  try {
    const value = readValue()
    if (pos !== end) throw new Error(`msgpack: ${end - pos} bytes after the value`)
    return sawUnsupported ? UNSUPPORTED : value
  } catch (error) {
    if (error === unsupported) return UNSUPPORTED
    throw error
  } finally {
    src = EMPTY
  }
}

const EMPTY = new Uint8Array(0)

/**
 * The third element of an input that cannot be read whole (cut short, nested too deep, damaged further on) but
 * begins as a REQUEST: an array whose first two elements are version 1 and kind 2. The caller decides whether
 * it is an id, so the node can answer the call at once. `undefined` when the input does not begin so.
 */
export const requestHeadId = (bytes: Uint8Array): unknown => {
  src = bytes
  pos = 0
  end = bytes.length
  depth = 0
  try {
    const token = u8()
    const length = token >= 0x90 && token <= 0x9f ? token & 0x0f : token === 0xdc ? u16() : token === 0xdd ? u32() : 0
    if (length < 3 || u8() !== 0x01 || u8() !== 0x02) return undefined
    return readValue()
  } catch {
    return undefined
  } finally {
    src = EMPTY
  }
}

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
    case 0xc7:
      return skipExtension(u8())
    case 0xc8:
      return skipExtension(u16())
    case 0xc9:
      return skipExtension(u32())
    case 0xd4:
      return skipExtension(1)
    case 0xd5:
      return skipExtension(2)
    case 0xd6:
      return skipExtension(4)
    case 0xd7:
      return skipExtension(8)
    case 0xd8:
      return skipExtension(16)
    default:
      // The never-used 0xc1: msgpackr's to refuse (it does, where it meets it, without reading further).
      throw unsupported
  }
}

/** Steps over an extension value (a type byte, then `length` bytes): msgpackr reads it once all is checked. */
const skipExtension = (length: number): undefined => {
  if (pos + 1 + length > end) truncated()
  pos += 1 + length
  sawUnsupported = true
  return undefined
}

const tooDeep = (): never => {
  throw new Error(`msgpack: arrays or maps nested deeper than ${MAX_DEPTH}`)
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
  if (++depth > MAX_DEPTH) tooDeep()
  const array = new Array<unknown>(length)
  for (let i = 0; i < length; i++) array[i] = readValue()
  depth--
  return array
}

const readMap = (length: number): Record<string, unknown> => {
  if (length * 2 > end - pos) truncated()
  if (++depth > MAX_DEPTH) tooDeep()
  const object: Record<string, unknown> = {}
  for (let i = 0; i < length; i++) {
    let key = readKey()
    if (key === "__proto__") key = "__proto_"
    object[key] = readValue()
  }
  depth--
  return object
}

const readKey = (): string => {
  const key = readValue()
  if (typeof key === "string") return key
  if (typeof key === "number" || typeof key === "boolean") return String(key)
  if (key === null) return "null"
  // Another key type (an array, a map, an extension): msgpackr's business, once the rest is checked.
  sawUnsupported = true
  return ""
}
