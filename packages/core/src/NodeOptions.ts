/**
 * Construction options of a node, their defaults, and the one function that applies them.
 *
 * @since 0.1.0
 */
import { randomBytes } from "node:crypto"
import { Duration, Effect } from "effect"
import * as CircuitBreaker from "./CircuitBreaker.ts"
import * as DeliveryPolicy from "./DeliveryPolicy.ts"
import type { ClientInterceptor, ServerInterceptor } from "./Interceptor.ts"
import * as Liveness from "./Liveness.ts"
import type * as Log from "./Log.ts"
import type * as Prometheus from "./Prometheus.ts"
import type * as Routing from "./Routing.ts"
import { RpcError } from "./RpcError.ts"

/**
 * Options of a node.
 *
 * @since 0.1.0
 */
export interface NodeOptions {
  /** Stable id of this node, announced to peers. Default: `node-` plus 8 random hex characters. */
  readonly id?: string | undefined
  /** Endpoints to bind for inbound calls. Default `["tcp://127.0.0.1:*"]` (a free loopback port). */
  readonly bind?: ReadonlyArray<string> | undefined
  /** Endpoints of nodes to connect to at start. Default none. */
  readonly peers?: ReadonlyArray<string> | undefined
  /** Deadline of calls whose method and call declare none. Default 10 s. */
  readonly defaultTimeout?: Duration.Input | undefined
  /** How long `connect` waits for a peer's WELCOME. Default 5 s. */
  readonly helloTimeout?: Duration.Input | undefined
  /** Most calls served at once by this node; beyond, calls fail fast with `overloaded`. Default 10,000. */
  readonly maxConcurrentCalls?: number | undefined
  /** Application metadata announced to peers. */
  readonly meta?: { readonly [key: string]: string } | undefined
  /** Retry settings of at-least-once calls. Defaults in `DeliveryPolicy.defaults`. */
  readonly retry?: DeliveryPolicy.RetryOptions | undefined
  /** Interceptors around every call this node sends. Default none. */
  readonly clientInterceptors?: ReadonlyArray<ClientInterceptor> | undefined
  /** Interceptors around every handler this node runs. Default none. */
  readonly serverInterceptors?: ReadonlyArray<ServerInterceptor> | undefined
  /** Logging: level (default `warn`, or `ZACTOR_LOG_LEVEL`), pretty output, destination. See `Log.LogOptions`. */
  readonly log?: Log.LogOptions | undefined
  /**
   * Serve this node's metrics in the Prometheus text format over HTTP (`node.metricsUrl()` tells where).
   * Default: off. `{}` listens on 127.0.0.1:9464 at `/metrics`; `port: 0` picks a free port.
   */
  readonly metricsHttp?: Prometheus.HttpOptions | undefined
  /**
   * Whether the node serves the admin service (`zactor.Admin`: describe, metrics) that the `zactor` CLI
   * uses. Default true. It is not announced to peers or discovery; with CURVE only admitted keys reach it.
   */
  readonly admin?: boolean | undefined
  /** Failure detection: heartbeat interval and timeout, adaptive bound, revival. Defaults in `Liveness.defaults`. */
  readonly liveness?: Liveness.LivenessOptions | undefined
  /**
   * Circuit breaker per connected node; `false` turns breakers off. Defaults in `CircuitBreaker.defaults` (opens
   * after 5 consecutive failures or half of the last 20 calls failing; trial after 1 s, doubling up to 30 s).
   */
  readonly circuitBreaker?: CircuitBreaker.CircuitBreakerOptions | false | undefined
  /**
   * Most calls this node keeps in flight to one node; beyond, a call is routed to another instance or fails at
   * once with `overloaded` (reason `concurrency-limit`). Default 10,000 (a node's default `maxConcurrentCalls`).
   */
  readonly maxCallsPerTarget?: number | undefined
  /** How a call by service name picks among live instances (see `Routing`). Default `least-outstanding`. */
  readonly routing?: Routing.Strategy | undefined
}

/**
 * Options with defaults applied and durations in milliseconds.
 *
 * @since 0.1.0
 */
export interface ResolvedNodeOptions {
  readonly id: string
  readonly bind: ReadonlyArray<string>
  readonly peers: ReadonlyArray<string>
  readonly defaultTimeoutMs: number
  readonly helloTimeoutMs: number
  readonly maxConcurrentCalls: number
  readonly meta: { readonly [key: string]: string }
  readonly clientInterceptors: ReadonlyArray<ClientInterceptor>
  readonly serverInterceptors: ReadonlyArray<ServerInterceptor>
  readonly retry: DeliveryPolicy.ResolvedRetryOptions
  readonly log: Log.LogOptions | undefined
  readonly metricsHttp: Prometheus.HttpOptions | undefined
  readonly admin: boolean
  readonly liveness: Liveness.ResolvedLivenessOptions
  readonly circuitBreaker: CircuitBreaker.ResolvedCircuitBreakerOptions | undefined
  readonly maxCallsPerTarget: number
  readonly routing: Routing.Strategy
}

