import type { Socket } from 'node:net'
import type { TlsOptions } from 'node:tls'
import type { ProtocolName, Verdict } from './sniff/types.js'
import type { ProxyHeader } from './sniff/proxy-header.js'

export type { ProtocolName, Verdict } from './sniff/types.js'

/** TLS patterns: a route matches when every given field matches. */
export interface TlsMatch {
  /** Server names: exact (case-insensitive, trailing dot ignored) or `*.example.com` (exactly one label). */
  sni?: string | string[]
  /** Application protocols: the route matches when the client offers any of them. */
  alpn?: string | string[]
}

/** What a raw TCP route matches on. Routes are tried in the order they were added. */
export type Match =
  | ProtocolName
  | { tls: TlsMatch }
  | { prefix: string | Uint8Array }
  /** Tested over the bytes so far, read as latin1: `'match'` or `'no'`, never waits. */
  | RegExp
  /** Called with every byte received so far; `'more'` holds the decision. */
  | ((bytes: Uint8Array) => Verdict)
  /** Clients that stay silent for `sniffTimeout` (server-speaks-first protocols). */
  | 'timeout'
  /** What nothing else claims: after every route and the built-in TLS, h2c and HTTP handling (sslh's default target). */
  | 'unknown'

/** What a raw route's handler learns about the connection. */
export interface ConnectionInfo {
  /** The route's name; for the built-in destinations `'https'`, `'http'`, `'redirect'` or `'reject'`. */
  route: string
  /** The protocol that matched: a detector's name, `'custom'` for prefix/RegExp/function matches, `'timeout'`, `'h2c'`, or `'unknown'` for bytes nothing claims. Empty when nothing was read. */
  protocol: string
  /** The server name the client asked for, when the connection is TLS and sent one. */
  sni?: string
  /** The application protocols the client offered, when the connection is TLS. */
  alpn?: string[]
  remoteAddress: string | undefined
  remotePort: number | undefined
  localAddress: string | undefined
  localPort: number | undefined
  /** The bytes read while deciding; the handler's socket replays them first. */
  bytes: Buffer
  /** The PROXY header a trusted peer sent (v1 or v2, with its TLVs: authority, SSL, AWS VPC endpoint id, …). */
  proxyHeader?: ProxyHeader
  /** ms from accept to this decision (or refusal). */
  sniffMs: number
}

/** A TLS certificate was installed: the `'certificate'` event. */
export interface CertificateInfo {
  /** The names it covers. */
  domains: string[]
  /** When it expires. */
  notAfter: Date
  /** `true` when it replaces an earlier certificate for these names. */
  renewed: boolean
}

/** A connection portmux closed before handing it on, and why. */
export interface RefusalInfo extends Omit<ConnectionInfo, 'route'> {
  reason: CloseReason
}

export type RawHandler = (socket: Socket, info: ConnectionInfo) => void

export interface ProxyTarget {
  /** Upstream host; defaults to `127.0.0.1`. */
  host?: string
  port: number
  /** Send a PROXY protocol header of this version before any client byte. */
  proxyProtocol?: 1 | 2
  /** ms to wait for the upstream to accept. */
  connectTimeout?: number
}

/** What every raw TCP route has, whichever way it goes. */
export interface TcpRouteOptions {
  match: Match | Match[]
  /** TLS routes only: decrypt with the mux's TLS, then hand over. */
  terminateTls?: boolean
  /** ms without traffic in either direction before the route's socket is closed. */
  idleTimeout?: number
  /** At most this many open connections on this route; more are closed at once. */
  maxConnections?: number
}

/** A route whose connections go to a handler. */
export interface HandlerRoute extends TcpRouteOptions {
  handler: RawHandler
  proxy?: undefined
}

/** A route whose connections are spliced to an upstream. */
export interface ProxyRoute extends TcpRouteOptions {
  proxy: ProxyTarget
  handler?: undefined
}

/** A raw TCP route: exactly one of `handler` and `proxy`. */
export type TcpRoute = HandlerRoute | ProxyRoute

export interface RedirectOptions {
  /** 301, 302, 303, 307 or 308. Default: 301 for GET and HEAD, 308 for other methods. */
  status?: 301 | 302 | 303 | 307 | 308
  /** Always redirect to this host (no other host is ever used). */
  host?: string
  /** Always redirect to this port (443 is left out of the Location). */
  port?: number
  /** Take the host from `X-Forwarded-Host` when present. Off unless set. */
  trustForwardedHost?: boolean
}

export type HttpMode = PlaintextMode | { redirect: RedirectOptions }

/** What plaintext HTTP on a TLS port gets: served by the app, redirected to https, or refused. */
export type PlaintextMode = 'redirect' | 'serve' | 'reject'

export interface ProxyProtocolOptions {
  /** Peers (CIDRs or addresses, IPv4 and IPv6) whose PROXY headers are believed. */
  trusted: string[]
  /** Close connections from trusted peers that send no valid header. */
  required?: boolean
}

