/**
 * The `zactor` command line: `ping`, `ls`, `call`, `top` and `keys`, built with Effect's CLI module (help on
 * every command with `--help`, `--version`, parse errors with usage). `run` executes a command line and
 * resolves with the exit status: 0 success, 1 a check or call failed, 2 wrong usage.
 *
 * @since 0.1.0
 */
import { Effect, Exit, Fiber } from "effect"
import { CliConfig, Command, GlobalFlag } from "effect/cli"
import * as Call from "./commands/call.ts"
import * as Keys from "./commands/keys.ts"
import * as Ls from "./commands/ls.ts"
import * as Ping from "./commands/ping.ts"
import * as Top from "./commands/top.ts"
import * as Environment from "./internal/environment.ts"
import * as Output from "./internal/output.ts"

/** The CLI's version. @since 0.1.0 */
export const VERSION = "0.1.0"

/**
 * The root command with its subcommands.
 *
 * @since 0.1.0
 */
export const zactor = Command.make("zactor").pipe(
  Command.withDescription("Operate zactor nodes: check they answer, list them, call methods, watch them, make keys."),
  Command.withSubcommands([Ping.command, Ls.command, Call.command, Top.command, Keys.command]),
)

/**
 * Runs a command line (the arguments after `zactor`) and resolves with the process exit status. SIGINT and
 * SIGTERM interrupt the command, which closes its node before returning.
 *
 * @since 0.1.0
 */
export const run = async (args: ReadonlyArray<string>): Promise<number> => {
  Output.status.code = 0
  const program = Command.runWith(zactor, { version: VERSION })(args).pipe(
    // No wizard (it prompts) and no --log-level (zactor's own logs follow ZACTOR_LOG_LEVEL).
    Effect.provideService(CliConfig.CliConfig, {
      builtIns: [GlobalFlag.Help, GlobalFlag.Version, GlobalFlag.Completions],
    }),
    Effect.provide(Environment.layer(args)),
  )
  const fiber = Effect.runFork(program)
  const stop = () => fiber.interruptUnsafe()
  process.once("SIGINT", stop)
  process.once("SIGTERM", stop)
  const exit = await Effect.runPromise(Fiber.await(fiber))
  process.off("SIGINT", stop)
  process.off("SIGTERM", stop)
  if (Exit.isSuccess(exit)) return Output.status.code
  // Interrupted by a signal: a normal way to leave `top`.
  if (Exit.hasInterrupts(exit)) return Output.status.code
  // Parse errors and help on an invalid command line were already printed by the CLI module.
  const failure = exit.cause.reasons.find((reason) => reason._tag === "Fail")
  if (failure !== undefined) return 2
  process.stderr.write(`zactor: unexpected failure\n${String(exit.cause)}\n`)
  return 70
}
