// The `zactor` executable's entry point: runs the command line and exits with its status.
import { run } from "./Cli.ts"

const code = await run(process.argv.slice(2))
process.exit(code)
