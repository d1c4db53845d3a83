/**
 * Spare worker processes of a pool: started ahead, ready (their node serves), but not connected or routed to.
 * A worker start takes one if there is one, so a dead worker is replaced in the time of a connect instead of a
 * process start; a replacement spare is then started in the background.
 *
 * No restart loop lives here: a spare that fails to start or dies while idle is dropped, and the next `fill`
 * (after the next take) tries again, so a broken entry cannot spin processes.
 */
import { Effect, Exit, Scope } from "effect"
import type * as ChildSpec from "../ChildSpec.ts"
import type * as ProcessChild from "../ProcessChild.ts"

/** A ready spare: its process, and the scope that owns it (handed over to whoever takes it). */
export interface Spare {
  readonly scope: Scope.Closeable
  readonly running: ChildSpec.Running<ProcessChild.ProcessHandle>
  dead: boolean
  taken: boolean
}

/** The spares of one pool. */
export class Spares {
  private readonly idle: Array<Spare> = []
  private starting = 0
  private closed = false
  readonly wanted: number
  private readonly start: (
    n: number,
  ) => Effect.Effect<ChildSpec.Running<ProcessChild.ProcessHandle>, unknown, Scope.Scope>
  private readonly jobs: Scope.Scope
  private started = 0

  constructor(
    wanted: number,
    start: (n: number) => Effect.Effect<ChildSpec.Running<ProcessChild.ProcessHandle>, unknown, Scope.Scope>,
    jobs: Scope.Scope,
  ) {
    this.wanted = wanted
    this.start = start
    this.jobs = jobs
  }

  /** Hands over a ready spare (the taker closes its scope), or `undefined` when none is ready. */
  take(): Spare | undefined {
    for (let spare = this.idle.shift(); spare !== undefined; spare = this.idle.shift()) {
      if (spare.dead) continue
      spare.taken = true
      return spare
    }
    return undefined
  }

  /** Starts spares in the background until `wanted` are ready or starting. */
  fill(): Effect.Effect<void> {
    return Effect.suspend(() => {
      const missing = this.closed ? 0 : this.wanted - this.idle.length - this.starting
      if (missing <= 0) return Effect.void
      this.starting += missing
      return Effect.forEach(Array.from({ length: missing }), () => Effect.forkIn(this.startOne(), this.jobs), {
        discard: true,
      })
    })
  }

  private startOne(): Effect.Effect<void> {
    return Effect.uninterruptibleMask((restore) =>
      Effect.suspend(() => {
        const scope = Scope.makeUnsafe()
        return Effect.flatMap(Effect.exit(restore(Scope.provide(scope)(this.start(++this.started)))), (exit) => {
          this.starting--
          if (Exit.isFailure(exit) || this.closed) return Scope.close(scope, Exit.void)
          const spare: Spare = { scope, running: exit.value, dead: false, taken: false }
          this.idle.push(spare)
          // A spare that dies while idle is dropped (its scope released); a taken one is its taker's business.
          const watch = Effect.andThen(spare.running.exit, () =>
            Effect.suspend(() => {
              spare.dead = true
              if (spare.taken) return Effect.void
              const index = this.idle.indexOf(spare)
              if (index >= 0) this.idle.splice(index, 1)
              return Scope.close(scope, Exit.void)
            }),
          )
          return Effect.asVoid(Effect.forkIn(watch, this.jobs))
        })
      }),
    )
  }

  /** Stops the idle spares; no more are started. */
  close(): Effect.Effect<void> {
    return Effect.suspend(() => {
      this.closed = true
      const idle = this.idle.splice(0)
      return Effect.forEach(idle, (spare) => Scope.close(spare.scope, Exit.void), {
        concurrency: "unbounded",
        discard: true,
      })
    })
  }
}
