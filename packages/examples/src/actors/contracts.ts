// The contracts of the chat-room actor example. A `Member` actor receives the room's messages; a `Room` actor
// keeps the members' refs (sent to it in `join`, from other processes) and the history.
import { ActorRef, Contract } from "@zactor/core"
import { Schema } from "effect"

/** One message of the room, numbered by the room so members can merge history and live messages. */
export const Line = Schema.Struct({ seq: Schema.Int, from: Schema.String, text: Schema.String })
/** One message of the room. */
export type Line = typeof Line.Type

/** A member of a room: told each new line, asked for what it has seen. */
export const Member = Contract.make("Member", {
  deliver: Contract.unary({ payload: Line }),
  inbox: Contract.unary({ payload: Schema.Struct({}), success: Schema.Array(Line) }),
})

/** A room: members join with their own ref, post with tells, and get the history on joining. */
export const Room = Contract.make("Room", {
  join: Contract.unary({
    payload: Schema.Struct({ name: Schema.String, member: ActorRef.schema(Member) }),
    success: Schema.Array(Line),
  }),
  post: Contract.unary({ payload: Schema.Struct({ from: Schema.String, text: Schema.String }) }),
})
