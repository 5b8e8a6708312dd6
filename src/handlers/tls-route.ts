/**
 * TLS-terminating routes: the mux completes the handshake with its own certificates
 * and the route gets the decrypted stream. Custom protocols over TLS are chosen by ALPN:
 * each terminating route has a `tls.Server` whose `ALPNCallback` picks the first of the
 * route's ALPN values that the client offers.
 *
 * `terminating` is the layer the route kinds put under a route with `terminateTls`: the
 * route's own delivery gets the decrypted socket.
 *
 * A plain `tls.Server` does not destroy sockets whose handshake fails or stalls; this one
 * does, on `tlsClientError` (handshake timeout included).
 */
import type { Socket } from 'node:net'
import tls, { type TLSSocket, type TlsOptions } from 'node:tls'
import { InvalidRouteError } from '../errors.js'
import { inheritPeer } from '../peer.js'
import type { ConnectionInfo, Match, TcpRoute, TlsMatch } from '../types.js'
import { replay, type Deliver, type RouteEnv } from './route.js'

export type Decrypted = (socket: TLSSocket, info: ConnectionInfo) => void

const kPending = Symbol('portmux.tlsRoute')
interface Waiting extends Socket { [kPending]?: { info: ConnectionInfo, next: Decrypted } }

function onSecureConnection (tlsSocket: TLSSocket & { _parent?: Waiting | null }): void {
  const raw = tlsSocket._parent
  const pending = raw?.[kPending]
  if (raw === undefined || raw === null || pending === undefined) {
    tlsSocket.destroy()
    return
  }
  raw[kPending] = undefined
  inheritPeer(raw, tlsSocket)
  const info: ConnectionInfo = { ...pending.info }
  if (typeof tlsSocket.alpnProtocol === 'string') info.alpn = [tlsSocket.alpnProtocol]
  pending.next(tlsSocket, info)
}

function onTlsClientError (_err: Error, tlsSocket: TLSSocket): void {
  tlsSocket.destroy()
}

/** One terminating server per route, made on first use with the mux's TLS options of that moment. */
export class TlsTerminator {
  private readonly servers = new Map<string, tls.Server>()

  constructor (private readonly credentials: () => TlsOptions | null) {}

  /** Whether this mux can terminate TLS at all. */
  get available (): boolean {
    return this.credentials() !== null
  }

  terminate (socket: Socket, route: string, alpn: readonly string[] | undefined, info: ConnectionInfo, head: Buffer, next: Decrypted): void {
    const server = this.server(route, alpn)
    if (server === null) {
      socket.destroy()
      return
    }
    // Half-open stays allowed, as on every raw route: the route sees the client's end and
    // may still answer.
    ;(socket as Waiting)[kPending] = { info, next }
    replay(socket, head)
    server.emit('connection', socket)
  }

  private server (route: string, alpn: readonly string[] | undefined): tls.Server | null {
    let server = this.servers.get(route)
    if (server !== undefined) return server
    const credentials = this.credentials()
    if (credentials === null) return null
    const { ALPNProtocols: _ignored, ...options } = credentials
    if (alpn !== undefined) {
      options.ALPNCallback = ({ protocols }) => alpn.find((p) => protocols.includes(p))
    }
    server = tls.createServer({ ...options, allowHalfOpen: true })
    server.on('secureConnection', onSecureConnection)
    server.on('tlsClientError', onTlsClientError)
    this.servers.set(route, server)
    return server
  }

  /** The development certificate arrived: servers made from now on use it; existing ones switch to it. */
  setSecureContext (options: TlsOptions): void {
    for (const server of this.servers.values()) server.setSecureContext(options)
  }
}

const EMPTY = Buffer.alloc(0)

function isTlsMatch (m: Match): m is 'tls' | { tls: TlsMatch } {
  return m === 'tls' || (typeof m === 'object' && m !== null && !(m instanceof RegExp) && 'tls' in m)
}

/**
 * The ALPN values a terminating route may agree to: those of its `{ tls: { alpn } }`
 * patterns, or `undefined` (the client's choice stands) when one of its patterns names none.
 */
function routeAlpn (matches: Match[]): string[] | undefined {
  const lists = matches.map((m) => m === 'tls' || !isTlsMatch(m) || m.tls.alpn === undefined ? undefined : [m.tls.alpn].flat())
  return lists.every((a) => a !== undefined) ? [...new Set(lists.flat() as string[])] : undefined
}

/** `terminateTls: true`: finish the handshake with the server's certificates, then deliver the decrypted socket. */
export function terminating (name: string, route: TcpRoute, env: RouteEnv, deliver: Deliver): Deliver {
  const terminator = env.terminator
  if (terminator === null) throw new InvalidRouteError(name, 'terminateTls needs the mux\'s tls option')
  const matches = Array.isArray(route.match) ? route.match : [route.match]
  if (!matches.every(isTlsMatch)) throw new InvalidRouteError(name, 'terminateTls is for TLS routes only: every match must be \'tls\' or { tls }')
  const alpn = routeAlpn(matches)
  return (socket, info, head) => {
    terminator.terminate(socket, name, alpn, info, head, (decrypted, decryptedInfo) => {
      env.secured(socket)
      deliver(decrypted, decryptedInfo, EMPTY)
    })
  }
}
