/**
 * The in-process "wire" that `MemoryTransport`s share: which endpoint is bound by which transport, fake tcp
 * ports for `tcp://host:*`, the outbound connections waiting for an endpoint to be bound, and the small link
 * protocol (hello, admission, messages) two memory transports speak once linked.
 *
 * It deliberately owns no transport semantics: queues, batching, send timeouts, events, metrics and the
 * CURVE admission policy all live in `MemoryTransport`. A network never calls into a transport synchronously
 * from a registry operation: attaching a waiting connection to a newly bound endpoint happens in a microtask,
 * as a real connection would complete after `bind` returns.
 *
 * Several networks can coexist: each test can take a fresh one (`make`) so endpoints never collide, and
 * everything else uses the process-global `global` network through the `Current` reference.
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer } from "effect"
import type * as Endpoint from "./Endpoint.ts"

const TypeId = "~@zactor/transport/MemoryNetwork"

/**
 * A registry of bound endpoints through which memory transports find each other.
 *
 * @since 0.1.0
 */
export interface MemoryNetwork {
  readonly [TypeId]: typeof TypeId
  /** The resolved endpoints currently bound on this network (ROUTER and publisher endpoints), for diagnostics. */
  readonly bound: () => ReadonlyArray<string>
}

/**
 * What a bound endpoint accepts: `router` endpoints take `connect`, `publisher` endpoints take
 * `connectSubscriber`. A dialer of one kind never attaches to a listener of the other (it keeps waiting).
 *
 * @internal
 */
export type ListenerKind = "router" | "publisher"

/**
 * A message between the two ends of a link: a batch frame (DEALER/ROUTER, both directions), a publication
 * (publisher to subscriber) or a subscription change (subscriber to publisher).
 *
 * @internal
 */
export type LinkMessage =
  | { readonly _tag: "Batch"; readonly frame: Uint8Array }
  | { readonly _tag: "Publication"; readonly topic: string; readonly frame: Uint8Array }
  | { readonly _tag: "Subscription"; readonly prefix: string; readonly subscribed: boolean }

/**
 * One end of a link, as seen by the other end.
 *
 * @internal
 */
export interface LinkEnd {
  /** Hands a message to this end; `false` if it was dropped (a full subscriber buffer, a dead link). */
  readonly receive: (message: LinkMessage) => boolean
  /** The other end went away (closed, disconnected or unbound). Idempotent. */
  readonly closed: () => void
}

/**
 * What a dialer presents when it attaches: its CURVE identity (if any) and its end of the link.
 *
 * @internal
 */
export interface Hello {
  /** The client's CURVE public key; `undefined` for a plaintext client. */
  readonly clientPublicKey: string | undefined
  /** The server key the client expects; `undefined` for a plaintext client. */
  readonly serverPublicKey: string | undefined
  readonly end: LinkEnd
}

/**
 * A listener's answer to a `Hello`.
 *
 * @internal
 */
export type Admission =
  | { readonly _tag: "Accepted"; readonly end: LinkEnd }
  | { readonly _tag: "Refused"; readonly reason: "Auth" | "Protocol"; readonly detail: string }

/**
 * A bound endpoint.
 *
 * @internal
 */
export interface Listener {
  readonly kind: ListenerKind
  /** The resolved endpoint (wildcard ports replaced). */
  readonly endpoint: string
  readonly accept: (hello: Hello) => Admission
}

/**
 * A connection that wants to reach an endpoint, now and whenever it is bound again. The network calls `attach`
 * (in a microtask) each time a matching listener appears while the dialer is registered; the dialer ignores
 * calls while it is already linked.
 *
 * @internal
 */
export interface Dialer {
  readonly kind: ListenerKind
  readonly endpoint: Endpoint.Endpoint
  readonly attach: (listener: Listener) => void
}

/**
 * The mutable side of a network; for `MemoryTransport`.
 *
 * @internal
 */
export interface Registry {
  /** Binds an endpoint; returns the listener, or a message saying why the address is unavailable. */
  readonly bind: (
    endpoint: Endpoint.Endpoint,
    kind: ListenerKind,
    accept: (resolved: string) => (hello: Hello) => Admission,
  ) => Listener | string
  /** Releases a bound endpoint. Links already made are the transport's to close. */
  readonly unbind: (listener: Listener) => void
  /** Registers a dialer; it attaches to a matching listener now (in a microtask) and after every re-bind. */
  readonly dial: (dialer: Dialer) => void
  /** Unregisters a dialer. */
  readonly hangUp: (dialer: Dialer) => void
  /** A network-wide unique number for naming an inbound connection. */
  readonly nextLinkId: () => number
}

const registries = new WeakMap<MemoryNetwork, Registry>()

// Fake ports come from the IANA dynamic range, like the ones an OS picks for `tcp://host:*`.
const firstPort = 49152
const lastPort = 65535

const normalizeHost = (host: string): string => (host === "*" ? "0.0.0.0" : host === "localhost" ? "127.0.0.1" : host)

