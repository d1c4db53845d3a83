/**
 * Endpoint strings: parsing and validation of `tcp://`, `ipc://` and `inproc://` addresses before they reach
 * ZeroMQ, so a typo becomes a clear `InvalidEndpoint` error instead of an `EINVAL` from deep inside libzmq.
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import { TransportError } from "./TransportError.ts"

/**
 * A parsed endpoint. `port` is `"*"` for an ephemeral port to be chosen at bind time.
 *
 * @since 0.1.0
 */
export type Endpoint =
  | { readonly scheme: "tcp"; readonly host: string; readonly port: number | "*"; readonly raw: string }
  | { readonly scheme: "ipc"; readonly path: string; readonly raw: string }
  | { readonly scheme: "inproc"; readonly name: string; readonly raw: string }

const hostPattern =
  /^(\*|\[[0-9a-fA-F:.]+\]|[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*)$/

/**
 * Parses an endpoint string, returning a descriptive message for anything ZeroMQ would reject.
 *
 * @since 0.1.0
 */
export const parse = (raw: string): Endpoint | string => {
  const match = /^([a-z]+):\/\/(.*)$/.exec(raw)
  if (match === null) return `endpoint "${raw}" must look like tcp://host:port, ipc://path or inproc://name`
  const [, scheme, rest = ""] = match
  switch (scheme) {
    case "tcp": {
      const colon = rest.lastIndexOf(":")
      if (colon <= 0) return `tcp endpoint "${raw}" needs host:port`
      const host = rest.slice(0, colon)
      const portText = rest.slice(colon + 1)
      if (!hostPattern.test(host)) return `tcp endpoint "${raw}" has an invalid host "${host}"`
      if (portText === "*" || portText === "0") return { scheme, host, port: "*", raw }
      if (!/^[0-9]{1,5}$/.test(portText)) return `tcp endpoint "${raw}" has an invalid port "${portText}"`
      const port = Number(portText)
      if (port < 1 || port > 65535) return `tcp endpoint "${raw}" has port ${port} outside 1..65535`
      return { scheme, host, port, raw }
    }
    case "ipc":
      if (rest.length === 0) return `ipc endpoint "${raw}" needs a path`
      // sockaddr_un.sun_path holds 107 bytes plus the terminator on Linux.
      if (Buffer.byteLength(rest) > 107) return `ipc endpoint "${raw}" has a path longer than 107 bytes`
      return { scheme, path: rest, raw }
    case "inproc":
      if (rest.length === 0) return `inproc endpoint "${raw}" needs a name`
      return { scheme, name: rest, raw }
    default:
      return `endpoint "${raw}" uses unsupported scheme "${scheme}" (use tcp, ipc or inproc)`
  }
}

/**
 * Parses an endpoint, failing with `TransportError` reason `InvalidEndpoint`.
 *
 * @since 0.1.0
 */
export const validate = (raw: string): Effect.Effect<Endpoint, TransportError> => {
  const parsed = parse(raw)
  return typeof parsed === "string"
    ? Effect.fail(new TransportError({ reason: "InvalidEndpoint", message: parsed, endpoint: raw }))
    : Effect.succeed(parsed)
}

/**
 * Whether an endpoint asks for a port (or name) to be chosen at bind time.
 *
 * @since 0.1.0
 */
export const isWildcard = (endpoint: Endpoint): boolean => endpoint.scheme === "tcp" && endpoint.port === "*"
