/**
 * The datagram side of liveness: one UDP socket per node, on which it answers probes (PING -> PONG, one envelope
 * per datagram) and receives the answers to its own. It exists because TCP is the wrong place to look for a sign
 * of life on a lossy link: a lost segment holds everything behind it, and each lost retransmission doubles the
 * wait, so a peer that answers at once can be silent on its connection for seconds (measured on a link dropping
 * 20 % of packets: silences of 1-3.5 s a few times a minute, docs/LIVENESS.md). A datagram is never held behind
 * another one.
 *
 * This module only moves bytes; what to send and what an answer means is `internal/liveness.ts`. The socket is
 * unref'd: it never keeps a process alive.
 */
import * as Dgram from "node:dgram"

/** An open probe socket. */
export interface ProbeSocket {
  /** The UDP port it is bound to. */
  readonly port: number
  /** Sends one datagram; failures (unreachable host, wrong address family) are ignored: a probe is best effort. */
  readonly send: (host: string, port: number, bytes: Uint8Array) => void
  readonly close: () => void
}

/** The host a UDP socket binds for a node bound to `host` by TCP (`*` means every interface). */
export const bindHost = (tcpHost: string | undefined): string =>
  tcpHost === undefined || tcpHost === "*" ? "0.0.0.0" : unbracket(tcpHost)

/** `[::1]` -> `::1`: URLs bracket IPv6 addresses, sockets do not. */
export const unbracket = (host: string): string => (host.startsWith("[") ? host.slice(1, -1) : host)

/**
 * Opens a probe socket on `host`, port chosen by the system; `undefined` (and no probes) if it cannot be bound.
 */
export const open = (
  host: string,
  onMessage: (bytes: Uint8Array, address: string, port: number) => void,
): Promise<ProbeSocket | undefined> =>
  new Promise((resolve) => {
    const socket = Dgram.createSocket({ type: host.includes(":") ? "udp6" : "udp4" })
    const failed = () => {
      socket.close()
      resolve(undefined)
    }
    socket.once("error", failed)
    socket.on("message", (bytes, info) => onMessage(bytes, info.address, info.port))
    socket.bind(0, host, () => {
      socket.off("error", failed)
      // Later errors (an ICMP unreachable reported on send) say nothing a timeout would not: ignore them.
      socket.on("error", () => undefined)
      socket.unref()
      let closed = false
      resolve({
        port: socket.address().port,
        send: (toHost, toPort, bytes) => {
          if (closed) return
          try {
            socket.send(bytes, toPort, toHost, () => undefined)
          } catch {
            // Closed concurrently or an invalid address: nothing to do for a best-effort probe.
          }
        },
        close: () => {
          if (closed) return
          closed = true
          socket.close()
        },
      })
    })
  })
