/**
 * The ZAP handler (ZeroMQ RFC 27): decides which CURVE client keys may connect to a server socket. zeromq.js
 * ships no authenticator, so this module binds a ROUTER to `inproc://zeromq.zap.01` in a zeromq `Context`;
 * libzmq asks it about every CURVE handshake of every server socket in that context. Only one such socket can
 * be bound per context, so the handler is shared: one per context, process-wide, reference-counted by
 * registrations, and requests are dispatched by ZAP *domain* (the server socket's `zapDomain` option) to the
 * registration of that domain.
 *
 * It fails closed: an unknown domain, a mechanism other than CURVE or a malformed request is answered 400, a
 * throwing allow-list 500, and no request can stop the handler loop. A server must set `zapDomain` to its
 * registered domain and `zapEnforceDomain: true`, so that while no handler is bound (before the first
 * registration, after the last release) libzmq refuses every client instead of admitting any key.
 *
 * It does not tell which routing id belongs to which approved key (the ZAP request does not carry it): that is
 * the key-binding proof of `Curve.ts`.
 *
 * @since 0.1.0
 */
import { randomUUID } from "node:crypto"
import { Effect, Result, type Scope } from "effect"
import * as zmq from "zeromq"
import * as Z85 from "./internal/z85.ts"

// ---------------------------------------------------------------------------------------------------------------
// Models
// ---------------------------------------------------------------------------------------------------------------

/**
 * The inproc endpoint libzmq sends ZAP requests to (fixed by RFC 27).
 *
 * @since 0.1.0
 */
export const ENDPOINT = "inproc://zeromq.zap.01"

/**
 * ZAP status codes this handler answers with: 200 admitted, 400 refused, 500 internal error (refused).
 *
 * @since 0.1.0
 */
export type ZapStatusCode = "200" | "400" | "500"

/**
 * One admission decision, reported to the registration of the request's domain (e.g. to count auth failures).
 *
 * @since 0.1.0
 */
export interface ZapDecision {
  /** The ZAP domain of the server socket. */
  readonly domain: string
  /** The Z85 public key the client presented; `undefined` if the request carried no CURVE key. */
  readonly clientKey: string | undefined
  /** Whether the client was admitted. */
  readonly allowed: boolean
  /** The client's IP address as libzmq reports it (e.g. `127.0.0.1`), without the port. */
  readonly address: string
  /** The security mechanism of the request (`CURVE`, or what a misconfigured server asked about). */
  readonly mechanism: string
  /** The status code sent back to libzmq. */
  readonly statusCode: ZapStatusCode
  /** The status text sent back to libzmq, saying why. */
  readonly statusText: string
}

/**
 * Decides whether a Z85 client public key may connect. Called synchronously in the handler loop: keep it cheap
 * (a `Set` lookup). A throw refuses the client with status 500.
 *
 * @since 0.1.0
 */
export type IsAllowed = (clientKey: string) => boolean

/**
 * Options of `register`.
 *
 * @since 0.1.0
 */
export interface RegisterOptions {
  /** The zeromq context of the server sockets. Default: zeromq's global `context`, used by every socket by default. */
  readonly context?: zmq.Context | undefined
}

interface Registration {
  readonly isAllowed: IsAllowed
  readonly onDecision: ((decision: ZapDecision) => void) | undefined
}

interface Handler {
  readonly socket: zmq.Router
  readonly registrations: Map<string, Registration>
  /** Resolves when the socket is bound; rejects if it could not be. */
  readonly ready: Promise<void>
}

// ---------------------------------------------------------------------------------------------------------------
// Process-wide registry
// ---------------------------------------------------------------------------------------------------------------

/**
 * Handlers by context, kept on `globalThis` so that duplicated installs of this package in one process share
 * them instead of racing for the one ZAP endpoint of a context.
 */
const handlers: Map<zmq.Context, Handler> = (() => {
  const key = Symbol.for("@zactor/transport/ZapHandler/v1")
  const holder = globalThis as { [key]?: Map<zmq.Context, Handler> }
  const existing = holder[key]
  if (existing !== undefined) return existing
  const created = new Map<zmq.Context, Handler>()
  holder[key] = created
  return created
})()

/** How long to retry binding while a just-closed handler socket still holds the endpoint (libzmq frees it asynchronously). */
const BIND_RETRY_MS = 2_000

