import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as nodePath from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Result } from "effect"
import { curveKeyPair } from "zeromq"
import * as Curve from "../src/Curve.ts"
import * as Z85 from "../src/internal/z85.ts"

/** A temporary directory removed when the test's scope closes. */
const tempDir = Effect.acquireRelease(
  Effect.promise(() => fs.mkdtemp(nodePath.join(os.tmpdir(), "zactor-curve-"))),
  (dir) => Effect.promise(() => fs.rm(dir, { recursive: true, force: true })),
)

const writeFile = (path: string, text: string, mode = 0o600) => Effect.promise(() => fs.writeFile(path, text, { mode }))

const fileMode = (path: string) => Effect.promise(() => fs.stat(path)).pipe(Effect.map((stat) => stat.mode & 0o777))

/** Runs `effect`, expecting it to fail with a `CurveKeyError`, and returns that error. */
const expectKeyError = <A>(effect: Effect.Effect<A, Curve.CurveKeyError>) =>
  Effect.flip(effect).pipe(Effect.tap((error) => Effect.sync(() => assert.isTrue(Curve.CurveKeyError.is(error)))))

const bytes = (...values: Array<number>) => Uint8Array.from(values)

describe("z85", () => {
  it("encodes the RFC 32 example", () => {
    const encoded = Z85.encode(bytes(0x86, 0x4f, 0xd2, 0x6f, 0xb5, 0x59, 0xf7, 0x5b))
    assert.deepStrictEqual(encoded, Result.succeed("HelloWorld"))
    const decoded = Z85.decode("HelloWorld")
    assert.isTrue(Result.isSuccess(decoded))
    assert.deepStrictEqual(Array.from(Result.getOrThrow(decoded)), [0x86, 0x4f, 0xd2, 0x6f, 0xb5, 0x59, 0xf7, 0x5b])
  })

  it("round-trips zeromq's keys and arbitrary bytes", () => {
    for (let i = 0; i < 20; i++) {
      const { publicKey, secretKey } = curveKeyPair()
      for (const key of [publicKey, secretKey]) {
        const raw = Result.getOrThrow(Z85.decodeKey(key))
        assert.strictEqual(raw.length, 32)
        assert.strictEqual(Result.getOrThrow(Z85.encodeKey(raw)), key)
      }
    }
    const edges = bytes(0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x80, 0, 0, 1)
    assert.deepStrictEqual(Array.from(Result.getOrThrow(Z85.decode(Result.getOrThrow(Z85.encode(edges))))), [...edges])
    assert.deepStrictEqual(Z85.encode(new Uint8Array(0)), Result.succeed(""))
  })

  it("rejects bad input with a reason instead of throwing", () => {
    const failure = (result: Result.Result<unknown, string>) => {
      assert.isTrue(Result.isFailure(result))
      return Result.isFailure(result) ? result.failure : ""
    }
    assert.include(failure(Z85.encode(bytes(1, 2, 3))), "4-byte")
    assert.include(failure(Z85.decode("Hello!")), "5-character")
    assert.include(failure(Z85.decode("Hell\u00e9")), "alphabet")
    assert.include(failure(Z85.decode("Hell~")), "alphabet")
    assert.include(failure(Z85.decode("#####")), "overflows")
    assert.include(failure(Z85.decodeKey("HelloWorld")), "40 characters")
    assert.include(failure(Z85.encodeKey(new Uint8Array(8))), "32 bytes")
  })
})

describe("keys", () => {
  it("publicKeyOf derives zeromq's public key from the secret key", () => {
    for (let i = 0; i < 20; i++) {
      const pair = Curve.generateKeyPair()
      assert.strictEqual(Curve.publicKeyOf(pair.secretKey), pair.publicKey)
    }
    assert.isUndefined(Curve.publicKeyOf("not a key"))
    assert.isUndefined(Curve.publicKeyOf("#".repeat(40)))
  })
})

