/**
 * Waiting on a condition of the node's own state (calls still in flight, a route appearing) that no event
 * announces: checked every `pollMs` until it holds or `timeoutMs` has passed, counted from when the effect runs.
 */
import { Effect } from "effect"

/** Succeeds once `done()` holds, or when `timeoutMs` has passed without it (the caller looks again if it cares). */
export const pollUntil = (done: () => boolean, timeoutMs: number, pollMs = 5): Effect.Effect<void> =>
  Effect.suspend(() => {
    const until = Date.now() + timeoutMs
    const poll: Effect.Effect<void> = Effect.suspend(() =>
      done() || Date.now() >= until ? Effect.void : Effect.flatMap(Effect.sleep(pollMs), () => poll),
    )
    return poll
  })