const keyOf = (endpoint: Endpoint.Endpoint, port?: number): string => {
  switch (endpoint.scheme) {
    case "tcp":
      return `tcp://${normalizeHost(endpoint.host)}:${port ?? endpoint.port}`
    case "ipc":
      return `ipc://${endpoint.path}`
    case "inproc":
      return `inproc://${endpoint.name}`
  }
}

const tcpPort = (key: string): string | undefined =>
  key.startsWith("tcp://") ? key.slice(key.lastIndexOf(":") + 1) : undefined

/**
 * Creates a network synchronously; prefer `make` inside Effect code.
 *
 * @since 0.1.0
 */
export const makeUnsafe = (): MemoryNetwork => {
  const listeners = new Map<string, Listener>()
  const dialers = new Set<Dialer>()
  let nextPort = firstPort
  let linkIds = 0

  // A listener on 0.0.0.0:p takes every host on port p, as a wildcard TCP bind does.
  const conflicts = (key: string): boolean => {
    if (listeners.has(key)) return true
    const port = tcpPort(key)
    if (port === undefined) return false
    if (key.startsWith("tcp://0.0.0.0:")) {
      for (const other of listeners.keys()) if (tcpPort(other) === port) return true
      return false
    }
    return listeners.has(`tcp://0.0.0.0:${port}`)
  }

  const lookup = (dialer: Dialer): Listener | undefined => {
    const key = keyOf(dialer.endpoint)
    const port = tcpPort(key)
    const found = listeners.get(key) ?? (port === undefined ? undefined : listeners.get(`tcp://0.0.0.0:${port}`))
    return found !== undefined && found.kind === dialer.kind ? found : undefined
  }

  // Attaching is deferred so that no transport is entered synchronously from another one's bind or connect.
  const scheduleAttach = (dialer: Dialer, listener: Listener): void =>
    queueMicrotask(() => {
      if (dialers.has(dialer) && lookup(dialer) === listener) dialer.attach(listener)
    })

  const freePort = (endpoint: Endpoint.Endpoint): number | undefined => {
    for (let tries = 0; tries <= lastPort - firstPort; tries++) {
      const port = nextPort
      nextPort = nextPort === lastPort ? firstPort : nextPort + 1
      if (!conflicts(keyOf(endpoint, port))) return port
    }
    return undefined
  }

  const registry: Registry = {
    bind: (endpoint, kind, accept) => {
      let key = keyOf(endpoint)
      if (endpoint.scheme === "tcp" && endpoint.port === "*") {
        const port = freePort(endpoint)
        if (port === undefined) return `no free fake port left for "${endpoint.raw}"`
        key = keyOf(endpoint, port)
      } else if (conflicts(key)) {
        return `address "${endpoint.raw}" is already bound on this memory network`
      }
      const listener: Listener = { kind, endpoint: key, accept: accept(key) }
      listeners.set(key, listener)
      for (const dialer of dialers) if (lookup(dialer) === listener) scheduleAttach(dialer, listener)
      return listener
    },
    unbind: (listener) => {
      if (listeners.get(listener.endpoint) === listener) listeners.delete(listener.endpoint)
    },
    dial: (dialer) => {
      dialers.add(dialer)
      const listener = lookup(dialer)
      if (listener !== undefined) scheduleAttach(dialer, listener)
    },
    hangUp: (dialer) => {
      dialers.delete(dialer)
    },
    nextLinkId: () => ++linkIds,
  }

  const network: MemoryNetwork = { [TypeId]: TypeId, bound: () => Array.from(listeners.keys()) }
  registries.set(network, registry)
  return network
}

/**
 * Creates an isolated network: endpoints bound on it are invisible to every other network.
 *
 * @since 0.1.0
 */
export const make = (): Effect.Effect<MemoryNetwork> => Effect.sync(makeUnsafe)

/**
 * The process-global network, used by memory transports that are given no network.
 *
 * @since 0.1.0
 */
export const global: MemoryNetwork = makeUnsafe()

/**
 * The network a `MemoryTransport` uses when its options name none. Default: `global`.
 *
 * @since 0.1.0
 */
export const Current = Context.Reference<MemoryNetwork>("@zactor/transport/MemoryNetwork/Current", {
  defaultValue: () => global,
})

/**
 * Provides a fresh, isolated network as `Current`, e.g. one per test.
 *
 * @since 0.1.0
 */
export const layer: Layer.Layer<never> = Layer.effect(Current, make())

/**
 * Whether a value is a memory network.
 *
 * @since 0.1.0
 */
export const isMemoryNetwork = (u: unknown): u is MemoryNetwork =>
  typeof u === "object" && u !== null && (u as { [TypeId]?: unknown })[TypeId] === TypeId

/**
 * The mutable registry behind a network; for `MemoryTransport`.
 *
 * @internal
 */
export const registry = (network: MemoryNetwork): Registry => {
  const found = registries.get(network)
  if (found === undefined) throw new Error("not a network made by MemoryNetwork.make")
  return found
}