describe("key files", () => {
  it.effect("saves a key pair with mode 0600 and loads it back", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const path = nodePath.join(dir, "node.key")
      const pair = Curve.generateKeyPair()
      yield* Curve.saveKeyPair(path, pair)
      assert.strictEqual(yield* fileMode(path), 0o600)
      assert.deepStrictEqual(yield* Curve.loadKeyPair(path), pair)

      // Replacing a file that others could read leaves a 0600 file, and no temporary file behind.
      yield* writeFile(path, "old", 0o644)
      const next = Curve.generateKeyPair()
      yield* Curve.saveKeyPair(path, next)
      assert.strictEqual(yield* fileMode(path), 0o600)
      assert.deepStrictEqual(yield* Curve.loadKeyPair(path), next)
      assert.deepStrictEqual(yield* Effect.promise(() => fs.readdir(dir)), ["node.key"])
    }),
  )

  it.effect("loadOrCreateKeyPair creates the file once, then loads it", () =>
    Effect.gen(function* () {
      const path = nodePath.join(yield* tempDir, "identity.json")
      const created = yield* Curve.loadOrCreateKeyPair(path)
      assert.strictEqual(Curve.publicKeyOf(created.secretKey), created.publicKey)
      assert.deepStrictEqual(yield* Curve.loadOrCreateKeyPair(path), created)
    }),
  )

  it.effect("bad key files fail with the right reason", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const pair = Curve.generateKeyPair()
      const other = Curve.generateKeyPair()
      const at = (name: string) => nodePath.join(dir, name)

      const missing = yield* expectKeyError(Curve.loadKeyPair(at("missing.json")))
      assert.strictEqual(missing.reason, "NotFound")
      assert.strictEqual(missing.path, at("missing.json"))

      assert.strictEqual((yield* expectKeyError(Curve.loadKeyPair(dir))).reason, "Io")

      yield* writeFile(at("garbage.json"), "{ not json")
      assert.strictEqual((yield* expectKeyError(Curve.loadKeyPair(at("garbage.json")))).reason, "Invalid")

      yield* writeFile(at("fields.json"), JSON.stringify({ publicKey: pair.publicKey }))
      assert.strictEqual((yield* expectKeyError(Curve.loadKeyPair(at("fields.json")))).reason, "Invalid")

      yield* writeFile(at("short.json"), JSON.stringify({ publicKey: "abc", secretKey: pair.secretKey }))
      assert.strictEqual((yield* expectKeyError(Curve.loadKeyPair(at("short.json")))).reason, "Invalid")

      yield* writeFile(at("mixed.json"), JSON.stringify({ publicKey: other.publicKey, secretKey: pair.secretKey }))
      const mixed = yield* expectKeyError(Curve.loadKeyPair(at("mixed.json")))
      assert.strictEqual(mixed.reason, "Invalid")
      assert.include(mixed.message, "does not belong")

      const mismatched = { publicKey: other.publicKey, secretKey: pair.secretKey }
      assert.strictEqual((yield* expectKeyError(Curve.saveKeyPair(at("never.json"), mismatched))).reason, "Invalid")
      const noDir = yield* expectKeyError(Curve.saveKeyPair(at("no/such/dir.json"), pair))
      assert.strictEqual(noDir.reason, "NotFound")
      assert.deepStrictEqual(
        (yield* Effect.promise(() => fs.readdir(dir))).filter((name) => name.includes("never")),
        [],
      )
    }),
  )

  it.effect("loadPublicKeys skips blanks and comments and names a bad line", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const [a, b] = [Curve.generateKeyPair().publicKey, Curve.generateKeyPair().publicKey]
      const good = nodePath.join(dir, "allowed.txt")
      yield* writeFile(good, `# allowed clients\r\n\n  ${a}  \r\n# ${b} is commented out\n${a}\n${b}\n`)
      assert.deepStrictEqual(yield* Curve.loadPublicKeys(good), [a, b])

      const empty = nodePath.join(dir, "empty.txt")
      yield* writeFile(empty, "# nobody\n")
      assert.deepStrictEqual(yield* Curve.loadPublicKeys(empty), [])

      const bad = nodePath.join(dir, "bad.txt")
      // A key cut short keeps its first character, never '#' in Z85 (a group's first digit is at most 82 of 84),
      // so the line cannot pass for a comment. `a.slice(1)` could, when a key's second character is '#'.
      yield* writeFile(bad, `# comment\n${a}\n\n${a.slice(0, 39)}\n${b}\n`)
      const error = yield* expectKeyError(Curve.loadPublicKeys(bad))
      assert.strictEqual(error.reason, "Invalid")
      assert.include(error.message, "line 4")

      const missing = yield* expectKeyError(Curve.loadPublicKeys(nodePath.join(dir, "nope.txt")))
      assert.strictEqual(missing.reason, "NotFound")
    }),
  )
})

