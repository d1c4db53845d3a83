/**
 * CURVE keys and the key-binding proof. This module owns: key pairs (generation, deriving a public key from a
 * secret key), key files (a key pair as JSON, an allow-list of client public keys), and the proof that binds a
 * ROUTER routing id to a client's CURVE public key. It opens no sockets: the ZAP admission check lives in
 * `ZapHandler.ts`, and setting the CURVE socket options is the transport's job.
 *
 * ## Why a key-binding proof
 *
 * CURVE encrypts a connection and ZAP (`ZapHandler.ts`) decides whether a client key may connect at all. But
 * zeromq.js exposes no per-message authenticated identity (libzmq's `User-Id` message property is not
 * surfaced), and the ZAP request does not carry the client's routing id, so a ROUTER cannot tell which approved
 * key sent a message. The framework binds the two itself: every batch a CURVE client sends carries a 64-byte
 * proof section (see `BatchFrame.ts`) that the server verifies against the routing id the message arrived on.
 *
 * ## Proof, version 1
 *
 * A client holding the key pair (`clientPub`, `clientSecret`), connected to a server whose public key is
 * `serverPub`, with DEALER routing id `R` (1-255 bytes, chosen by the client: see `makeRoutingId`), sends:
 *
 * ```
 * section = clientPub (32 raw bytes) || mac (32 bytes)
 * shared  = X25519(clientSecret, serverPub)              (32 bytes; the server computes X25519(serverSecret, clientPub))
 * mac     = HMAC-SHA256(key = shared, data = "zactor/curve-bind/1" || R || serverPub)
 * ```
 *
 * The context string is ASCII without a terminator; `R` is variable-length and `serverPub` fixed at 32 raw bytes,
 * so the data parses unambiguously. The server accepts the section for routing id `R` when the MAC matches
 * (compared with `crypto.timingSafeEqual`), and then treats `clientPub` as the authenticated key of `R`. Only a
 * holder of `clientSecret` (or of the server's secret) can compute the MAC; it names the routing id, so it cannot
 * be replayed on another connection, and it names the server key, so it cannot be replayed to another server.
 * An X25519 result of all zeros (a low-order `clientPub`) is rejected. The proof does not check admission: the
 * caller must still check that the proven key is in its allow-list, as ZAP did for the connection.
 *
 * Verification costs one X25519 and one HMAC. The verifier caches, per routing id, the last accepted section and
 * its key, so a repeated identical section (the client sends the same one in every batch) costs one 64-byte
 * comparison. The cache is bounded (default 65,536 routing ids, oldest evicted first); failures are not cached.
 *
 * @since 0.1.0
 */
import * as crypto from "node:crypto"
import * as fs from "node:fs/promises"
import * as nodePath from "node:path"
import { Data, Effect, Result } from "effect"
import { curveKeyPair } from "zeromq"
import { PROOF_BYTES } from "./BatchFrame.ts"
import * as Z85 from "./internal/z85.ts"

// ---------------------------------------------------------------------------------------------------------------
// Models
// ---------------------------------------------------------------------------------------------------------------

/**
 * A CURVE key pair, both keys Z85-encoded (40 characters each).
 *
 * @since 0.1.0
 */
export interface KeyPair {
  readonly publicKey: string
  readonly secretKey: string
}

/**
 * What a client needs to build its key-binding proof.
 *
 * @since 0.1.0
 */
export interface ProofOptions {
  /** The client's Z85 public key. */
  readonly clientPublicKey: string
  /** The client's Z85 secret key. */
  readonly clientSecretKey: string
  /** The Z85 public key of the server the proof is for. */
  readonly serverPublicKey: string
  /** The DEALER routing id (1-255 bytes); a string stands for its UTF-8 bytes, as zeromq.js sends it. */
  readonly routingId: Uint8Array | string
}

/**
 * Checks key-binding proofs on the server side.
 *
 * @since 0.1.0
 */
