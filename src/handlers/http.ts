/**
 * The inner HTTP servers. They never listen: the pipeline hands them sockets with
 * `emit('connection')`, by the protocol the first bytes showed (`tls`, `http`, `h2c`), the
 * sniffed bytes replayed first.
 *
 * - `tlsServer`: TLS → an HTTP/2 secure server with `allowHTTP1` (h2 and HTTP/1.1 by ALPN,
 *   and clients that send no ALPN), or an https server when `http2` is off;
 * - `httpServer`: plaintext HTTP/1 → the app (`'serve'`, or no TLS at all), the redirect or
 *   the refusal (those two answered from the sniffed bytes when they allow it);
 * - `h2cServer`: plaintext HTTP/2 with prior knowledge → likewise.
 *
 * What Node's listeners learn of each connection goes into one record per connection
 * (`http-connection.ts`); the events users and plugins listen for on the outer server are
 * relayed to it from the inner servers (`event-bridge.ts`).
 */
import diagnostics_channel from 'node:diagnostics_channel'
import http, { type IncomingMessage, type ServerResponse } from 'node:http'
import https from 'node:https'
import http2, { type Http2SecureServer, type Http2Server, type ServerHttp2Session } from 'node:http2'
import type { EventEmitter } from 'node:events'
import type net from 'node:net'
import type { Socket } from 'node:net'
import type { Server as TlsServer, TLSSocket, TlsOptions } from 'node:tls'
import type { HttpServerTimeouts, PlaintextMode, RedirectOptions } from '../types.js'
import { inheritPeer } from '../peer.js'
import { EventBridge } from './event-bridge.js'
import { connectionOf, joinTls, markServed, sessionMade, track } from './http-connection.js'
import { REJECT_ANSWER, redirectAnswerer, redirectListener, redirectToMainPort, refuseConnect, rejectListener, type Answer, type Asked } from './redirect.js'
import { FLUSH_TIMEOUT, fastReply, sendAndClose } from './redirect-fast.js'
import { replay } from './route.js'

export interface HttpServersOptions extends HttpServerTimeouts {
  /** TLS options, or `null` when the port speaks plaintext only. May be completed later with `setSecureContext`. */
  tls: TlsOptions | null
  plaintext: PlaintextMode
  redirect: RedirectOptions
  http2: boolean
  /** The port of the main (TLS) listener: where redirects from `httpPort` go. */
  mainPort: () => number | undefined
  /** A TLS handshake finished on this accepted socket. */
  secured: (socket: Socket) => void
}

/** The inner servers' events the outer server relays, by the servers that emit them. */
const H1_EVENTS = ['request', 'upgrade', 'checkContinue', 'checkExpectation', 'connect', 'dropRequest', 'timeout']
const TLS_EVENTS = ['tlsClientError', 'secureConnection', 'keylog', 'newSession', 'resumeSession', 'OCSPRequest']
const H2_EVENTS = ['request', 'checkContinue', 'session', 'sessionError', 'stream', 'timeout', 'unknownProtocol']

/** Internal: told of every plaintext connection answered from its sniffed bytes (the tests count them). */
export const fastChannel = diagnostics_channel.channel('portmux:internal:plaintext-fast')

/** ms an idle h2c session on a redirecting or refusing port stays open when no `http2SessionTimeout` is set. */
const REFUSING_SESSION_TIMEOUT = 10_000
/** ms an idle HTTP/2 session stays open when no `http2SessionTimeout` is set (Fastify's default too). */
const SESSION_TIMEOUT = 72_000

/**
 * An idle session gets GOAWAY; one that had GOAWAY already (by a close, or from nghttp2
 * itself after a flood of resets) and is still here a whole timeout later is destroyed.
 */
function closeIdleSession (this: ServerHttp2Session): void {
  if (this.closed) this.destroy()
  else this.close()
}

/**
 * Set the HTTP/1 timeouts on a server instance (the HTTP/2 secure server ignores them as
 * constructor options). A `requestTimeout` shorter than Node's 60 s `headersTimeout` brings
 * `headersTimeout` down with it: Node enforces neither when headers may take longer.
 */
function applyH1 (server: http.Server | https.Server | Http2SecureServer, o: HttpServersOptions): void {
  const s = server as http.Server & { connectionsCheckingInterval?: number }
  if (o.keepAliveTimeout !== undefined) s.keepAliveTimeout = o.keepAliveTimeout
  if (o.maxRequestsPerSocket !== undefined) s.maxRequestsPerSocket = o.maxRequestsPerSocket
  if (o.requestTimeout !== undefined) s.requestTimeout = o.requestTimeout
  if (o.headersTimeout !== undefined) s.headersTimeout = o.headersTimeout
  else if (o.requestTimeout !== undefined && o.requestTimeout > 0) s.headersTimeout = Math.min(60_000, o.requestTimeout)
  if (o.connectionTimeout !== undefined) s.timeout = o.connectionTimeout
  if (o.connectionsCheckingInterval !== undefined) s.connectionsCheckingInterval = o.connectionsCheckingInterval
}