const bindWithRetry = async (socket: zmq.Router): Promise<void> => {
  const deadline = Date.now() + BIND_RETRY_MS
  for (;;) {
    try {
      await socket.bind(ENDPOINT)
      return
    } catch (cause) {
      const inUse = (cause as { code?: unknown } | null)?.code === "EADDRINUSE"
      if (!inUse || socket.closed || Date.now() >= deadline) throw cause
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
  }
}

const startHandler = (context: zmq.Context): Handler => {
  const socket = new zmq.Router({ context, linger: 0 })
  const registrations = new Map<string, Registration>()
  const ready = bindWithRetry(socket)
  const handler: Handler = { socket, registrations, ready }
  ready.then(
    () => serve(handler),
    () => undefined, // reported to the registrations awaiting `ready`
  )
  return handler
}

const stopHandler = (context: zmq.Context, handler: Handler): void => {
  if (handlers.get(context) === handler) handlers.delete(context)
  // A pending receive rejects on close, which ends the serve loop.
  if (!handler.socket.closed) handler.socket.close()
}

// ---------------------------------------------------------------------------------------------------------------
// Request handling
// ---------------------------------------------------------------------------------------------------------------

/** The handler loop: one request at a time (zeromq.js allows one pending receive and one send per socket). */
const serve = async (handler: Handler): Promise<void> => {
  const { socket } = handler
  while (!socket.closed) {
    let request: Array<Buffer>
    try {
      request = await socket.receive()
    } catch {
      if (socket.closed) return
      continue
    }
    const reply = answer(request, handler.registrations)
    if (reply === undefined) continue
    try {
      // A ROUTER without `mandatory` never blocks and drops replies to vanished peers.
      await socket.send(reply)
    } catch {
      if (socket.closed) return
    }
  }
}

/**
 * Answers one ZAP request. The ROUTER delivers
 * `[pipe id, "", version, request id, domain, address, identity, mechanism, ...credentials]`;
 * the reply is `[pipe id, "", "1.0", request id, status code, status text, user id, metadata]`.
 * Returns `undefined` only when the request is too short to carry a request id (libzmq never sends that).
 */
const answer = (
  request: ReadonlyArray<Buffer>,
  registrations: ReadonlyMap<string, Registration>,
): Array<Buffer | string> | undefined => {
  const [pipeId, delimiter, version, requestId, domainFrame, addressFrame, _identity, mechanismFrame] = request
  if (pipeId === undefined || delimiter === undefined || version === undefined || requestId === undefined) {
    return undefined
  }
  const reply = (statusCode: ZapStatusCode, statusText: string, userId = ""): Array<Buffer | string> => [
    pipeId,
    "",
    "1.0",
    requestId,
    statusCode,
    statusText,
    userId,
    "",
  ]
  if (delimiter.length !== 0 || version.toString("latin1") !== "1.0") {
    return reply("400", "Unsupported ZAP version or envelope")
  }
  if (domainFrame === undefined || addressFrame === undefined || mechanismFrame === undefined) {
    return reply("400", "Malformed ZAP request")
  }
  const domain = domainFrame.toString("utf8")
  const registration = registrations.get(domain)
  if (registration === undefined) return reply("400", "Unknown ZAP domain")

  const mechanism = mechanismFrame.toString("latin1")
  const decide = (statusCode: ZapStatusCode, statusText: string, clientKey: string | undefined) => {
    const allowed = statusCode === "200"
    report(registration, {
      domain,
      clientKey,
      allowed,
      address: addressFrame.toString("latin1"),
      mechanism,
      statusCode,
      statusText,
    })
    return reply(statusCode, statusText, allowed && clientKey !== undefined ? clientKey : "")
  }
  if (mechanism !== "CURVE") return decide("400", "Mechanism not allowed", undefined)
  const credentials = request[8]
  const clientKey = credentials === undefined ? undefined : Result.getOrUndefined(Z85.encodeKey(credentials))
  if (clientKey === undefined || request.length !== 9) return decide("400", "Malformed CURVE credentials", undefined)
  let allowed: boolean
  try {
    allowed = registration.isAllowed(clientKey) === true
  } catch {
    return decide("500", "Internal error", clientKey)
  }
  return allowed ? decide("200", "OK", clientKey) : decide("400", "Client key not allowed", clientKey)
}

const report = (registration: Registration, decision: ZapDecision): void => {
  try {
    registration.onDecision?.(decision)
  } catch {
    // An observer's bug must not take admission down with it.
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Constructors
// ---------------------------------------------------------------------------------------------------------------

/**
 * A fresh ZAP domain, unique to this process run: `<prefix>/<uuid>`. One per server transport keeps their
 * allow-lists apart.
 *
 * @since 0.1.0
 */
export const makeDomain = (prefix = "zactor"): string => `${prefix}/${randomUUID()}`

/**
 * Admits the CURVE clients for which `isAllowed` returns true to server sockets whose `zapDomain` is `domain`,
 * until the scope closes. Starts the context's handler on its first registration and closes it after the last
 * release. Completes once the handler is bound, so connections accepted afterwards are decided by it.
 * `onDecision` receives every decision for this domain; it runs synchronously and its throws are ignored.
 *
 * Dies (a defect, not a typed failure) if `domain` is already registered in this context, or if the ZAP
 * endpoint is held by a handler outside this module.
 *
 * @since 0.1.0
 */
export const register = (
  domain: string,
  isAllowed: IsAllowed,
  onDecision?: (decision: ZapDecision) => void,
  options: RegisterOptions = {},
): Effect.Effect<void, never, Scope.Scope> => {
  const context = options.context ?? zmq.context
  const registration: Registration = { isAllowed, onDecision }
  return Effect.acquireRelease(
    Effect.suspend(() => {
      const current = handlers.get(context)
      if (current?.registrations.has(domain) === true) {
        return Effect.die(new Error(`ZAP domain "${domain}" is already registered in this zeromq context`))
      }
      const handler = current ?? startHandler(context)
      handlers.set(context, handler)
      handler.registrations.set(domain, registration)
      return Effect.succeed(handler)
    }),
    (handler) =>
      Effect.sync(() => {
        if (handler.registrations.get(domain) === registration) handler.registrations.delete(domain)
        if (handler.registrations.size === 0) stopHandler(context, handler)
      }),
  ).pipe(
    Effect.flatMap((handler) =>
      Effect.tryPromise({
        try: () => handler.ready,
        catch: (cause) => new Error(`cannot bind the ZAP handler to ${ENDPOINT}: ${String(cause)}`, { cause }),
      }),
    ),
    Effect.orDie,
  )
}