export interface ProofVerifier {
  /**
   * Returns the Z85 client public key proven by `section` for `routingId`, or `undefined` if the section is not
   * a valid proof for it (wrong length, wrong MAC, low-order key). Never throws.
   */
  readonly verify: (routingId: Uint8Array, section: Uint8Array) => string | undefined
  /** Drops the cached proof of a routing id, e.g. when the connection is known to be gone. */
  readonly forget: (routingId: Uint8Array) => void
  /** Counters, for metrics and tests. */
  readonly stats: () => ProofVerifierStats
}

/**
 * Counters of a `ProofVerifier`.
 *
 * @since 0.1.0
 */
export interface ProofVerifierStats {
  /** Routing ids whose proof is cached. */
  readonly cached: number
  /** Verifications answered from the cache (one comparison). */
  readonly cacheHits: number
  /** Verifications that computed an X25519 and an HMAC. */
  readonly derivations: number
}

/**
 * Options of `makeProofVerifier`.
 *
 * @since 0.1.0
 */
export interface ProofVerifierOptions {
  /** Most routing ids whose proof is cached; the oldest entry is evicted beyond it. Default 65,536. */
  readonly maxCachedRoutingIds?: number | undefined
}

// ---------------------------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------------------------

/**
 * Why a key operation failed.
 * - `NotFound`: the key file does not exist.
 * - `Invalid`: a key or key file is malformed, or a public key does not match its secret key.
 * - `Io`: the file could not be read or written (permissions, not a file, disk full).
 *
 * @since 0.1.0
 */
export type CurveKeyErrorReason = "NotFound" | "Invalid" | "Io"

/**
 * A failed key operation, with a closed `reason`; the file system error stays in `cause`.
 *
 * @since 0.1.0
 */
