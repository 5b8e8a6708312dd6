/**
 * The events a `MuxServer` emits, by name, with their arguments: its own (`decision`,
 * `refusal`, `warning`, `certificate`), those of `net.Server`, and those of the inner
 * HTTP servers that listeners on the outer server are given (`request`, `upgrade`, …).
 * `MuxServer`'s `on`, `once`, `off`, `emit` and the rest are typed from this map, so a
 * misspelt event name or a wrong argument does not compile.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http'
import type { Http2ServerRequest, Http2ServerResponse, ServerHttp2Session, ServerHttp2Stream } from 'node:http2'
import type { DropArgument, Socket } from 'node:net'
import type { TLSSocket } from 'node:tls'
import type { PortmuxError } from '../errors.js'
import type { CertificateInfo, ConnectionInfo, RefusalInfo } from '../types.js'

export interface MuxEvents {
  // ---- portmux's own ----------------------------------------------------
  /** A connection was decided: where it went and what was learnt from its first bytes. */
  decision: [info: ConnectionInfo]
  /** A connection was closed before a decision, and why. */
  refusal: [info: RefusalInfo]
  /** A route's matcher or handler threw, or another problem was met (without the Fastify plugin's logger). */
  warning: [err: PortmuxError]
  /** A TLS certificate was installed (obtained at first, or renewed). */
  certificate: [info: CertificateInfo]

  // ---- net.Server ---------------------------------------------------------
  close: []
  connection: [socket: Socket]
  error: [err: Error]
  listening: []
  drop: [data?: DropArgument]

  // ---- the inner HTTP servers' (HTTP/1, HTTPS, HTTP/2) ---------------------
  /** HTTP/1 requests carry `IncomingMessage`/`ServerResponse`; HTTP/2 ones Node's compatibility objects. */
  request: [req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse]
  checkContinue: [req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse]
  checkExpectation: [req: IncomingMessage, res: ServerResponse]
  upgrade: [req: IncomingMessage, socket: Socket, head: Buffer]
  connect: [req: IncomingMessage, socket: Socket, head: Buffer]
  dropRequest: [req: IncomingMessage, socket: Socket]
  /** The socket is a `net.Socket`, or a `tls.TLSSocket` over TLS. */
  clientError: [err: Error, socket: Socket]
  /** HTTP/1: the socket that timed out; HTTP/2 sessions: no argument. */
  timeout: [socket?: Socket]
  tlsClientError: [err: Error, socket: TLSSocket]
  secureConnection: [socket: TLSSocket]
  keylog: [line: Buffer, socket: TLSSocket]
  newSession: [sessionId: Buffer, sessionData: Buffer, callback: () => void]
  resumeSession: [sessionId: Buffer, callback: (err: Error | null, sessionData: Buffer | null) => void]
  OCSPRequest: [certificate: Buffer, issuer: Buffer, callback: (err: Error | null, response: Buffer | null) => void]
  session: [session: ServerHttp2Session]
  sessionError: [err: Error, session: ServerHttp2Session]
  stream: [stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number]
  unknownProtocol: [socket: TLSSocket]
}

/** The name of an event a `MuxServer` emits. */
export type MuxEventName = keyof MuxEvents

/**
 * A listener for the event `K`. Its parameters are compared both ways, as Node's own
 * listener types are: a `(req: IncomingMessage, res: ServerResponse) => void` handler may
 * listen for `'request'`, while a listener of an unrelated type does not compile.
 */
export type MuxListener<K extends MuxEventName> = {
  bivariant (...args: MuxEvents[K]): void
}['bivariant']