export interface MuxOptions extends HttpServerTimeouts {
  /** Key and certificate (any `tls.createServer` options) or `'dev'` for a self-signed development certificate. */
  tls?: TlsOptions | 'dev'
  /** What plaintext HTTP gets on a TLS port. Default `'redirect'`. */
  http?: HttpMode
  /** Offer `h2` by ALPN and accept h2c prior knowledge. Default `true`. */
  http2?: boolean
  /** Raw TCP routes by name. */
  routes?: Record<string, TcpRoute>
  /** ms a new connection may stay silent or undecided. Default 5000. */
  sniffTimeout?: number
  /** Bytes buffered while deciding. Default 16384. */
  maxSniffBytes?: number
  /** Connections being sniffed or in their TLS handshake at once; beyond it new connections are closed at once. Default 10000. */
  maxPending?: number
  /** The same, per client address (IPv6 clients by /64). Default 256. */
  maxPendingPerSource?: number
  proxyProtocol?: ProxyProtocolOptions
  /** ms that `close()` gives raw-route sockets before destroying them. Default 1000. */
  closeGrace?: number
  /** Obtain and renew the TLS certificate from an ACME (RFC 8555) CA. */
  acme?: AcmeOptions
  /**
   * Also listen on this port (same host as `listen`), through the same pipeline and routes;
   * plaintext HTTP there gets the `http` mode, and its redirects go to the main port.
   */
  httpPort?: number
}

/** The ACME challenges portmux answers itself. */
export type AcmeChallenge = 'tls-alpn-01' | 'http-01'

export interface AcmeOptions {
  /** The names of the certificate (one certificate covers them all). */
  domains: string[]
  /** Contact address given to the CA. */
  email?: string
  /** That you accept the CA's terms of service: must be `true`. */
  agreeToTerms: boolean
  /** The CA's directory URL. Default: Let's Encrypt production. */
  directory?: string
  /** Directory for the account key, certificate keys and certificates. Default `./.portmux/acme` (from the working directory). */
  storage?: string
  /** Challenge types in order of preference. Default `['tls-alpn-01', 'http-01']`. */
  challenges?: AcmeChallenge[]
}

/**
 * The `acme` option once checked, as the certificate manager takes it. Internal: not
 * exported from the package.
 */
export interface ResolvedAcme {
  /** Lower case, without a trailing dot, in the order given. */
  domains: string[]
  email: string | undefined
  directory: string
  storage: string
  challenges: AcmeChallenge[]
  /** Test and tuning knobs, given under `Symbol.for('portmux.acme.tuning')`; not public. */
  tuning: Record<string, unknown>
}

/** The `'certificate'` event: a certificate was installed for new connections. */

/** Applied to the inner HTTP servers (Fastify passes its own values through the factory). */
export interface HttpServerTimeouts {
  keepAliveTimeout?: number
  headersTimeout?: number
  requestTimeout?: number
  /** Socket inactivity timeout of HTTP connections (`server.timeout`), 0 for none. */
  connectionTimeout?: number
  maxRequestsPerSocket?: number
  /** ms an idle HTTP/2 session stays open. */
  http2SessionTimeout?: number
  /** ms between the inner HTTP/1 servers' checks of `headersTimeout` and `requestTimeout` (Node's default: 30000). */
  connectionsCheckingInterval?: number
}

/** Why portmux closed a connection before handing it on. */
export type CloseReason =
  | 'sniff-timeout'
  | 'client-closed'
  | 'client-error'
  | 'no-route'
  /** `maxPending` connections were being sniffed or in their TLS handshake (closed at accept). */
  | 'max-pending'
  /** As many from this client's address (IPv6: its /64) (closed at accept, or after its PROXY header). */
  | 'max-pending-per-source'
  /** `maxSniffBytes` arrived and nothing was decided. */
  | 'max-sniff-bytes'
  /** The route's `maxConnections` were open. */
  | 'max-connections'
  /** Decided TLS whose handshake did not finish within `handshakeTimeout` of the decision. */
  | 'handshake-timeout'
  | 'proxy-header'
  | 'server-closing'

/**
 * Where a connection no raw route took went, as `stats()` counts it and `'decision'` names
 * it (`info.route`): `https` (TLS, served by the app), `http` (plaintext served by the app,
 * `http: 'serve'`), `redirect` or `reject` (plaintext answered by portmux).
 */
export type Destination = 'https' | 'http' | 'redirect' | 'reject'

/** How proxied connections went: `connected` once per upstream connection made, the rest once per failure. */
export type ProxyOutcome =
  | 'connected'
  | 'upstream-refused'
  | 'connect-timeout'
  | 'upstream-error'
  | 'client-error'
  | 'idle-timeout'

export interface MuxStats {
  /** Connections accepted since the server was made. */
  accepted: number
  /** Connections being sniffed now. */
  pending: number
  /** Decided TLS connections in their handshake now (counted against `maxPending` too). */
  handshakes: number
  /** PROXY headers accepted from trusted peers. */
  proxyHeaders: number
  /** Open connections by where they went. */
  open: Record<Destination, number> & { routes: Record<string, number> }
  /** Decisions since the server was made, by where they went. */
  decided: Record<Destination, number> & { routes: Record<string, number> }
  /** Connections portmux closed itself, by reason. */
  closed: Record<CloseReason, number>
  /** Proxy routes' upstream connections, by outcome. */
  proxy: Record<ProxyOutcome, number>
  /** Errors by code: user matchers or handlers that threw. */
  errors: Record<string, number>
}