export class HttpServers {
  readonly tlsServer: Http2SecureServer | https.Server | null
  readonly httpServer: http.Server
  readonly h2cServer: Http2Server | null
  readonly sessions = new Set<ServerHttp2Session>()
  /** `http2SessionTimeout` as given; `undefined` for portmux's defaults. */
  readonly sessionTimeout: number | undefined
  /** The h2c server redirects or refuses rather than serving the app. */
  readonly refusesH2c: boolean
  /** Told when a TLS handshake finishes. */
  readonly secured: (socket: Socket) => void
  /** The servers that serve the app, with the events the outer server relays from them. */
  private readonly events = new EventBridge()
  private tracking = false
  /** The redirect rules or the refusal, answered from the sniffed bytes when they allow it (`redirect-fast.ts`). */
  private readonly answer: ((asked: Asked) => Answer) | null
  /** ms a fast-path answer may take to flush. */
  private readonly flushTimeout: number
  /** Internal: off, every plaintext request goes through the HTTP server (the tests compare both). */
  fastPlaintext = true

  /**
   * @param owner the outer server. Sockets taken by an inner HTTP/1 server report it as their
   * `socket.server`, as on a server that listens itself (plugins and middlewares subscribe to
   * `req.socket.server`, e.g. for `'upgrade'`).
   */
  constructor (options: HttpServersOptions, private readonly owner: net.Server) {
    this.sessionTimeout = options.http2SessionTimeout
    this.secured = options.secured
    const servesPlain = options.tls === null || options.plaintext === 'serve'
    this.refusesH2c = !servesPlain
    this.answer = servesPlain ? null : options.plaintext === 'redirect' ? redirectAnswerer(options.redirect, options.mainPort) : () => REJECT_ANSWER
    // An answered connection always has a deadline, even where `connectionTimeout` is 0 (none).
    this.flushTimeout = options.connectionTimeout !== undefined && options.connectionTimeout > 0 ? options.connectionTimeout : FLUSH_TIMEOUT

    if (options.tls !== null) {
      this.tlsServer = options.http2
        ? http2.createSecureServer({ ...options.tls, allowHTTP1: true })
        : https.createServer({ ALPNProtocols: ['http/1.1'], ...options.tls })
      applyH1(this.tlsServer, options)
      // First, before Node's own listener makes the HTTP/2 session or the HTTP/1 parser on it.
      this.tlsServer.prependListener('secureConnection', (tlsSocket: TLSSocket) => { this.onSecureConnection(tlsSocket) })
      // Last: Node's HTTP/1 listener sets `socket.server` to the inner server (see `http`).
      this.tlsServer.on('secureConnection', (tlsSocket: TLSSocket) => { (tlsSocket as { server?: unknown }).server = owner })
      this.events.add(this.tlsServer, [...H1_EVENTS, ...TLS_EVENTS, ...(options.http2 ? H2_EVENTS : []), 'clientError'], markServed)
    } else {
      this.tlsServer = null
    }

    this.httpServer = http.createServer()
    applyH1(this.httpServer, options)
    if (servesPlain) {
      this.events.add(this.httpServer, [...H1_EVENTS, 'clientError'], markServed)
    } else {
      // Fastify's clientError handler still answers garbage with its 400.
      this.events.add(this.httpServer, ['clientError'])
      const own = options.plaintext === 'redirect' ? redirectListener(options.redirect, options.mainPort) : rejectListener
      this.httpServer.on('request', own)
      // Answer `Expect: 100-continue` with the redirect itself, not with 100.
      this.httpServer.on('checkContinue', own)
      this.httpServer.on('connect', refuseConnect)
      this.httpServer.prependListener('request', markServed)
    }

    if (options.http2) {
      this.h2cServer = http2.createServer({})
      if (servesPlain) {
        this.events.add(this.h2cServer, H2_EVENTS)
      } else {
        const own = options.plaintext === 'redirect' ? redirectListener(options.redirect, options.mainPort) : rejectListener
        this.h2cServer.on('request', own)
        this.h2cServer.on('checkContinue', own)
      }
    } else {
      this.h2cServer = null
    }

    for (const s of [this.tlsServer, this.h2cServer]) {
      if (s === null) continue
      // An h2c session that only gets redirects or refusals has nothing to wait for.
      const timeout = this.sessionTimeout ?? (s === this.h2cServer && this.refusesH2c ? REFUSING_SESSION_TIMEOUT : SESSION_TIMEOUT)
      s.on('session', (session: ServerHttp2Session) => { this.onSession(session, timeout) })
      if (options.connectionTimeout !== undefined) s.setTimeout(options.connectionTimeout)
    }
  }