export class CurveKeyError extends Data.TaggedError("CurveKeyError")<{
  readonly reason: CurveKeyErrorReason
  readonly message: string
  readonly path?: string | undefined
  readonly cause?: unknown
}> {
  /** Guard that works across duplicated installs, where `instanceof` would not. */
  static is(u: unknown): u is CurveKeyError {
    return typeof u === "object" && u !== null && (u as { _tag?: unknown })._tag === "CurveKeyError"
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------------------------------

/** Node reads a raw X25519 private key only from PKCS#8 (its JWK import also demands `x`, which we derive). */
const PKCS8_X25519_PREFIX = Buffer.from("302e020100300506032b656e04220420", "hex")

const privateKeyObject = (rawSecret: Uint8Array): crypto.KeyObject =>
  crypto.createPrivateKey({ key: Buffer.concat([PKCS8_X25519_PREFIX, rawSecret]), format: "der", type: "pkcs8" })

const publicKeyObject = (rawPublic: Uint8Array): crypto.KeyObject =>
  crypto.createPublicKey({
    key: { kty: "OKP", crv: "X25519", x: Buffer.from(rawPublic).toString("base64url") },
    format: "jwk",
  })

const rawPublicKeyOf = (rawSecret: Uint8Array): Uint8Array => {
  const jwk = crypto.createPublicKey(privateKeyObject(rawSecret)).export({ format: "jwk" })
  return Buffer.from(jwk.x ?? "", "base64url")
}

const invalid = (message: string, path?: string): CurveKeyError =>
  new CurveKeyError({ reason: "Invalid", message, path })

/** Decodes a Z85 key or throws `CurveKeyError` (for the synchronous constructors, whose inputs are validated). */
const decodeKeyOrThrow = (name: string, key: string): Uint8Array => {
  const decoded = Z85.decodeKey(key)
  if (Result.isFailure(decoded)) throw invalid(`${name} is not a Z85 CURVE key: ${decoded.failure}`)
  return decoded.success
}

/**
 * Generates a random CURVE key pair (libzmq's `zmq_curve_keypair` through zeromq.js).
 *
 * @since 0.1.0
 */
export const generateKeyPair = (): KeyPair => {
  const { publicKey, secretKey } = curveKeyPair()
  return { publicKey, secretKey }
}

/**
 * Derives the Z85 public key of a Z85 secret key (X25519 base-point multiplication, as libzmq does), or
 * `undefined` when `secretKey` is not a valid Z85 key.
 *
 * @since 0.1.0
 */
export const publicKeyOf = (secretKey: string): string | undefined => {
  const raw = Z85.decodeKey(secretKey)
  if (Result.isFailure(raw)) return undefined
  return Result.getOrUndefined(Z85.encodeKey(rawPublicKeyOf(raw.success)))
}

/** Checks that both keys are valid Z85 keys and that the public key belongs to the secret key. */
const validateKeyPair = (pair: KeyPair, path?: string): CurveKeyError | undefined => {
  const publicKey = Z85.decodeKey(pair.publicKey)
  if (Result.isFailure(publicKey)) return invalid(`publicKey is not a Z85 CURVE key: ${publicKey.failure}`, path)
  const derived = publicKeyOf(pair.secretKey)
  if (derived === undefined) return invalid("secretKey is not a Z85 CURVE key", path)
  if (derived !== pair.publicKey) return invalid("publicKey does not belong to secretKey", path)
  return undefined
}

// ---------------------------------------------------------------------------------------------------------------
// Key files
// ---------------------------------------------------------------------------------------------------------------

const fileError = (path: string, action: "read" | "write", cause: unknown): CurveKeyError => {
  const code = (cause as { code?: unknown } | null)?.code
  if (code === "ENOENT") {
    const message =
      action === "read" ? `key file ${path} does not exist` : `the directory of key file ${path} does not exist`
    return new CurveKeyError({ reason: "NotFound", message, path, cause })
  }
  return new CurveKeyError({
    reason: "Io",
    message: `cannot ${action} key file ${path}: ${String(cause)}`,
    path,
    cause,
  })
}

const readText = (path: string): Effect.Effect<string, CurveKeyError> =>
  Effect.tryPromise({ try: () => fs.readFile(path, "utf8"), catch: (cause) => fileError(path, "read", cause) })

/**
 * Writes a key pair as JSON `{"publicKey": ..., "secretKey": ...}` with file mode 0600, atomically (a temporary
 * file in the same directory, then a rename), replacing any existing file. Fails with `Invalid` if the pair is
 * not a valid matching pair, `Io` if the file cannot be written, `NotFound` if the directory does not exist.
 *
 * @since 0.1.0
 */
export const saveKeyPair = (path: string, pair: KeyPair): Effect.Effect<void, CurveKeyError> =>
  Effect.suspend(() => {
    const problem = validateKeyPair(pair, path)
    if (problem !== undefined) return Effect.fail(problem)
    const text = `${JSON.stringify({ publicKey: pair.publicKey, secretKey: pair.secretKey }, null, 2)}\n`
    const temporary = nodePath.join(
      nodePath.dirname(path),
      `.${nodePath.basename(path)}.${process.pid}.${crypto.randomBytes(6).toString("hex")}.tmp`,
    )
    return Effect.tryPromise({
      try: async () => {
        try {
          // `wx` with mode 0600: the secret is never readable by others, not even between write and rename.
          await fs.writeFile(temporary, text, { mode: 0o600, flag: "wx" })
          await fs.rename(temporary, path)
        } catch (cause) {
          await fs.rm(temporary, { force: true }).catch(() => undefined)
          throw cause
        }
      },
      catch: (cause) => fileError(path, "write", cause),
    })
  })

/**
 * Reads a key pair written by `saveKeyPair` and checks that the public key belongs to the secret key.
 * Fails with `NotFound`, `Io`, or `Invalid` (not JSON, missing or malformed keys, mismatched pair).
 *
 * @since 0.1.0
 */
export const loadKeyPair = (path: string): Effect.Effect<KeyPair, CurveKeyError> =>
  Effect.flatMap(readText(path), (text) => {
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch (cause) {
      return Effect.fail(new CurveKeyError({ reason: "Invalid", message: `${path} is not JSON`, path, cause }))
    }
    const { publicKey, secretKey } = (typeof parsed === "object" && parsed !== null ? parsed : {}) as {
      publicKey?: unknown
      secretKey?: unknown
    }
    if (typeof publicKey !== "string" || typeof secretKey !== "string") {
      return Effect.fail(invalid(`${path} must hold a JSON object with string fields publicKey and secretKey`, path))
    }
    const pair: KeyPair = { publicKey, secretKey }
    const problem = validateKeyPair(pair, path)
    return problem === undefined ? Effect.succeed(pair) : Effect.fail(problem)
  })

/**
 * Loads the key pair at `path`, or generates one and saves it there if the file does not exist.
 *
 * @since 0.1.0
 */
export const loadOrCreateKeyPair = (path: string): Effect.Effect<KeyPair, CurveKeyError> =>
  loadKeyPair(path).pipe(
    Effect.catch((error) =>
      error.reason === "NotFound"
        ? Effect.suspend(() => {
            const pair = generateKeyPair()
            return Effect.as(saveKeyPair(path, pair), pair)
          })
        : Effect.fail(error),
    ),
  )

/**
 * Reads an allow-list of client public keys: one Z85 key per line; blank lines and lines starting with `#` are
 * ignored (a trailing comment on a key line is not supported, because `#` is a Z85 character). Duplicates are
 * kept once, in file order. Fails with `NotFound`, `Io`, or `Invalid` naming the first bad line.
 *
 * @since 0.1.0
 */
export const loadPublicKeys = (path: string): Effect.Effect<ReadonlyArray<string>, CurveKeyError> =>
  Effect.flatMap(readText(path), (text) => {
    const keys = new Set<string>()
    const lines = text.split(/\r?\n/)
    for (let index = 0; index < lines.length; index++) {
      const line = lines[index]!.trim()
      if (line === "" || line.startsWith("#")) continue
      const decoded = Z85.decodeKey(line)
      if (Result.isFailure(decoded)) {
        return Effect.fail(invalid(`${path} line ${index + 1}: not a Z85 public key (${decoded.failure})`, path))
      }
      keys.add(line)
    }
    return Effect.succeed(Array.from(keys))
  })

// ---------------------------------------------------------------------------------------------------------------
// Key-binding proof
// ---------------------------------------------------------------------------------------------------------------

/**
 * The ASCII context string that starts the MAC'd data of a version-1 proof.
 *
 * @since 0.1.0
 */
export const PROOF_CONTEXT = "zactor/curve-bind/1"

const PROOF_CONTEXT_BYTES = Buffer.from(PROOF_CONTEXT, "ascii")
const KEY_BYTES = 32
const MAC_BYTES = 32
const ZEROS = Buffer.alloc(KEY_BYTES)

const routingIdBytes = (routingId: Uint8Array | string): Uint8Array =>
  typeof routingId === "string" ? Buffer.from(routingId, "utf8") : routingId

const proofMac = (shared: Uint8Array, routingId: Uint8Array, rawServerPublic: Uint8Array): Buffer =>
  crypto.createHmac("sha256", shared).update(PROOF_CONTEXT_BYTES).update(routingId).update(rawServerPublic).digest()

/**
 * Generates a random DEALER routing id for a CURVE client: `"z"` plus 22 base64url characters (128 random bits).
 * The client must choose its routing id (zeromq.js option `routingId`) because the proof names it; a
 * ROUTER-generated id is unknown to the client. It never starts with a zero byte, which ZeroMQ reserves.
 *
 * @since 0.1.0
 */
export const makeRoutingId = (): string => `z${crypto.randomBytes(16).toString("base64url")}`

/**
 * Builds the 64-byte key-binding proof section a client puts in every batch it sends to one server over one
 * routing id (compute it once per connection). Throws `CurveKeyError` (reason `Invalid`) if a key is not a
 * Z85 key or the routing id is not 1-255 bytes: validate configuration first.
 *
 * @since 0.1.0
 */
export const makeProof = (options: ProofOptions): Uint8Array => {
  const clientPublic = decodeKeyOrThrow("clientPublicKey", options.clientPublicKey)
  const clientSecret = decodeKeyOrThrow("clientSecretKey", options.clientSecretKey)
  const serverPublic = decodeKeyOrThrow("serverPublicKey", options.serverPublicKey)
  const routingId = routingIdBytes(options.routingId)
  if (routingId.length < 1 || routingId.length > 255) {
    throw invalid(`a routing id has 1-255 bytes; got ${routingId.length}`)
  }
  const shared = crypto.diffieHellman({
    privateKey: privateKeyObject(clientSecret),
    publicKey: publicKeyObject(serverPublic),
  })
  const section = new Uint8Array(PROOF_BYTES)
  section.set(clientPublic, 0)
  section.set(proofMac(shared, routingId, serverPublic), KEY_BYTES)
  return section
}

interface CachedProof {
  readonly section: Buffer
  readonly clientKey: string
}

const cacheKeyOf = (routingId: Uint8Array): string =>
  Buffer.from(routingId.buffer, routingId.byteOffset, routingId.byteLength).toString("latin1")

/**
 * Builds the server-side verifier of key-binding proofs for the server key pair `serverKeys`. Throws
 * `CurveKeyError` (reason `Invalid`) if the keys are not a valid matching pair: validate configuration first.
 *
 * @since 0.1.0
 */
export const makeProofVerifier = (serverKeys: KeyPair, options: ProofVerifierOptions = {}): ProofVerifier => {
  const problem = validateKeyPair(serverKeys)
  if (problem !== undefined) throw problem
  const maxCached = options.maxCachedRoutingIds ?? 65_536
  if (!Number.isInteger(maxCached) || maxCached < 0) throw invalid("maxCachedRoutingIds must be an integer >= 0")
  const serverPrivate = privateKeyObject(decodeKeyOrThrow("secretKey", serverKeys.secretKey))
  const serverPublic = decodeKeyOrThrow("publicKey", serverKeys.publicKey)
  // Insertion-ordered: the first key is the oldest entry, evicted when the cache is full.
  const cache = new Map<string, CachedProof>()
  let cacheHits = 0
  let derivations = 0

  const derive = (routingId: Uint8Array, section: Uint8Array): string | undefined => {
    const clientPublic = section.subarray(0, KEY_BYTES)
    let shared: Buffer
    try {
      shared = crypto.diffieHellman({ privateKey: serverPrivate, publicKey: publicKeyObject(clientPublic) })
    } catch {
      // OpenSSL refuses low-order points (the shared secret would be all zeros and known to anyone).
      return undefined
    } finally {
      derivations++
    }
    if (shared.length !== KEY_BYTES || crypto.timingSafeEqual(shared, ZEROS)) return undefined
    const expected = proofMac(shared, routingId, serverPublic)
    const mac = section.subarray(KEY_BYTES, KEY_BYTES + MAC_BYTES)
    if (!crypto.timingSafeEqual(expected, mac)) return undefined
    return Result.getOrUndefined(Z85.encodeKey(clientPublic))
  }

  const verify = (routingId: Uint8Array, section: Uint8Array): string | undefined => {
    if (section.length !== PROOF_BYTES || routingId.length === 0) return undefined
    const cacheKey = cacheKeyOf(routingId)
    const cached = cache.get(cacheKey)
    // Constant-time even on the cached path, so timing never reveals how much of a valid section was guessed.
    if (cached !== undefined && crypto.timingSafeEqual(cached.section, section)) {
      cacheHits++
      return cached.clientKey
    }
    const clientKey = derive(routingId, section)
    if (clientKey === undefined || maxCached === 0) return clientKey
    // Re-inserting moves a replaced entry to the newest position.
    cache.delete(cacheKey)
    if (cache.size >= maxCached) {
      const oldest = cache.keys().next()
      if (oldest.done !== true) cache.delete(oldest.value)
    }
    // Copy: `section` is usually a view into a received frame that must not be retained.
    cache.set(cacheKey, { section: Buffer.from(section), clientKey })
    return clientKey
  }

  return {
    verify,
    forget: (routingId) => {
      cache.delete(cacheKeyOf(routingId))
    },
    stats: () => ({ cached: cache.size, cacheHits, derivations }),
  }
}