/**
 * The defaults, less the generated id.
 *
 * @since 0.1.0
 */
export const defaults = Object.freeze({
  bind: ["tcp://127.0.0.1:*"] as ReadonlyArray<string>,
  peers: [] as ReadonlyArray<string>,
  defaultTimeoutMs: 10_000,
  helloTimeoutMs: 5_000,
  maxConcurrentCalls: 10_000,
  maxCallsPerTarget: 10_000,
  routing: "least-outstanding" as Routing.Strategy,
})

/**
 * Applies defaults and checks ranges; fails with `RpcError` code `invalid_argument` naming the field.
 *
 * @since 0.1.0
 */
export const resolve = (options: NodeOptions = {}): Effect.Effect<ResolvedNodeOptions, RpcError> =>
  Effect.suspend(() => {
    const ms = (name: string, input: Duration.Input | undefined, fallback: number): number | string => {
      if (input === undefined) return fallback
      const value = Duration.fromInput(input)
      if (value._tag === "None") return `${name} is not a duration`
      const millis = Duration.toMillis(value.value)
      return Number.isFinite(millis) && millis > 0 ? millis : `${name} must be a positive, finite duration`
    }
    const defaultTimeoutMs = ms("defaultTimeout", options.defaultTimeout, defaults.defaultTimeoutMs)
    const helloTimeoutMs = ms("helloTimeout", options.helloTimeout, defaults.helloTimeoutMs)
    const maxConcurrentCalls = options.maxConcurrentCalls ?? defaults.maxConcurrentCalls
    const id = options.id ?? `node-${randomBytes(4).toString("hex")}`
    const problems = [defaultTimeoutMs, helloTimeoutMs].filter((v): v is string => typeof v === "string")
    if (!Number.isInteger(maxConcurrentCalls) || maxConcurrentCalls < 1)
      problems.push("maxConcurrentCalls must be >= 1")
    if (id.length === 0 || id.length > 128) problems.push("id must have 1-128 characters")
    const metricsPort = options.metricsHttp?.port
    if (metricsPort !== undefined && (!Number.isInteger(metricsPort) || metricsPort < 0 || metricsPort > 65535))
      problems.push("metricsHttp.port must be 0-65535")
    const retry = DeliveryPolicy.resolve(options.retry)
    if (typeof retry === "string") problems.push(retry)
    const liveness = Liveness.resolve(options.liveness)
    if (typeof liveness === "string") problems.push(liveness)
    const breaker = options.circuitBreaker === false ? undefined : CircuitBreaker.resolve(options.circuitBreaker)
    if (typeof breaker === "string") problems.push(breaker)
    const maxCallsPerTarget = options.maxCallsPerTarget ?? defaults.maxCallsPerTarget
    if (!Number.isInteger(maxCallsPerTarget) || maxCallsPerTarget < 1) problems.push("maxCallsPerTarget must be >= 1")
    const routing = options.routing ?? defaults.routing
    if (routing !== "least-outstanding" && routing !== "power-of-two-choices") {
      problems.push(`routing must be "least-outstanding" or "power-of-two-choices"`)
    }
    if (problems.length > 0) {
      return Effect.fail(
        new RpcError({ code: "invalid_argument", message: `invalid node options: ${problems.join("; ")}` }),
      )
    }
    return Effect.succeed({
      id,
      bind: options.bind ?? defaults.bind,
      peers: options.peers ?? defaults.peers,
      defaultTimeoutMs: defaultTimeoutMs as number,
      helloTimeoutMs: helloTimeoutMs as number,
      maxConcurrentCalls,
      meta: options.meta ?? {},
      clientInterceptors: options.clientInterceptors ?? [],
      serverInterceptors: options.serverInterceptors ?? [],
      retry: retry as DeliveryPolicy.ResolvedRetryOptions,
      log: options.log,
      metricsHttp: options.metricsHttp,
      admin: options.admin ?? true,
      liveness: liveness as Liveness.ResolvedLivenessOptions,
      circuitBreaker: breaker as CircuitBreaker.ResolvedCircuitBreakerOptions | undefined,
      maxCallsPerTarget,
      routing,
    })
  })
