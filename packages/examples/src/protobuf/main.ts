/**
 * One-command demo of the protobuf example (`pnpm --filter @zactor/examples demo:protobuf`): starts `server.ts`
 * and `client.ts` as two processes, each with its own zactor node, and passes the server's endpoint to the
 * client. Exits with the client's status once the server has stopped.
 *
 * @since 0.1.0
 */
import { roles } from "../shared/roles.ts"

const run = roles(import.meta, "protobuf demo", 30_000)
run.main(async () => {
  const server = run.start("server")
  const { endpoint } = await run.messageOf<{ readonly type: string; readonly endpoint: string }>(server, "listening")
  console.log(`protobuf demo: server listening on ${endpoint}`)
  const clientStatus = await run.exitOf(run.start("client", [endpoint]))
  server.kill("SIGTERM")
  const serverStatus = await run.exitOf(server)
  console.log(`protobuf demo: client exited ${clientStatus}, server exited ${serverStatus}`)
  return clientStatus === 0 && serverStatus === 0 ? 0 : 1
})
