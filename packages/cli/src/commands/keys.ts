/**
 * `zactor keys`: CURVE key pairs in the format `@zactor/transport` loads (`Curve.loadKeyPair`): a JSON file
 * `{"publicKey": "<Z85>", "secretKey": "<Z85>"}`. Without `--out` the pair is printed; with `--out` it is
 * written with mode 0600 (never over an existing file without `--force`) and the public key is printed, ready
 * for a server's allow-list (`Curve.loadPublicKeys`: one key per line). `--public <file>` prints the public
 * key of an existing key file.
 */
import * as fs from "node:fs"
import { Curve } from "@zactor/transport"
import { Effect, Option } from "effect"
import { Command, Flag } from "effect/cli"
import * as Flags from "../internal/flags.ts"
import * as Output from "../internal/output.ts"

const keyError = (error: Curve.CurveKeyError) =>
  error.reason === "Io" ? Output.failed(error.message) : Output.usage(error.message)

/** The `keys` command. */
export const command = Command.make(
  "keys",
  {
    out: Flag.String("out").pipe(
      Flag.withAlias("o"),
      Flag.withDescription("Write the key pair to this file (mode 0600) and print its public key"),
      Flag.optional,
    ),
    force: Flag.Boolean("force").pipe(
      Flag.withDescription("Replace the --out file if it exists"),
      Flag.withDefault(false),
    ),
    public: Flag.String("public").pipe(
      Flag.withDescription("Print the public key of this key pair file instead of generating one"),
      Flag.optional,
    ),
    json: Flags.json,
  },
  (flags) =>
    Output.guard(
      "keys",
      flags.json,
      Effect.gen(function* () {
        if (Option.isSome(flags.public)) {
          const pair = yield* Curve.loadKeyPair(Flags.filePath(flags.public.value)).pipe(Effect.mapError(keyError))
          yield* flags.json ? Output.json({ publicKey: pair.publicKey }) : Output.line(pair.publicKey)
          return
        }
        const pair = Curve.generateKeyPair()
        if (Option.isNone(flags.out)) {
          // The key file format itself, so `zactor keys > file` works too (mind the file's permissions).
          yield* Output.json({ publicKey: pair.publicKey, secretKey: pair.secretKey })
          return
        }
        const path = Flags.filePath(flags.out.value)
        if (!flags.force && fs.existsSync(path)) {
          return yield* Effect.fail(Output.usage(`${path} exists; pass --force to replace it`))
        }
        yield* Curve.saveKeyPair(path, pair).pipe(Effect.mapError(keyError))
        yield* flags.json ? Output.json({ publicKey: pair.publicKey, file: path }) : Output.line(pair.publicKey)
      }),
    ),
).pipe(
  Command.withDescription(
    "Generate a CURVE key pair in the format zactor loads (JSON), or print the public key of a key file.",
  ),
)
