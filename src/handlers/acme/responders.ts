/**
 * The two challenges answered on the mux's own port, as raw routes added before the
 * user's routes:
 *
 * - TLS-ALPN-01 (RFC 8737): every ClientHello offering `acme-tls/1` goes to a `tls.Server`
 *   of its own. For a configured domain with a challenge pending it gets the challenge
 *   certificate with `acme-tls/1` selected, and the connection is closed once the
 *   handshake is done; any other such hello fails the handshake. Nothing reaches the app.
 * - HTTP-01: a plaintext request `GET /.well-known/acme-challenge/<token>` is read (at
 *   most 8 KiB of head, within 10 s) and answered 200 with the key authorization, or 404
 *   for a token nobody is waiting for; then the connection is closed.
 *
 * Pending challenges are looked up in this process first and then in the storage
 * directory, so whichever process sharing it receives the CA's connection can answer.
 */
import type { Socket } from 'node:net'
import tls, { type SecureContext, type TLSSocket } from 'node:tls'
import type { TcpRoute } from '../../types.js'
import type { AcmeStorage } from './storage.js'

export const ACME_TLS_ALPN = 'acme-tls/1'
/** Route names used by portmux when `acme` is set; a user route of the same name is a duplicate. */
export const TLS_ALPN_ROUTE = 'acme:tls-alpn-01'
export const HTTP_ROUTE = 'acme:http-01'

const HTTP_PREFIX = Buffer.from('GET /.well-known/acme-challenge/', 'latin1')
const MAX_HEAD = 8192
const HEAD_TIMEOUT = 10_000
const HANDSHAKE_TIMEOUT = 10_000
const TOKEN = /^[A-Za-z0-9_-]+$/

/** `'match'` for a request to the challenge path, `'more'` while the bytes could still become one. */
export function matchHttpChallenge (bytes: Uint8Array): 'match' | 'no' | 'more' {
  const n = Math.min(bytes.length, HTTP_PREFIX.length)
  for (let i = 0; i < n; i++) if (bytes[i] !== HTTP_PREFIX[i]) return 'no'
  return bytes.length >= HTTP_PREFIX.length ? 'match' : 'more'
}

export class ChallengeResponder {
  private readonly http = new Map<string, string>()
  private readonly alpn = new Map<string, SecureContext>()
  private readonly alpnServer: tls.Server

  constructor (private readonly storage: AcmeStorage, private readonly domains: readonly string[]) {
    this.alpnServer = tls.createServer({
      ALPNProtocols: [ACME_TLS_ALPN],
      handshakeTimeout: HANDSHAKE_TIMEOUT,
      SNICallback: (servername, cb) => {
        this.alpnContext(servername).then((ctx) => {
          // Without a context the handshake goes on with the default one, which has no
          // certificate: the client gets a handshake_failure alert.
          cb(null, ctx ?? undefined)
        }, () => { cb(null, undefined) })
      }
    })
    this.alpnServer.on('secureConnection', onChallengeDone)
    this.alpnServer.on('tlsClientError', onChallengeFailed)
  }

  /** The routes to add before every user route. */
  routes (): Array<[string, TcpRoute]> {
    return [
      [TLS_ALPN_ROUTE, { match: { tls: { alpn: ACME_TLS_ALPN } }, handler: (socket) => { this.alpnServer.emit('connection', socket) } }],
      [HTTP_ROUTE, { match: matchHttpChallenge, handler: (socket) => { this.answerHttp(socket) } }]
    ]
  }

  // ---- what the order sets up -------------------------------------------

  addHttp (token: string, keyAuthorization: string): void { this.http.set(token, keyAuthorization) }
  removeHttp (token: string): void { this.http.delete(token) }
  addAlpn (domain: string, pems: { key: string, cert: string }): void {
    this.alpn.set(domain, tls.createSecureContext(pems))
  }

  removeAlpn (domain: string): void { this.alpn.delete(domain) }

  // ---- answering --------------------------------------------------------

  private async alpnContext (servername: string): Promise<SecureContext | null> {
    const name = servername.toLowerCase().replace(/\.$/, '')
    if (!this.domains.includes(name)) return null
    const mine = this.alpn.get(name)
    if (mine !== undefined) return mine
    const stored = await this.storage.readAlpnChallenge(name)
    return stored === null ? null : tls.createSecureContext(stored)
  }

  async keyAuthorization (token: string): Promise<string | null> {
    if (!TOKEN.test(token)) return null
    return this.http.get(token) ?? await this.storage.readHttpChallenge(token)
  }

  private answerHttp (socket: Socket): void {
    let head = Buffer.alloc(0)
    socket.setTimeout(HEAD_TIMEOUT, () => socket.destroy())
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk])
      const end = head.indexOf('\r\n\r\n')
      if (end === -1) {
        if (head.length > MAX_HEAD) socket.destroy()
        return
      }
      socket.removeListener('data', onData)
      socket.pause()
      const line = head.subarray(0, head.indexOf('\r\n')).toString('latin1')
      const target = /^GET (\S+) HTTP\/1\.[01]$/.exec(line)?.[1] ?? ''
      const token = target.slice(HTTP_PREFIX.length - 'GET '.length).split(/[?#]/)[0]
      this.keyAuthorization(token).then((answer) => { reply(socket, answer) }, () => { reply(socket, null) })
    }
    socket.on('data', onData)
  }
}

function reply (socket: Socket, keyAuthorization: string | null): void {
  if (socket.destroyed) return
  const body = keyAuthorization ?? 'Not Found\n'
  const status = keyAuthorization === null ? '404 Not Found' : '200 OK'
  socket.end(`HTTP/1.1 ${status}\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`)
  // Whatever else the client sends is read and dropped (closing with unread bytes would reset
  // the connection, and the reply could be lost); it closes when the client does, or after
  // the head timeout (set when the request began).
  socket.resume()
}

function onChallengeDone (socket: TLSSocket): void {
  // The validator only looks at the certificate: nothing is read or written after the handshake.
  socket.on('error', () => {})
  socket.end()
  socket.setTimeout(HANDSHAKE_TIMEOUT, () => socket.destroy())
}

function onChallengeFailed (_err: Error, socket: TLSSocket): void {
  socket.destroy()
}
