/**
 * Z85 (ZeroMQ RFC 32): the printable encoding of CURVE keys. Every 4 bytes, read as a big-endian u32, become
 * 5 characters in base 85, most significant digit first. Only inputs whose length is a multiple of 4 (bytes)
 * or 5 (characters) are valid; RFC 32 defines no padding.
 *
 * Bad input never throws: encode and decode return a `Result` whose failure is a sentence saying what is
 * wrong, so callers can put it in their own error type.
 *
 * @internal
 */
import { Result } from "effect"

const ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"

/** Character code -> digit value, or -1 for characters outside the alphabet. */
const DIGITS: Int8Array = (() => {
  const table = new Int8Array(128).fill(-1)
  for (let i = 0; i < ALPHABET.length; i++) table[ALPHABET.charCodeAt(i)] = i
  return table
})()

/** Bytes of a CURVE key. */
export const KEY_BYTES = 32

/** Characters of a Z85-encoded CURVE key. */
export const KEY_CHARS = 40

/** Encodes bytes (length a multiple of 4) as Z85. */
export const encode = (data: Uint8Array): Result.Result<string, string> => {
  if (data.length % 4 !== 0) {
    return Result.fail(`Z85 encodes whole 4-byte groups; got ${data.length} bytes`)
  }
  let text = ""
  for (let offset = 0; offset < data.length; offset += 4) {
    // `>>> 0` keeps the group unsigned: a leading byte >= 0x80 would otherwise make it negative.
    let value = ((data[offset]! << 24) | (data[offset + 1]! << 16) | (data[offset + 2]! << 8) | data[offset + 3]!) >>> 0
    let group = ""
    for (let i = 0; i < 5; i++) {
      group = ALPHABET[value % 85]! + group
      value = Math.floor(value / 85)
    }
    text += group
  }
  return Result.succeed(text)
}

/** Decodes Z85 text (length a multiple of 5) to bytes. */
export const decode = (text: string): Result.Result<Uint8Array, string> => {
  if (text.length % 5 !== 0) {
    return Result.fail(`Z85 decodes whole 5-character groups; got ${text.length} characters`)
  }
  const data = new Uint8Array((text.length / 5) * 4)
  for (let offset = 0; offset < text.length; offset += 5) {
    let value = 0
    for (let i = offset; i < offset + 5; i++) {
      const code = text.charCodeAt(i)
      const digit = code < 128 ? DIGITS[code]! : -1
      if (digit < 0) {
        return Result.fail(`character ${JSON.stringify(text[i])} at position ${i} is not in the Z85 alphabet`)
      }
      value = value * 85 + digit
    }
    // Five base-85 digits reach 85^5 - 1 > 2^32 - 1: groups such as "#####" name no 4-byte value.
    if (value > 0xffffffff) {
      return Result.fail(`group "${text.slice(offset, offset + 5)}" at position ${offset} overflows 32 bits`)
    }
    const at = (offset / 5) * 4
    data[at] = value >>> 24
    data[at + 1] = (value >>> 16) & 0xff
    data[at + 2] = (value >>> 8) & 0xff
    data[at + 3] = value & 0xff
  }
  return Result.succeed(data)
}

/** Decodes a Z85 CURVE key: exactly 40 characters to 32 bytes. */
export const decodeKey = (text: string): Result.Result<Uint8Array, string> =>
  text.length === KEY_CHARS ? decode(text) : Result.fail(`a Z85 key has ${KEY_CHARS} characters; got ${text.length}`)

/** Encodes a raw 32-byte CURVE key as Z85. */
export const encodeKey = (key: Uint8Array): Result.Result<string, string> =>
  key.length === KEY_BYTES ? encode(key) : Result.fail(`a CURVE key has ${KEY_BYTES} bytes; got ${key.length}`)
