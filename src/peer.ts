/**
 * What a trusted PROXY header said about a connection, kept on its sockets. The client
 * address it names replaces what the socket reports, so that everything above (Fastify's
 * `request.ip`, Express's `req.ip`, any `socket.remoteAddress`) sees the real client rather
 * than the load balancer; the whole header (TLVs included) is there for `proxyHeaderOf`.
 *
 * Shared by the pipeline, which sets it on the accepted socket, and by the handlers, which
 * carry it over to the TLS socket they make on top.
 */
import net, { type Socket } from 'node:net'
import type { ProxyHeader } from './sniff/proxy-header.js'

export interface Peer {
  address: string
  port: number
}

const kPeer = Symbol('portmux.peer')
const kHeader = Symbol('portmux.proxyHeader')
interface WithPeer extends Socket { [kPeer]?: Peer, [kHeader]?: ProxyHeader }

/** Make `socket` report `peer` as its remote end. */
export function setPeer (socket: Socket, peer: Peer): void {
  ;(socket as WithPeer)[kPeer] = peer
  Object.defineProperties(socket, {
    remoteAddress: { value: peer.address, configurable: true },
    remotePort: { value: peer.port, configurable: true },
    remoteFamily: { value: net.isIPv6(peer.address) ? 'IPv6' : 'IPv4', configurable: true }
  })
}

/** The peer set on `socket` by `setPeer`, if any. */
export function peerOf (socket: Socket): Peer | undefined {
  return (socket as WithPeer)[kPeer]
}

/** Keep the PROXY header a connection arrived with. */
export function setProxyHeader (socket: Socket, header: ProxyHeader): void {
  ;(socket as WithPeer)[kHeader] = header
}

/** A socket made on top of `from` (TLS) reports the same peer and header. */
export function inheritPeer (from: Socket, to: Socket): void {
  const peer = peerOf(from)
  if (peer !== undefined) setPeer(to, peer)
  const header = (from as WithPeer)[kHeader]
  if (header !== undefined) setProxyHeader(to, header)
}

/** Anything that leads to a connection's socket: the socket, a Node or HTTP/2 request, a Fastify request. */
export type HasSocket =
  | Socket
  | { socket: Socket | null | undefined }
  | { stream: { session?: { socket?: Socket | null } | null } }
  | { raw: { socket: Socket | null | undefined } | { stream: { session?: { socket?: Socket | null } | null } } }

function socketOf (target: HasSocket): Socket | undefined {
  if (target instanceof net.Socket) return target
  if ('raw' in target) return socketOf(target.raw)
  if ('stream' in target) return target.stream.session?.socket ?? undefined
  return target.socket ?? undefined
}

/**
 * The PROXY header (v1 or v2, with its TLVs) the connection of `target` arrived with from a
 * trusted peer: `undefined` when there was none. Takes a socket, a Node or HTTP/2 request, a
 * Fastify request, or a raw route's socket.
 */
export function proxyHeaderOf (target: HasSocket): ProxyHeader | undefined {
  const socket = socketOf(target)
  return socket === undefined ? undefined : (socket as WithPeer)[kHeader]
}
