/**
 * @zactor/cli: the `zactor` command line (ping, ls, call, top, keys), also usable as a library to embed the
 * commands in another tool.
 *
 * @since 0.1.0
 */

/** The command tree and `run`. @since 0.1.0 */
export * as Cli from "./Cli.ts"
