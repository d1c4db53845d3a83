/**
 * `zactor call <Service.method> [json]`: calls a method from the shell. The node serving it describes the
 * method (admin service); the payload is checked against the described JSON Schema, then sent in its JSON
 * wire form through an untyped contract (`Admin.contractOf`), and validated again by the node. A protobuf
 * method's payload is read in the message's canonical JSON form and sent as its binary encoding, with the
 * descriptors the node describes; its results are printed in that JSON form. The result
 * (or each element of a stream, one JSON document per line) is printed as JSON. Exit status 0 on success,
 * 1 when the call fails (framework code or application error), 2 for a payload that is not valid.
 */
import { Admin, RpcError } from "@zactor/core"
import { Effect, Option, Result, Stream } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import * as Flags from "../internal/flags.ts"
import * as Output from "../internal/output.ts"
import * as Payload from "../internal/payload.ts"
import * as ProtobufBodies from "../internal/protobufBodies.ts"
import { instances } from "../internal/resolve.ts"
import * as Session from "../internal/session.ts"

/** `Service/method` or `Service.method` (split at the last dot) into its parts. */
export const parseMethod = (text: string): { readonly service: string; readonly method: string } | undefined => {
  const at = text.includes("/") ? text.lastIndexOf("/") : text.lastIndexOf(".")
  if (at <= 0 || at === text.length - 1) return undefined
  return { service: text.slice(0, at), method: text.slice(at + 1) }
}

/** A call's failure, for printing. */
const failureOf = (error: unknown): { readonly code: string; readonly message: string; readonly error?: unknown } => {
  if (RpcError.is(error)) return { code: error.code, message: error.message }
  if (typeof error === "object" && error !== null && "_tag" in error) {
    // An application error declared by the contract, in its JSON wire form.
    return { code: "application", message: String((error as { _tag: unknown })._tag), error }
  }
  return { code: "internal", message: String(error) }
}

/** The `call` command. */
export const command = Command.make(
  "call",
  {
    method: Argument.String("method").pipe(Argument.withDescription("Service.method or Service/method")),
    payload: Argument.String("payload").pipe(
      Argument.withDescription("The payload as JSON, in its JSON wire form (default {})"),
      Argument.withDefault("{}"),
    ),
    node: Flag.String("node").pipe(
      Flag.withDescription("Call this node (id or endpoint) rather than any node serving the service"),
      Flag.optional,
    ),
    json: Flags.json,
    ...Flags.connection,
  },
  (flags) =>
    Output.guard(
      "call",
      flags.json,
      Effect.scoped(
        Effect.gen(function* () {
          const parsed = parseMethod(flags.method)
          if (parsed === undefined) {
            return yield* Effect.fail(Output.usage(`"${flags.method}" is not of the form Service.method`))
          }
          let payload: unknown
          try {
            payload = JSON.parse(flags.payload)
          } catch (error) {
            return yield* Effect.fail(Output.usage(`the payload is not JSON: ${(error as Error).message}`))
          }
          const session = yield* Session.open(flags)
          const [instance] = yield* instances(
            session,
            Option.getOrElse(flags.node, () => parsed.service),
          )
          const description = yield* session
            .describe(instance!.endpoint)
            .pipe(Effect.mapError((error) => Output.failed(`${instance!.endpoint}: ${error.message}`)))
          const contract = description.contracts.find((c) => c.name === parsed.service)
          if (contract === undefined) {
            const served = description.contracts.map((c) => c.name).join(", ") || "nothing"
            return yield* Effect.fail(
              Output.failed(`${description.node} does not serve ${parsed.service} (it serves ${served})`),
            )
          }
          const method = contract.methods.find((m) => m.name === parsed.method)
          if (method === undefined) {
            const methods = contract.methods.map((m) => m.name).join(", ")
            return yield* Effect.fail(Output.failed(`${parsed.service} has no method ${parsed.method} (${methods})`))
          }
          // Protobuf bodies (generated contracts) are written from their canonical JSON form with the descriptors
          // the node describes; the others are checked against their JSON Schema and sent as they are.
          const protobuf = method.protobuf ?? null
          const made = protobuf === null ? undefined : ProtobufBodies.make(protobuf)
          if (made !== undefined && Result.isFailure(made)) {
            return yield* Effect.fail(Output.failed(`${parsed.service}/${parsed.method}: ${made.failure}`))
          }
          const bodies = made?.success
          const invalid = (problem: string) =>
            Effect.fail(Output.usage(`invalid payload for ${parsed.service}/${parsed.method}: ${problem}`))
          if (bodies !== undefined && protobuf?.payload != null) {
            const encoded = bodies.encodePayload(payload)
            if (Result.isFailure(encoded)) return yield* invalid(encoded.failure)
            payload = encoded.success
          } else {
            const problem = Payload.check(method.payload, payload)
            if (problem !== undefined) return yield* invalid(problem)
          }
          const shown = (value: unknown): unknown => (bodies === undefined ? value : bodies.decodeResult(value))
          const client = session.node.client(Admin.contractOf(contract), session.target(instance!.endpoint))
          const send = (client as Record<string, (payload: unknown, options: object) => unknown>)[method.name]!
          const options = { timeout: session.timeoutMs }
          const outcome =
            method.kind === "unary"
              ? yield* Effect.result(send(payload, options) as Effect.Effect<unknown, unknown>)
              : yield* Effect.result(
                  Stream.runForEach(send(payload, options) as Stream.Stream<unknown, unknown>, (element) =>
                    flags.json
                      ? Output.line(JSON.stringify({ element: shown(element) }))
                      : Output.line(JSON.stringify(shown(element))),
                  ),
                )
          if (outcome._tag === "Success") {
            if (method.kind === "unary") {
              const result = shown(outcome.success) ?? null
              yield* flags.json ? Output.json({ result }) : Output.json(result)
            }
            return
          }
          const failure = failureOf(outcome.failure)
          if (flags.json) yield* Output.json({ error: failure, exitCode: 1 })
          else {
            const detail = failure.error === undefined ? failure.message : JSON.stringify(failure.error)
            yield* Output.errorLine(`zactor call: ${failure.code}: ${detail}`)
          }
          yield* Output.exitWith(1)
        }),
      ),
    ),
).pipe(
  Command.withDescription(
    "Call a method with a JSON payload, checked against the schema the serving node describes; prints the result as JSON.",
  ),
)
