/**
 * One record per connection handed to the inner HTTP servers: what it became, the TLS
 * socket and HTTP/2 session Node made on it, whether it has carried a request, and how many
 * HTTP/2 streams it has open. The close sweep and quiesce judge a connection by it
 * (`drainable`, `fresh`).
 *
 * Node's listeners get different objects for one connection — the accepted socket, the TLS
 * socket on top of it, the HTTP/2 session, its streams — so each of them carries the one
 * record under one symbol.
 */
import type { IncomingMessage } from 'node:http'
import type { ServerHttp2Session, ServerHttp2Stream } from 'node:http2'
import type { Socket } from 'node:net'
import type { TLSSocket } from 'node:tls'

/** What the connection was handed to: plaintext HTTP/1, h2c, or TLS (then h2 or HTTP/1.1 by ALPN). */
export type HttpKind = 'h1' | 'h2c' | 'tls'

const kConnection = Symbol('portmux.httpConnection')
interface Carrier { [kConnection]?: HttpConnection }

/** Node's own bookkeeping on a socket serving HTTP/1: the response in progress, if any. */
interface Responding { _httpMessage?: unknown }

export class HttpConnection {
  /** The TLS socket, once the handshake is done. */
  tls: TLSSocket | undefined = undefined
  /** The HTTP/2 session (h2c, or h2 over TLS). */
  session: ServerHttp2Session | undefined = undefined
  /** It has carried a request (HTTP/1) or a stream (HTTP/2), or was answered from its sniffed bytes. */
  served = false
  /**
   * Open HTTP/2 streams. Node destroys a session closed with GOAWAY once its streams are
   * done — but only if nothing was waiting to be written at that moment; a session that had
   * is never looked at again. The close sweep finishes those off, and needs the count to
   * know which carry no request.
   */
  streams = 0

  constructor (readonly kind: HttpKind, readonly socket: Socket) {}

  /**
   * Closing it now cuts no request short: HTTP/1 with no request in progress (idle, or still
   * sending its headers), TLS whose handshake has not finished, or an HTTP/2 session that
   * has had GOAWAY and carries no stream. Open HTTP/2 sessions are closed with GOAWAY instead.
   */
  drainable (): boolean {
    if (this.kind === 'h1') return (this.socket as Responding)._httpMessage == null
    if (this.kind === 'h2c') return this.sessionDone()
    if (this.tls === undefined) return true
    return this.tls.alpnProtocol === 'h2' ? this.sessionDone() : (this.tls as Responding)._httpMessage == null
  }

  /**
   * It still waits for its first request: in the TLS handshake, or set up with no request
   * received yet. Closing it now would fail a client that did nothing wrong.
   */
  fresh (): boolean {
    return !this.served
  }

  /**
   * A session sent GOAWAY that carries no stream, or one already destroyed (its socket may
   * still wait on a client that does not read what is left to send): nothing left to finish.
   */
  sessionDone (): boolean {
    const session = this.session
    if (session === undefined) return false
    return session.destroyed || (session.closed && this.streams === 0)
  }
}

/** Start the record of a socket handed to an inner server. */
export function track (socket: Socket, kind: HttpKind): HttpConnection {
  const conn = new HttpConnection(kind, socket)
  ;(socket as Carrier)[kConnection] = conn
  return conn
}

/** The record of an accepted socket, its TLS socket, its session (also through Node's session socket proxy). */
export function connectionOf (carrier: object | null | undefined): HttpConnection | undefined {
  return (carrier as Carrier | null | undefined)?.[kConnection]
}

/** The handshake of a tracked socket finished: the TLS socket joins its record. */
export function joinTls (raw: Socket, tlsSocket: TLSSocket): HttpConnection | undefined {
  const conn = connectionOf(raw)
  if (conn === undefined) return undefined
  conn.tls = tlsSocket
  ;(tlsSocket as Carrier)[kConnection] = conn
  return conn
}

/** An HTTP/2 session was made on a tracked socket (the accepted one for h2c, the TLS socket for h2). */
export function sessionMade (session: ServerHttp2Session): HttpConnection | undefined {
  const conn = connectionOf(session.socket)
  if (conn === undefined) return undefined
  conn.session = session
  ;(session as Carrier)[kConnection] = conn
  session.on('stream', onStream)
  return conn
}

/** A `'request'` listener: an HTTP/1 connection has carried a request. */
export function markServed (req: IncomingMessage): void {
  if (req.httpVersionMajor !== 1) return
  const conn = connectionOf(req.socket)
  if (conn !== undefined) conn.served = true
}

function onStream (this: ServerHttp2Session, stream: ServerHttp2Stream): void {
  const conn = connectionOf(this) as HttpConnection
  conn.streams++
  conn.served = true
  ;(stream as Carrier)[kConnection] = conn
  stream.on('close', onStreamClose)
}

function onStreamClose (this: ServerHttp2Stream): void {
  const conn = connectionOf(this)
  if (conn !== undefined) conn.streams--
}

/** Whether closing this accepted socket now cuts no request short (`HttpConnection.drainable`). */
export function drainable (socket: Socket): boolean {
  return connectionOf(socket)?.drainable() ?? false
}

/** Whether this accepted socket still waits for its first request (`HttpConnection.fresh`). */
export function fresh (socket: Socket): boolean {
  return connectionOf(socket)?.fresh() ?? false
}
