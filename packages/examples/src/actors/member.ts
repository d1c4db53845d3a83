/**
 * A member process: `member.ts <name> <room node id> <room endpoint> <lines to post> <lines expected>`. Spawns a
 * `Member` actor whose `onStart` joins the room with its own ref, so live lines wait in its mailbox until the
 * history is in; then posts its lines with tells and waits until it has seen every line of every member.
 */
import { Actor, ActorRef, Node } from "@zactor/core"
import { Effect, Schedule } from "effect"
import { type Line, Member, Room } from "./contracts.ts"

const [name = "member", roomNode = "", roomEndpoint = "", posts = "3", expected = "6"] = process.argv.slice(2)
const room = ActorRef.make(Room, { name: "lobby", node: roomNode, endpoints: [roomEndpoint] })

/** Lines by sequence number: history and live tells may overlap, and merging by `seq` makes that harmless. */
const merge = (inbox: ReadonlyMap<number, Line>, lines: ReadonlyArray<Line>): ReadonlyMap<number, Line> => {
  const next = new Map(inbox)
  for (const line of lines) next.set(line.seq, line)
  return next
}

const member = Actor.make(Member, {
  initialState: new Map() as ReadonlyMap<number, Line>,
  onStart: (ctx) =>
    Effect.map(ctx.ask(room).join({ name, member: ctx.self }, { timeout: "10 seconds" }), (history) =>
      ctx.setState(merge(ctx.state, history)),
    ),
  handlers: {
    deliver: (line, ctx) => Effect.sync(() => ctx.setState(merge(ctx.state, [line]))),
    inbox: (_, ctx) => Effect.succeed([...ctx.state.values()].sort((a, b) => a.seq - b.seq)),
  },
})

const program = Effect.gen(function* () {
  const node = yield* Node.makeZmq({ id: `${name}-${process.pid}` })
  const self = yield* Actor.spawnOn(node, member, name)
  const lobby = ActorRef.tell(node, room)
  for (let i = 1; i <= Number(posts); i++) yield* lobby.post({ from: name, text: `hello #${i} from ${name}` })
  // Asks to its own actor go through the same mailbox as the room's tells.
  const inbox = yield* ActorRef.ask(node, self)
    .inbox({})
    .pipe(
      Effect.filterOrFail(
        (lines) => lines.length >= Number(expected),
        (lines) => new Error(`${lines.length} of ${expected} lines so far`),
      ),
      Effect.retry({ schedule: Schedule.spaced("100 millis"), times: 150 }),
    )
  console.log(`${name}: saw ${inbox.length} lines: ${inbox.map((line) => `${line.seq}:${line.from}`).join(" ")}`)
  const complete = inbox.every((line, index) => line.seq === index + 1)
  return complete && inbox.length === Number(expected) ? 0 : 1
})

Effect.runPromise(Effect.scoped(program)).then(
  (status) => process.exit(status),
  (error) => {
    console.error(`${name} failed:`, error)
    process.exit(1)
  },
)
