/**
 * The room process: hosts the `lobby` actor. The actor's state is the members' refs and the history; a post is
 * numbered and told to every member, wherever it lives. Prints the ref's address for members to join, and runs
 * until SIGTERM.
 */
import { Actor, type ActorRef, Node } from "@zactor/core"
import { Effect } from "effect"
import { type Line, type Member, Room } from "./contracts.ts"

interface RoomState {
  readonly members: ReadonlyArray<ActorRef.ActorRef<typeof Member>>
  readonly history: ReadonlyArray<Line>
}

const lobby = Actor.make(Room, {
  initialState: { members: [], history: [] } as RoomState,
  handlers: {
    join: ({ name, member }, ctx) =>
      Effect.sync(() => {
        console.log(`room: ${name} joined from node ${member.node}`)
        ctx.setState({ ...ctx.state, members: [...ctx.state.members, member] })
        return ctx.state.history
      }),
    post: ({ from, text }, ctx) =>
      Effect.gen(function* () {
        const line = { seq: ctx.state.history.length + 1, from, text }
        ctx.setState({ ...ctx.state, history: [...ctx.state.history, line] })
        // Tells are fire-and-forget: the room never waits on a slow member.
        for (const member of ctx.state.members) yield* ctx.tell(member).deliver(line)
      }),
  },
})

const program = Effect.gen(function* () {
  const node = yield* Node.makeZmq({ id: `room-${process.pid}` })
  const ref = yield* Actor.spawnOn(node, lobby, "lobby")
  process.send?.({ type: "ready", node: ref.node, endpoints: ref.endpoints })
  yield* Effect.callback<void>((resume) => {
    process.once("SIGTERM", () => resume(Effect.void))
  })
})

Effect.runPromise(Effect.scoped(program)).then(
  () => process.exit(0),
  (error) => {
    console.error("room failed:", error)
    process.exit(1)
  },
)
