/**
 * What a route kind is. A kind is one module that checks its part of a raw route when the
 * route is added (an `InvalidRouteError` at register time, never at the first connection)
 * and returns the function that delivers a decided connection to it. The kinds are listed
 * in `routes.ts`.
 */
import type { Socket } from 'node:net'
import type { PortmuxError } from '../errors.js'
import type { ConnectionInfo, ProxyOutcome, TcpRoute } from '../types.js'
import type { TlsTerminator } from './tls-route.js'

/**
 * Deliver a decided connection. `head` holds the bytes sniffed from it, which are no longer
 * in the socket: the kind replays them (`replay`) or sends them on itself.
 */
export type Deliver = (socket: Socket, info: ConnectionInfo, head: Buffer) => void

/** What kinds may use of the server they deliver for. */
export interface RouteEnv {
  /** Count and log an error of the route's own making (a handler that threw). */
  report: (err: PortmuxError) => void
  /** Count how a proxied connection went. */
  outcome: (outcome: ProxyOutcome) => void
  /** The server's TLS, for routes that terminate it; `null` on a plaintext port. */
  terminator: TlsTerminator | null
  /** A terminating route's handshake finished (or its socket closed): it leaves the pending limits. */
  secured: (socket: Socket) => void
}

export interface RouteKind {
  /** The route field that picks this kind; exactly one kind's field is set on a route. */
  readonly field: string
  /** Check the route's fields for this kind and make its delivery; throws `InvalidRouteError`. */
  compile: (name: string, route: TcpRoute, env: RouteEnv) => Deliver
}

/** Put the sniffed bytes back at the front of the socket, for a kind that reads them from there. */
export function replay (socket: Socket, head: Buffer): void {
  if (head.length > 0) socket.unshift(head)
}
