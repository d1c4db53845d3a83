/**
 * One-command run of the actors example (`pnpm --filter @zactor/examples demo:actors`): a room process and two
 * member processes. Members join with their own refs, post with tells, and each must end up with every line of
 * both members, in order and without duplicates.
 */
import { roles } from "../shared/roles.ts"

const run = roles(import.meta, "actors", 45_000)
const members = ["ada", "grace"]
const postsEach = 3

run.main(async () => {
  const room = run.start("room")
  const { node, endpoints } = await run.messageOf<{ type: string; node: string; endpoints: Array<string> }>(
    room,
    "ready",
  )
  const expected = String(members.length * postsEach)
  const statuses = await Promise.all(
    members.map((name) =>
      run.exitOf(run.start("member", [name, node, endpoints[0] ?? "", String(postsEach), expected])),
    ),
  )
  room.kill("SIGTERM")
  const roomStatus = await run.exitOf(room)
  console.log(`actors: members exited ${statuses.join(", ")}, room exited ${roomStatus}`)
  return roomStatus === 0 && statuses.every((status) => status === 0) ? 0 : 1
})
