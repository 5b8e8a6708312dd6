/**
 * What plaintext HTTP gets on a TLS port when it is not served: a redirect to the
 * same host, port and path over https, or a polite refusal. Both answer with a
 * complete short response and close the connection (HTTP/1.1 `Connection: close`;
 * HTTP/2 closes the session after the stream).
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import { Http2ServerRequest, type Http2ServerResponse } from 'node:http2'
import type { RedirectOptions } from '../types.js'
import { parseAuthority, requestTarget } from '../sniff/http-target.js'

type Request = IncomingMessage | Http2ServerRequest
type Response = ServerResponse | Http2ServerResponse

/** How many field lines of this name the request carried (HTTP/1: Node keeps only the first Host). */
function fieldCount (req: Request, name: string): number {
  const raw = req.rawHeaders
  let n = 0
  for (let i = 0; i < raw.length; i += 2) if (raw[i].length === name.length && raw[i].toLowerCase() === name) n++
  return n
}

function header (req: Request, name: string): string | undefined {
  const v = req.headers[name]
  return Array.isArray(v) ? v[0] : v
}

/** An HTTP/2 stream (not an HTTP/1 request line that merely claims version 2). */
function isHttp2 (req: Request): req is Http2ServerRequest {
  return req instanceof Http2ServerRequest
}

/** Send a complete short response that ends the connection. */
function finish (req: Request, res: Response, status: number, location: string | undefined, body: string): void {
  // Unread request bodies are discarded so the response can be flushed cleanly.
  if (!req.complete) req.resume()
  // A HEAD response announces the length GET would get; Node leaves the body out itself.
  const length = String(Buffer.byteLength(body))
  if (isHttp2(req)) {
    const r = res as Http2ServerResponse
    const headers: Record<string, string> = { 'content-type': 'text/plain; charset=utf-8', 'content-length': length }
    if (location !== undefined) headers.location = location
    r.writeHead(status, headers)
    r.end(body, () => { req.stream.session?.close() })
    return
  }
  const headers = location === undefined
    ? ['content-type', 'text/plain; charset=utf-8', 'content-length', length, 'connection', 'close']
    : ['location', location, 'content-type', 'text/plain; charset=utf-8', 'content-length', length, 'connection', 'close']
  const r = res as ServerResponse
  r.writeHead(status, headers)
  r.end(body)
}

/** Set on connections that came to the plaintext `httpPort`: their redirects go to the main port. */
const kToMain = Symbol('portmux.toMainPort')
interface Marked { [kToMain]?: boolean }

/** Redirects of requests on this connection go to the main port, not the one the client used. */
export function redirectToMainPort (socket: object): void {
  ;(socket as Marked)[kToMain] = true
}

function toMainPort (req: Request): boolean {
  const socket = isHttp2(req) ? req.stream.session?.socket : req.socket
  return (socket as Marked | undefined)?.[kToMain] === true
}

/** What a redirecting or refusing port answers: the status, the Location (if any) and the body. */
export interface Answer {
  status: number
  location: string | undefined
  body: string
}

/** What of a request the answer depends on. */
export interface Asked {
  method: string
  url: string | undefined
  /** How many Host field lines it carried (HTTP/1; HTTP/2 gives 0). */
  hosts: number
  /** The first Host value (or the HTTP/2 authority). */
  host: string | undefined
  /** The first X-Forwarded-Host value, as Node joins repeats. */
  forwardedHost: string | undefined
  /** An HTTP/1 `Upgrade: websocket` request. */
  websocket: boolean
  /** It came to `httpPort`: the redirect goes to the main port. */
  toMain: boolean
}

function badAnswer (why: string): Answer {
  return { status: 400, location: undefined, body: `Bad Request: ${why}\n` }
}

/** The redirect rules (README "Redirect rules"), independent of how the request was parsed. */
export function redirectAnswerer (options: RedirectOptions, mainPort: () => number | undefined = () => undefined): (asked: Asked) => Answer {
  const fixedHost = options.host === undefined ? undefined : parseAuthority(options.host)
  return function answer (asked) {
    const target = requestTarget(asked.url)
    if (target === null) return badAnswer('the request target cannot be redirected')
    let hostValue = target.authority
    if (hostValue === undefined && asked.hosts > 1) return badAnswer('more than one Host')
    if (hostValue === undefined) {
      const forwarded = options.trustForwardedHost === true ? asked.forwardedHost?.split(',')[0].trim() : undefined
      hostValue = forwarded ?? asked.host
    }
    const authority = parseAuthority(hostValue)
    if (authority === null) return badAnswer(hostValue === undefined ? 'missing Host' : 'malformed Host')
    const host = fixedHost?.host ?? authority.host
    const port = options.port ?? fixedHost?.port ?? (asked.toMain ? mainPort() : authority.port)
    const scheme = asked.websocket ? 'wss' : 'https'
    const location = `${scheme}://${host}${port === undefined || port === 443 ? '' : ':' + String(port)}${target.path}`
    const status = options.status ?? (asked.method === 'GET' || asked.method === 'HEAD' ? 301 : 308)
    return { status, location, body: `Redirecting to ${location}\n` }
  }
}

/** The refusal of `http: 'reject'`. */
export const REJECT_ANSWER: Readonly<Answer> = badAnswer('this port speaks HTTPS; plain HTTP was sent to it')

/**
 * A request listener answering every request with a redirect to https. `mainPort` is the
 * port of the TLS listener, for requests that came to `httpPort`.
 */
export function redirectListener (options: RedirectOptions, mainPort: () => number | undefined = () => undefined): (req: Request, res: Response) => void {
  const answer = redirectAnswerer(options, mainPort)
  return function redirect (req, res) {
    const h2 = isHttp2(req)
    const a = answer({
      method: req.method ?? '',
      url: req.url,
      hosts: h2 ? 0 : fieldCount(req, 'host'),
      host: h2 ? (req.authority || header(req, 'host')) : header(req, 'host'),
      forwardedHost: header(req, 'x-forwarded-host'),
      websocket: !h2 && header(req, 'upgrade')?.toLowerCase() === 'websocket',
      toMain: toMainPort(req)
    })
    finish(req, res, a.status, a.location, a.body)
  }
}

/**
 * `CONNECT` on a port that does not serve plaintext: Node would drop the socket without a
 * word; answer with a short 400 instead.
 */
export function refuseConnect (_req: IncomingMessage, socket: Duplex): void {
  socket.on('error', () => {})
  socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n')
}

/** A request listener refusing plaintext HTTP on a TLS port. */
export function rejectListener (req: Request, res: Response): void {
  finish(req, res, REJECT_ANSWER.status, undefined, REJECT_ANSWER.body)
}
