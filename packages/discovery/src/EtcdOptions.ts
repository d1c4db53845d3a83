/**
 * Options of the etcd backend, their defaults, and the one function that applies them. `fromEnv` reads the
 * same fields from `ZACTOR_ETCD_*` environment variables.
 *
 * @since 0.1.0
 */
import { Discovery } from "@zactor/core"
import { Config, Duration, Effect, Option } from "effect"
import { envReader } from "./internal/envReader.ts"

/**
 * Options of the etcd backend.
 *
 * @since 0.1.0
 */
export interface EtcdOptions {
  /** etcd client URLs. Default `["http://127.0.0.1:2379"]`. */
  readonly endpoints?: ReadonlyArray<string> | undefined
  /** Cluster name: members of one cluster live under one key prefix. Default `"zactor"`. */
  readonly cluster?: string | undefined
  /** Key prefix of all clusters. Keys are `<prefix><cluster>/members/<nodeId>`. Default `"/zactor/"`. */
  readonly prefix?: string | undefined
  /**
   * Lease TTL, rounded up to whole seconds (etcd's unit; etcd raises very short TTLs to its own minimum,
   * about 2 s). A crashed node's entry disappears this long after its last keepalive. Default 5 s.
   */
  readonly leaseTtl?: Duration.Input | undefined
  /** Deadline of each etcd request (not of watches). Default 2 s. */
  readonly requestTimeout?: Duration.Input | undefined
  /** Pause between attempts while etcd is unreachable (registration, resync). Default 500 ms. */
  readonly retryInterval?: Duration.Input | undefined
  /** Host published instead of a wildcard bind address (`tcp://0.0.0.0:port`). Default none. */
  readonly advertiseHost?: string | undefined
  /** Credentials when etcd has authentication on. Default none. */
  readonly auth?: { readonly username: string; readonly password: string } | undefined
}

/**
 * Options with defaults applied, durations in milliseconds (the lease TTL in seconds, etcd's unit).
 *
 * @since 0.1.0
 */
export interface ResolvedEtcdOptions {
  readonly endpoints: ReadonlyArray<string>
  readonly cluster: string
  readonly prefix: string
  readonly leaseTtlSeconds: number
  readonly requestTimeoutMs: number
  readonly retryIntervalMs: number
  readonly advertiseHost: string | undefined
  readonly auth: { readonly username: string; readonly password: string } | undefined
}

/**
 * The defaults.
 *
 * @since 0.1.0
 */
export const defaults = Object.freeze({
  endpoints: ["http://127.0.0.1:2379"] as ReadonlyArray<string>,
  cluster: "zactor",
  prefix: "/zactor/",
  leaseTtlSeconds: 5,
  requestTimeoutMs: 2000,
  retryIntervalMs: 500,
})

/**
 * Applies defaults and checks ranges; fails with `InvalidOptions` naming each bad field.
 *
 * @since 0.1.0
 */
export const resolve = (options: EtcdOptions = {}): Effect.Effect<ResolvedEtcdOptions, Discovery.DiscoveryError> =>
  Effect.suspend(() => {
    const problems: Array<string> = []
    const ms = (name: string, input: Duration.Input | undefined, fallback: number): number => {
      if (input === undefined) return fallback
      const value = Duration.fromInput(input)
      const millis = Option.isSome(value) ? Duration.toMillis(value.value) : Number.NaN
      if (!Number.isFinite(millis) || millis < 1) problems.push(`${name} must be a positive, finite duration`)
      return millis
    }
    const endpoints = options.endpoints ?? defaults.endpoints
    const cluster = options.cluster ?? defaults.cluster
    const prefix = options.prefix ?? defaults.prefix
    const leaseTtlSeconds = Math.ceil(ms("leaseTtl", options.leaseTtl, defaults.leaseTtlSeconds * 1000) / 1000)
    const requestTimeoutMs = ms("requestTimeout", options.requestTimeout, defaults.requestTimeoutMs)
    const retryIntervalMs = ms("retryInterval", options.retryInterval, defaults.retryIntervalMs)
    if (endpoints.length === 0 || !endpoints.every((e) => /^https?:\/\/[^/]+\/?$/.test(e)))
      problems.push("endpoints must be http(s)://host:port URLs")
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(cluster)) problems.push("cluster must be 1-64 of [A-Za-z0-9._-]")
    if (prefix.length === 0 || !prefix.endsWith("/")) problems.push('prefix must end with "/"')
    if (problems.length > 0) {
      return Effect.fail(
        new Discovery.DiscoveryError({
          reason: "InvalidOptions",
          message: `invalid etcd options: ${problems.join("; ")}`,
        }),
      )
    }
    return Effect.succeed({
      endpoints,
      cluster,
      prefix,
      leaseTtlSeconds,
      requestTimeoutMs,
      retryIntervalMs,
      advertiseHost: options.advertiseHost,
      auth: options.auth,
    })
  })

/**
 * Reads options from the environment: `ZACTOR_ETCD_ENDPOINTS` (comma-separated), `_CLUSTER`, `_PREFIX`,
 * `_LEASE_TTL_MS`, `_REQUEST_TIMEOUT_MS`, `_ADVERTISE_HOST`, `_USERNAME` and `_PASSWORD`; unset ones keep
 * the defaults (or the values in `base`).
 *
 * @since 0.1.0
 */
export const fromEnv = (base: EtcdOptions = {}): Effect.Effect<EtcdOptions, Discovery.DiscoveryError> =>
  Effect.gen(function* () {
    const read = envReader("etcd")
    const endpoints = yield* read(Config.String("ZACTOR_ETCD_ENDPOINTS"))
    const username = yield* read(Config.String("ZACTOR_ETCD_USERNAME"))
    const password = yield* read(Config.String("ZACTOR_ETCD_PASSWORD"))
    return {
      endpoints:
        endpoints
          ?.split(",")
          .map((e) => e.trim())
          .filter((e) => e.length > 0) ?? base.endpoints,
      cluster: (yield* read(Config.String("ZACTOR_ETCD_CLUSTER"))) ?? base.cluster,
      prefix: (yield* read(Config.String("ZACTOR_ETCD_PREFIX"))) ?? base.prefix,
      leaseTtl: (yield* read(Config.Int("ZACTOR_ETCD_LEASE_TTL_MS"))) ?? base.leaseTtl,
      requestTimeout: (yield* read(Config.Int("ZACTOR_ETCD_REQUEST_TIMEOUT_MS"))) ?? base.requestTimeout,
      advertiseHost: (yield* read(Config.String("ZACTOR_ETCD_ADVERTISE_HOST"))) ?? base.advertiseHost,
      auth: username !== undefined && password !== undefined ? { username, password } : base.auth,
    }
  })
