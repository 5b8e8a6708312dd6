/**
 * The inner HTTP servers. They never listen: the pipeline hands them sockets with
 * `emit('connection')`, the sniffed bytes replayed first.
 *
 * - `secure`: TLS → an HTTP/2 secure server with `allowHTTP1` (h2 and HTTP/1.1 by ALPN,
 *   and clients that send no ALPN), or an https server when `http2` is off;
 * - `plain`: plaintext HTTP/1 → the app (`'serve'`, or no TLS at all), the redirect or the refusal;
 * - `h2c`: plaintext HTTP/2 with prior knowledge → likewise.
 *
 * Events that users and plugins listen for on the outer server are forwarded to the
 * inner servers that emit them, as the same listener functions (see `EVENTS`).
 */
import diagnostics_channel from 'node:diagnostics_channel'
import http, { type IncomingMessage, type ServerResponse } from 'node:http'
import https from 'node:https'
import http2, { type Http2SecureServer, type Http2Server, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2'
import type { EventEmitter } from 'node:events'
import type net from 'node:net'
import type { Socket } from 'node:net'
import type { Server as TlsServer, TLSSocket, TlsOptions } from 'node:tls'
import type { HttpServerTimeouts, RedirectOptions } from '../types.js'
import { inheritPeer } from '../peer.js'
import { REJECT_ANSWER, redirectAnswerer, redirectListener, redirectToMainPort, refuseConnect, rejectListener, type Answer, type Asked } from './redirect.js'
import { FLUSH_TIMEOUT, fastReply, sendAndClose } from './redirect-fast.js'
import { replay } from './route.js'

export type PlaintextMode = 'serve' | 'redirect' | 'reject'

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

// EventEmitter listeners take anything; the outer server passes them through untouched.
type Listener = (...args: any[]) => void
type InnerServer = http.Server | https.Server | Http2SecureServer | Http2Server

/** Events forwarded from the outer server, and which inner servers get them. */
const H1_EVENTS = ['request', 'upgrade', 'checkContinue', 'checkExpectation', 'connect', 'dropRequest', 'timeout']
const TLS_EVENTS = ['tlsClientError', 'secureConnection', 'keylog', 'newSession', 'resumeSession', 'OCSPRequest']
const H2_EVENTS = ['request', 'checkContinue', 'session', 'sessionError', 'stream', 'timeout', 'unknownProtocol']
export const FORWARDED_EVENTS: ReadonlySet<string> = new Set([...H1_EVENTS, ...TLS_EVENTS, ...H2_EVENTS, 'clientError'])

/** Internal: told of every plaintext connection answered from its sniffed bytes (the tests count them). */
export const fastChannel = diagnostics_channel.channel('portmux:internal:plaintext-fast')

const kOwner = Symbol('portmux.httpServers')
interface Owned { [kOwner]?: HttpServers }

/** What an inner server made of a socket: how the close sweep may treat it. */
const kKind = Symbol('portmux.kind')
const kTls = Symbol('portmux.tlsSocket')
const kH2 = Symbol('portmux.http2Session')
/** Set on a socket (HTTP/1) or a session (HTTP/2) once it has carried a request. */
const kServed = Symbol('portmux.served')
interface Marked extends Socket {
  [kKind]?: 'h1' | 'h2c' | 'tls'
  [kTls]?: TLSSocket & { [kServed]?: boolean }
  [kH2]?: ServerHttp2Session & { [kServed]?: boolean }
  [kServed]?: boolean
  /** The response in progress on an HTTP/1 connection (Node's own bookkeeping). */
  _httpMessage?: unknown
}

function onSecureConnection (this: InnerServer & Owned, tlsSocket: TLSSocket & { _parent?: Marked }): void {
  const raw = tlsSocket._parent
  if (raw === undefined || raw === null) return
  raw[kTls] = tlsSocket
  this[kOwner]?.secured(raw)
  // The client a trusted PROXY header named is the TLS socket's peer too.
  inheritPeer(raw, tlsSocket)
}

/**
 * Whether closing this connection now cuts no request short: an HTTP/1 connection with
 * no request in progress (idle, or still sending its headers), or a TLS connection
 * whose handshake has not finished. HTTP/2 sessions are closed with GOAWAY instead.
 */
export function drainable (socket: Socket): boolean {
  const s = socket as Marked
  switch (s[kKind]) {
    case 'h1': return s._httpMessage == null
    case 'h2c': return sessionDone(s[kH2])
    case 'tls': {
      const tls = s[kTls] as (TLSSocket & { _httpMessage?: unknown }) | undefined
      if (tls === undefined) return true
      return tls.alpnProtocol === 'h2' ? sessionDone(s[kH2]) : tls._httpMessage == null
    }
    default: return false
  }
}

/**
 * Whether this connection still waits for its first request: in the TLS handshake, or set
 * up (HTTP/1, or an HTTP/2 session) with no request received yet. Closing it now would
 * fail a client that did nothing wrong.
 */
export function fresh (socket: Socket): boolean {
  const s = socket as Marked
  switch (s[kKind]) {
    case 'h1': return s[kServed] !== true
    case 'h2c': return s[kH2]?.[kServed] !== true
    case 'tls': {
      const tls = s[kTls]
      if (tls === undefined) return true
      return tls.alpnProtocol === 'h2' ? s[kH2]?.[kServed] !== true : tls[kServed] !== true
    }
    default: return false
  }
}

function markServed (req: IncomingMessage): void {
  if (req.httpVersionMajor === 1) (req.socket as Marked)[kServed] = true
}

/**
 * A session sent GOAWAY that carries no stream, or one already destroyed (its socket may
 * still wait on a client that does not read what is left to send): nothing left to finish.
 */
function sessionDone (session: Counted | undefined): boolean {
  if (session === undefined) return false
  return session.destroyed || (session.closed && session[kStreams] === 0)
}

/**
 * Open streams per session. Node destroys a session closed with GOAWAY once its streams are
 * done — but only if nothing was waiting to be written at that moment; a session that had
 * is never looked at again. The close sweep finishes those off, and needs the count to
 * know which carry no request.
 */
const kStreams = Symbol('portmux.streams')
const kSession = Symbol('portmux.session')
interface Counted extends ServerHttp2Session { [kStreams]?: number, [kOwner]?: HttpServers, [kServed]?: boolean }
interface OwnedStream extends ServerHttp2Stream { [kSession]?: Counted }

function onSession (this: InnerServer & Owned, session: Counted): void {
  const owner = this[kOwner]
  if (owner === undefined) return
  // The accepted socket (the TLS socket's parent for h2 over TLS) knows its session.
  const socket = session.socket as (Marked & { _parent?: Marked | null }) | undefined
  const raw = socket?.[kKind] === undefined ? socket?._parent : socket
  if (raw !== undefined && raw !== null) raw[kH2] = session
  owner.sessions.add(session)
  session[kOwner] = owner
  session[kStreams] = 0
  session.on('stream', onStream)
  session.once('close', onSessionClose)
  // An h2c session that only gets redirects or refusals has nothing to wait for.
  const timeout = this === owner.h2cServer && owner.refusesH2c ? (owner.sessionTimeout ?? REFUSING_SESSION_TIMEOUT) : (owner.sessionTimeout ?? SESSION_TIMEOUT)
  if (timeout > 0) session.setTimeout(timeout, closeIdleSession)
}

/** ms an idle h2c session on a redirecting or refusing port stays open when no `http2SessionTimeout` is set. */
const REFUSING_SESSION_TIMEOUT = 10_000
/** ms an idle HTTP/2 session stays open when no `http2SessionTimeout` is set (Fastify's default too). */
const SESSION_TIMEOUT = 72_000

function onSessionClose (this: Counted): void {
  this[kOwner]?.sessions.delete(this)
}

function onStream (this: Counted, stream: OwnedStream): void {
  this[kStreams] = (this[kStreams] ?? 0) + 1
  this[kServed] = true
  stream[kSession] = this
  stream.once('close', onStreamClose)
}

function onStreamClose (this: OwnedStream): void {
  const session = this[kSession]
  if (session !== undefined) session[kStreams] = (session[kStreams] ?? 1) - 1
}

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
  readonly secure: Http2SecureServer | https.Server | null
  readonly plain: http.Server
  readonly h2cServer: Http2Server | null
  readonly sessions = new Set<ServerHttp2Session>()
  /** `http2SessionTimeout` as given; `undefined` for portmux's defaults. */
  readonly sessionTimeout: number | undefined
  /** The h2c server redirects or refuses rather than serving the app. */
  readonly refusesH2c: boolean
  /** Told when a TLS handshake finishes. */
  readonly secured: (socket: Socket) => void
  /** The servers that serve the app, with the events they take from the outer server. */
  private readonly routes: Array<[InnerServer, ReadonlySet<string>]> = []
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
      this.secure = options.http2
        ? http2.createSecureServer({ ...options.tls, allowHTTP1: true })
        : https.createServer({ ALPNProtocols: ['http/1.1'], ...options.tls })
      applyH1(this.secure, options)
      this.secure.prependListener('secureConnection', onSecureConnection)
      this.secure.on('secureConnection', (tlsSocket: TLSSocket) => { (tlsSocket as { server?: unknown }).server = owner })
      this.routes.push([this.secure, new Set([...H1_EVENTS, ...TLS_EVENTS, ...(options.http2 ? H2_EVENTS : []), 'clientError'])])
    } else {
      this.secure = null
    }

    this.plain = http.createServer()
    applyH1(this.plain, options)
    if (servesPlain) {
      this.routes.push([this.plain, new Set([...H1_EVENTS, 'clientError'])])
    } else {
      // Fastify's clientError handler still answers garbage with its 400.
      this.routes.push([this.plain, new Set(['clientError'])])
      const own = options.plaintext === 'redirect' ? redirectListener(options.redirect, options.mainPort) : rejectListener
      this.plain.on('request', own)
      // Answer `Expect: 100-continue` with the redirect itself, not with 100.
      this.plain.on('checkContinue', own)
      this.plain.on('connect', refuseConnect)
    }

    if (options.http2) {
      this.h2cServer = http2.createServer({})
      if (servesPlain) {
        this.routes.push([this.h2cServer, new Set(H2_EVENTS)])
      } else {
        const own = options.plaintext === 'redirect' ? redirectListener(options.redirect, options.mainPort) : rejectListener
        this.h2cServer.on('request', own)
        this.h2cServer.on('checkContinue', own)
      }
    } else {
      this.h2cServer = null
    }

    // Marks connections that have carried a request (see `fresh`).
    for (const s of [this.secure, this.plain]) {
      if (s !== null) (s as http.Server).prependListener('request', markServed)
    }

    for (const s of [this.secure, this.h2cServer]) {
      if (s === null) continue
      ;(s as InnerServer & Owned)[kOwner] = this
      s.on('session', onSession)
      if (options.connectionTimeout !== undefined) s.setTimeout(options.connectionTimeout)
    }
  }

  /** Replace the TLS credentials (the development certificate arrives after construction). */
  setSecureContext (options: TlsOptions): void {
    ;(this.secure as TlsServer | null)?.setSecureContext(options)
  }

  // The outer listener allows half-open sockets for raw routes. TLS and HTTP/2 servers
  // close on the client's FIN (their own listeners would not allow half-open), so the
  // sockets they get are set back; HTTP/1 handles FIN itself, as http.Server does.
  tls (socket: Socket, head: Buffer): void {
    socket.allowHalfOpen = false
    ;(socket as Marked)[kKind] = 'tls'
    replay(socket, head)
    this.secure?.emit('connection', socket)
  }

  /**
   * Plaintext HTTP/1. `toMain`: the connection came to `httpPort`, and its redirects go to
   * the main port. `head`: what the sniffer read; a redirect or refusal it holds completely
   * is answered from it, with no HTTP server.
   */
  http (socket: Socket, toMain: boolean, head: Buffer): void {
    ;(socket as Marked)[kKind] = 'h1'
    if (this.answer !== null && this.fastPlaintext) {
      const reply = fastReply(head, this.answer, toMain)
      if (reply !== null) {
        // Answered: nothing more is read as a request, so the close sweep may end it and quiesce need not wait.
        ;(socket as Marked)[kServed] = true
        if (fastChannel.hasSubscribers) fastChannel.publish({ socket })
        sendAndClose(socket, reply, this.flushTimeout)
        return
      }
    }
    if (toMain) redirectToMainPort(socket)
    replay(socket, head)
    this.plain.emit('connection', socket)
    ;(socket as { server?: unknown }).server = this.owner
  }

  /** Plaintext HTTP/2 with prior knowledge (h2c). */
  h2c (socket: Socket, toMain: boolean, head: Buffer): void {
    if (toMain) redirectToMainPort(socket)
    socket.allowHalfOpen = false
    ;(socket as Marked)[kKind] = 'h2c'
    replay(socket, head)
    this.h2cServer?.emit('connection', socket)
  }

  /**
   * The event bridge. Users and plugins listen on the outer server for events only the inner
   * servers emit ('request', 'upgrade', 'clientError', 'session', …: `FORWARDED_EVENTS`). While
   * the outer server has at least one listener for such an event, each inner server that
   * emits it has one relay listener that re-emits it on the outer server; so `once`,
   * `prependListener`, removal and listener order all stay the outer emitter's own.
   *
   * Relies on these Node behaviours: an EventEmitter emits 'newListener' before adding a
   * listener and 'removeListener' after removing one (also for each listener
   * `removeAllListeners` takes); and the HTTP servers decide by their own `listenerCount`
   * whether anyone handles 'upgrade', 'connect', 'checkContinue', 'checkExpectation',
   * 'clientError', 'timeout' and 'dropRequest' (else Node's default answer applies) — which a
   * relay present exactly while the outer server has listeners keeps true. Listeners run with
   * the outer server as `this`.
   */
  bridge (outer: EventEmitter): void {
    this.outer = outer
    // Idempotent: the outer server calls it again after a blanket `removeAllListeners`.
    if (!outer.listeners('newListener').includes(this.onNewListener)) outer.on('newListener', this.onNewListener)
    if (!outer.listeners('removeListener').includes(this.onRemoveListener)) outer.on('removeListener', this.onRemoveListener)
  }

  private outer: EventEmitter | null = null

  private readonly onNewListener = (event: string | symbol): void => {
    if (typeof event === 'string' && FORWARDED_EVENTS.has(event) && !this.relays.has(event) && this.outer !== null) this.relay(event, this.outer)
  }

  private readonly onRemoveListener = (event: string | symbol): void => {
    if (typeof event === 'string' && this.relays.has(event) && this.outer?.listenerCount(event) === 0) this.unrelay(event)
  }

  private readonly relays = new Map<string, Listener>()

  private relay (event: string, outer: EventEmitter): void {
    const relay: Listener = (...args) => outer.emit(event, ...args)
    this.relays.set(event, relay)
    for (const [server, events] of this.routes) if (events.has(event)) server.on(event, relay)
  }

  private unrelay (event: string): void {
    const relay = this.relays.get(event) as Listener
    this.relays.delete(event)
    for (const [server, events] of this.routes) if (events.has(event)) server.removeListener(event, relay)
  }

  /**
   * Inner servers that never listen have no connection tracking: no headersTimeout,
   * no requestTimeout, no closeIdleConnections. Their tracking starts on their own
   * `'listening'` event, emitted here when the outer server starts listening.
   */
  startTracking (): void {
    if (this.tracking) return
    this.tracking = true
    this.plain.emit('listening')
    if (this.secure !== null) this.secure.emit('listening')
  }

  private h1Servers (): Array<http.Server | https.Server | Http2SecureServer> {
    return this.secure === null ? [this.plain] : [this.plain, this.secure]
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
    for (const session of this.sessions as Set<Counted>) {
      if (!session.destroyed && sessionDone(session)) session.destroy()
    }
  }

  /**
   * Graceful close: idle HTTP/1 connections close now (and the connection checker
   * stops), HTTP/2 sessions get GOAWAY. Requests in flight finish; the caller's close
   * sweep (`drainable`, `sweepSessions`) closes what turns idle afterwards.
   */
  close (): void {
    for (const s of [this.plain, this.secure, this.h2cServer]) {
      if (s === null) continue
      // Never listening, so net.Server.close only clears state here.
      ;(s.close as () => void).call(s)
    }
    this.tracking = false
    this.closeHttp2Sessions()
  }
}

export type { IncomingMessage, ServerResponse }