describe("key-binding proof", () => {
  const server = Curve.generateKeyPair()
  const client = Curve.generateKeyPair()
  const routingId = Buffer.from(Curve.makeRoutingId(), "utf8")
  const proofFor = (keys: Curve.KeyPair, serverPublicKey = server.publicKey, id: Uint8Array | string = routingId) =>
    Curve.makeProof({
      clientPublicKey: keys.publicKey,
      clientSecretKey: keys.secretKey,
      serverPublicKey,
      routingId: id,
    })
  const tamper = (section: Uint8Array, index: number) => {
    const copy = Uint8Array.from(section)
    copy[index] = copy[index]! ^ 0x01
    return copy
  }

  it("verifies the client key for the right routing id and server key", () => {
    const proof = proofFor(client)
    assert.strictEqual(proof.length, 64)
    assert.deepStrictEqual(
      Buffer.from(proof.subarray(0, 32)),
      Buffer.from(Result.getOrThrow(Z85.decodeKey(client.publicKey))),
    )
    assert.strictEqual(Curve.makeProofVerifier(server).verify(routingId, proof), client.publicKey)
    // A string routing id stands for its UTF-8 bytes, as zeromq.js sends it.
    assert.deepStrictEqual(proofFor(client, server.publicKey, routingId.toString("utf8")), proof)
  })

  it("rejects another routing id, another server, tampered bytes and bad lengths", () => {
    const proof = proofFor(client)
    const verifier = Curve.makeProofVerifier(server)
    assert.isUndefined(verifier.verify(Buffer.from(Curve.makeRoutingId()), proof))
    assert.isUndefined(Curve.makeProofVerifier(Curve.generateKeyPair()).verify(routingId, proof))
    assert.isUndefined(verifier.verify(routingId, proofFor(client, Curve.generateKeyPair().publicKey)))
    for (const index of [0, 17, 31, 32, 50, 63]) assert.isUndefined(verifier.verify(routingId, tamper(proof, index)))
    assert.isUndefined(verifier.verify(routingId, proof.subarray(0, 63)))
    assert.isUndefined(verifier.verify(routingId, new Uint8Array(65)))
    assert.isUndefined(verifier.verify(new Uint8Array(0), proof))
    // A low-order public key (all zeros) would make the shared secret public: refused, without throwing.
    assert.isUndefined(verifier.verify(routingId, new Uint8Array(64)))
    // The proof still verifies after all those failures: none of them was cached.
    assert.strictEqual(verifier.verify(routingId, proof), client.publicKey)
  })

  it("rejects a client claiming another client's public key without its secret key", () => {
    const attacker = Curve.generateKeyPair()
    const forged = Curve.makeProof({
      clientPublicKey: client.publicKey,
      clientSecretKey: attacker.secretKey,
      serverPublicKey: server.publicKey,
      routingId,
    })
    const verifier = Curve.makeProofVerifier(server)
    assert.isUndefined(verifier.verify(routingId, forged))
    // Splicing the victim's key onto the attacker's own valid MAC fails too.
    const spliced = Uint8Array.from(proofFor(attacker))
    spliced.set(forged.subarray(0, 32), 0)
    assert.isUndefined(verifier.verify(routingId, spliced))
    assert.strictEqual(verifier.verify(routingId, proofFor(attacker)), attacker.publicKey)
  })

  it("answers a repeated section from the cache, and re-derives when it changes", () => {
    const verifier = Curve.makeProofVerifier(server)
    const proof = proofFor(client)
    assert.strictEqual(verifier.verify(routingId, proof), client.publicKey)
    assert.deepStrictEqual(verifier.stats(), { cached: 1, cacheHits: 0, derivations: 1 })
    // A copy in a larger frame, as BatchFrame.decode hands it over.
    const frame = new Uint8Array(100)
    frame.set(proof, 2)
    for (let i = 0; i < 1000; i++)
      assert.strictEqual(verifier.verify(routingId, frame.subarray(2, 66)), client.publicKey)
    assert.deepStrictEqual(verifier.stats(), { cached: 1, cacheHits: 1000, derivations: 1 })
    // Mutating the frame afterwards does not corrupt the cache (the verifier kept a copy).
    frame.fill(0)
    assert.strictEqual(verifier.verify(routingId, proof), client.publicKey)

    // A tampered section on a cached routing id misses the cache, fails, and leaves the entry in place.
    assert.isUndefined(verifier.verify(routingId, tamper(proof, 40)))
    assert.deepStrictEqual(verifier.stats(), { cached: 1, cacheHits: 1001, derivations: 2 })
    assert.strictEqual(verifier.verify(routingId, proof), client.publicKey)

    // A new valid proof on the same routing id (a reconnect reusing the id with another key) replaces the entry.
    const other = Curve.generateKeyPair()
    assert.strictEqual(verifier.verify(routingId, proofFor(other)), other.publicKey)
    assert.strictEqual(verifier.stats().cached, 1)

    verifier.forget(routingId)
    assert.strictEqual(verifier.stats().cached, 0)
  })

  it("bounds the cache, evicting the oldest routing id", () => {
    const verifier = Curve.makeProofVerifier(server, { maxCachedRoutingIds: 2 })
    const ids = [Curve.makeRoutingId(), Curve.makeRoutingId(), Curve.makeRoutingId()].map((id) => Buffer.from(id))
    const proofs = ids.map((id) => proofFor(client, server.publicKey, id))
    for (const [i, id] of ids.entries()) assert.strictEqual(verifier.verify(id, proofs[i]!), client.publicKey)
    assert.deepStrictEqual(verifier.stats(), { cached: 2, cacheHits: 0, derivations: 3 })
    verifier.verify(ids[2]!, proofs[2]!)
    verifier.verify(ids[1]!, proofs[1]!)
    assert.strictEqual(verifier.stats().cacheHits, 2)
    verifier.verify(ids[0]!, proofs[0]!)
    assert.deepStrictEqual(verifier.stats(), { cached: 2, cacheHits: 2, derivations: 4 })

    const uncached = Curve.makeProofVerifier(server, { maxCachedRoutingIds: 0 })
    uncached.verify(ids[0]!, proofs[0]!)
    uncached.verify(ids[0]!, proofs[0]!)
    assert.deepStrictEqual(uncached.stats(), { cached: 0, cacheHits: 0, derivations: 2 })
  })

  it("refuses invalid configuration with a CurveKeyError", () => {
    const thrown = (f: () => unknown) => {
      try {
        f()
      } catch (error) {
        return error
      }
      return undefined
    }
    const badKey = thrown(() => proofFor({ publicKey: "short", secretKey: client.secretKey }))
    assert.isTrue(Curve.CurveKeyError.is(badKey))
    assert.isTrue(Curve.CurveKeyError.is(thrown(() => proofFor(client, server.publicKey, new Uint8Array(0)))))
    assert.isTrue(Curve.CurveKeyError.is(thrown(() => proofFor(client, server.publicKey, new Uint8Array(256)))))
    const mismatched = { publicKey: client.publicKey, secretKey: server.secretKey }
    assert.isTrue(Curve.CurveKeyError.is(thrown(() => Curve.makeProofVerifier(mismatched))))
  })
})