  /**
   * A TLS handshake finished: the TLS socket joins the connection's record, the pipeline
   * hears the handshake is done, the client a trusted PROXY header named is the TLS socket's
   * peer too.
   */
  private onSecureConnection (tlsSocket: TLSSocket & { _parent?: Socket | null }): void {
    const raw = tlsSocket._parent
    if (raw === undefined || raw === null) return
    joinTls(raw, tlsSocket)
    this.secured(raw)
    inheritPeer(raw, tlsSocket)
  }

  private onSession (session: ServerHttp2Session, timeout: number): void {
    sessionMade(session)
    this.sessions.add(session)
    session.once('close', () => { this.sessions.delete(session) })
    if (timeout > 0) session.setTimeout(timeout, closeIdleSession)
  }

  /** Replace the TLS credentials (the development certificate arrives after construction). */
  setSecureContext (options: TlsOptions): void {
    ;(this.tlsServer as TlsServer | null)?.setSecureContext(options)
  }

  // The outer listener allows half-open sockets for raw routes. TLS and HTTP/2 servers
  // close on the client's FIN (their own listeners would not allow half-open), so the
  // sockets they get are set back; HTTP/1 handles FIN itself, as http.Server does.
  tls (socket: Socket, head: Buffer): void {
    socket.allowHalfOpen = false
    track(socket, 'tls')
    replay(socket, head)
    this.tlsServer?.emit('connection', socket)
  }

  /**
   * Plaintext HTTP/1. `toMain`: the connection came to `httpPort`, and its redirects go to
   * the main port. `head`: what the sniffer read; a redirect or refusal it holds completely
   * is answered from it, with no HTTP server.
   */
  http (socket: Socket, toMain: boolean, head: Buffer): void {
    const conn = track(socket, 'h1')
    if (this.answer !== null && this.fastPlaintext) {
      const reply = fastReply(head, this.answer, toMain)
      if (reply !== null) {
        // Answered: nothing more is read as a request, so the close sweep may end it and quiesce need not wait.
        conn.served = true
        if (fastChannel.hasSubscribers) fastChannel.publish({ socket })
        sendAndClose(socket, reply, this.flushTimeout)
        return
      }
    }
    if (toMain) redirectToMainPort(socket)
    replay(socket, head)
    this.httpServer.emit('connection', socket)
    ;(socket as { server?: unknown }).server = this.owner
  }

  /** Plaintext HTTP/2 with prior knowledge (h2c). */
  h2c (socket: Socket, toMain: boolean, head: Buffer): void {
    if (toMain) redirectToMainPort(socket)
    socket.allowHalfOpen = false
    track(socket, 'h2c')
    replay(socket, head)
    this.h2cServer?.emit('connection', socket)
  }

  /** Relay the inner servers' events to `outer` while it has listeners for them (`event-bridge.ts`). */
  bridge (outer: EventEmitter): void {
    this.events.attach(outer)
  }

  /**
   * Inner servers that never listen have no connection tracking: no headersTimeout,
   * no requestTimeout, no closeIdleConnections. Their tracking starts on their own
   * `'listening'` event, emitted here when the outer server starts listening.
   */
  startTracking (): void {
    if (this.tracking) return
    this.tracking = true
    this.httpServer.emit('listening')
    if (this.tlsServer !== null) this.tlsServer.emit('listening')
  }

  private h1Servers (): Array<http.Server | https.Server | Http2SecureServer> {
    return this.tlsServer === null ? [this.httpServer] : [this.httpServer, this.tlsServer]
  }

  closeIdleConnections (): void {
    for (const s of this.h1Servers()) (s as http.Server).closeIdleConnections()
  }

  closeAllConnections (): void {
    for (const s of this.h1Servers()) http.Server.prototype.closeAllConnections.call(s)
    for (const session of this.sessions) session.destroy()
  }

  /** GOAWAY to every HTTP/2 session; streams in flight finish. */
  closeHttp2Sessions (): void {
    for (const session of this.sessions) session.close()
  }

  /** Destroy sessions already sent GOAWAY that carry no stream any more. */
  sweepSessions (): void {
    for (const session of this.sessions) {
      if (!session.destroyed && connectionOf(session)?.sessionDone() === true) session.destroy()
    }
  }

  /**
   * Graceful close: idle HTTP/1 connections close now (and the connection checker
   * stops), HTTP/2 sessions get GOAWAY. Requests in flight finish; the caller's close
   * sweep (`drainable`, `sweepSessions`) closes what turns idle afterwards.
   */
  close (): void {
    for (const s of [this.httpServer, this.tlsServer, this.h2cServer]) {
      if (s === null) continue
      // Never listening, so net.Server.close only clears state here.
      ;(s.close as () => void).call(s)
    }
    this.tracking = false
    this.closeHttp2Sessions()
  }
}

export type { IncomingMessage, ServerResponse }
