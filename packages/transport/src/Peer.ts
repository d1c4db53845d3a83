/**
 * Peers: the two kinds of connection a transport has. An outbound peer is one we connected to (one DEALER
 * socket each); an inbound peer is one that connected to our bound endpoints (a routing id on our ROUTER).
 * Replies to an inbound peer go back through the socket it arrived on, so peer ids are all a caller needs.
 *
 * @since 0.1.0
 */

declare const PeerIdBrand: unique symbol

/**
 * Opaque id of one connection: `out:<n>:<endpoint>` for outbound peers, `in:<routing id>` for inbound ones.
 *
 * @since 0.1.0
 */
export type PeerId = string & { readonly [PeerIdBrand]: "PeerId" }

/**
 * One connection and what is known about it.
 *
 * @since 0.1.0
 */
export interface Peer {
  /** The id to `send` to. Stable for the life of the connection, including reconnects of an outbound peer. */
  readonly id: PeerId
  /** `outbound` if we connected to it, `inbound` if it connected to us. */
  readonly direction: "outbound" | "inbound"
  /**
   * The authenticated CURVE public key (Z85) of the peer: for outbound peers the server key we verified, for
   * inbound peers the client key proven on this connection. `undefined` without CURVE.
   */
  readonly publicKey: string | undefined
}

/**
 * Builds a peer id; for transport implementations.
 *
 * @since 0.1.0
 */
export const makeId = (direction: "outbound" | "inbound", discriminator: string): PeerId =>
  `${direction === "outbound" ? "out" : "in"}:${discriminator}` as PeerId

/**
 * Whether a peer id names an inbound peer.
 *
 * @since 0.1.0
 */
export const isInbound = (id: PeerId): boolean => id.startsWith("in:")
