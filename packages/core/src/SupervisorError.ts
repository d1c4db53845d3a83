/**
 * The errors of supervision: supervisors' (with a closed `reason`), OS process children's, worker pools'.
 * In-process only: none of them travels on the wire (a caller sees their effect as `unavailable`).
 *
 * @since 0.1.0
 */
import { Data } from "effect"

/**
 * Why a supervisor operation failed:
 * - `RestartIntensity`: more than `maxRestarts` restarts were needed within `period`; the supervisor stopped its
 *   children and escalated (its parent restarts it, or its `await` fails with this error);
 * - `StartFailed`: a child could not be started (at start-up, by `startChild`); `cause` holds the child's error;
 * - `DuplicateChild`: a child id is already in use;
 * - `UnknownChild`: no child with that id;
 * - `Terminated`: the supervisor has stopped or escalated and takes no more commands.
 *
 * @since 0.1.0
 */
export type SupervisorErrorReason =
  | "RestartIntensity"
  | "StartFailed"
  | "DuplicateChild"
  | "UnknownChild"
  | "Terminated"

/**
 * A failed supervisor operation, or a supervisor's escalation.
 *
 * @since 0.1.0
 */
export class SupervisorError extends Data.TaggedError("SupervisorError")<{
  readonly reason: SupervisorErrorReason
  /** The supervisor's id. */
  readonly supervisor: string
  /** The child concerned, when there is one. */
  readonly child?: string | undefined
  readonly message: string
  readonly cause?: unknown
}> {
  /** Guard that works across duplicated installs, where `instanceof` would not. */
  static is(u: unknown): u is SupervisorError {
    return typeof u === "object" && u !== null && (u as { _tag?: unknown })._tag === "SupervisorError"
  }
}

/**
 * An OS process child ended: its exit code, or the signal that ended it (`SIGKILL`...).
 *
 * @since 0.1.0
 */
export class ProcessExitError extends Data.TaggedError("ProcessExitError")<{
  readonly pid: number
  readonly code: number | null
  readonly signal: string | null
  /** When this process saw the exit (the child process `exit` event), epoch ms. */
  readonly at: number
  readonly message: string
}> {
  /** Guard that works across duplicated installs, where `instanceof` would not. */
  static is(u: unknown): u is ProcessExitError {
    return typeof u === "object" && u !== null && (u as { _tag?: unknown })._tag === "ProcessExitError"
  }
}

/**
 * An OS process child did not come up: it could not be spawned (`SpawnFailed`), ended before it reported ready
 * (`Exited`), or did not report ready within its ready timeout (`ReadyTimeout`; it is killed).
 *
 * @since 0.1.0
 */
export class ProcessStartError extends Data.TaggedError("ProcessStartError")<{
  readonly reason: "SpawnFailed" | "Exited" | "ReadyTimeout"
  readonly pid: number | undefined
  readonly message: string
  readonly cause?: unknown
}> {
  /** Guard that works across duplicated installs, where `instanceof` would not. */
  static is(u: unknown): u is ProcessStartError {
    return typeof u === "object" && u !== null && (u as { _tag?: unknown })._tag === "ProcessStartError"
  }
}

/**
 * A worker pool operation that cannot be done: a size outside `[minSize, maxSize]` (`InvalidSize`), or a pool
 * that has stopped (`Stopped`).
 *
 * @since 0.1.0
 */
export class WorkerPoolError extends Data.TaggedError("WorkerPoolError")<{
  readonly reason: "InvalidSize" | "Stopped"
  readonly pool: string
  readonly message: string
}> {
  /** Guard that works across duplicated installs, where `instanceof` would not. */
  static is(u: unknown): u is WorkerPoolError {
    return typeof u === "object" && u !== null && (u as { _tag?: unknown })._tag === "WorkerPoolError"
  }
}
