/**
 * The redirect (or refusal) answered from the sniffed bytes, without an HTTP server.
 *
 * When the bytes the sniffer read are exactly one complete request head of the plainest
 * form (see `src/sniff/http-head.ts`) and nothing else, and that request can carry no body
 * and asks for nothing an HTTP server would treat specially, the answer is built here: the
 * same bytes `redirect.ts` makes the HTTP server write for it, Date header included. Anything
 * else — `null` from {@link fastReply} — goes through the HTTP server as before.
 */
import { METHODS, STATUS_CODES } from 'node:http'
import type { Socket } from 'node:net'
import { parseRequestHead } from '../sniff/http-head.js'
import type { Answer, Asked } from './redirect.js'

/**
 * The longest head answered here. Node's parser takes 16 KiB; real redirects are far
 * shorter, and a bound well inside Node's leaves no doubt about where Node would refuse.
 */
export const MAX_FAST_HEAD = 8192
/** The most field lines answered here (Node keeps only the first 2000). */
export const MAX_FAST_FIELDS = 64

/** Methods Node's parser takes as plain requests: CONNECT and PRI are treated specially. */
const FAST_METHODS: ReadonlySet<string> = new Set(METHODS.filter((m) => m !== 'CONNECT' && m !== 'PRI'))

const ABSOLUTE = /^https?:\/\//i

/** The lengths of the field names looked at below. */
const WATCHED_LENGTHS: ReadonlySet<number> = new Set([4, 6, 7, 14, 16, 17])

/** The Date header value as Node's HTTP server writes it: cached for the current second. */
let dateValue = ''
let dateUntil = 0
function httpDate (): string {
  const now = Date.now()
  if (now >= dateUntil) {
    dateValue = new Date(now).toUTCString()
    dateUntil = now - (now % 1000) + 1000
  }
  return dateValue
}

/**
 * The complete response for these sniffed bytes, or `null` when they are not a request
 * this path answers. `answer` is the redirect rules, or the refusal.
 */
export function fastReply (bytes: Uint8Array, answer: (asked: Asked) => Answer, toMain: boolean): string | null {
  const parsed = parseRequestHead(bytes, MAX_FAST_HEAD)
  if (parsed.verdict !== 'match') return null
  const head = parsed.head
  if (head.length !== bytes.length || head.minor > 1 || head.padded || !FAST_METHODS.has(head.method)) return null
  const target = head.target
  if (target.charCodeAt(0) !== 0x2f /* / */ && !ABSOLUTE.test(target)) return null
  const fields = head.fields
  if (fields.length > 2 * MAX_FAST_FIELDS) return null
  let hosts = 0
  let host: string | undefined
  let forwardedHost: string | undefined
  let websocket = false
  let lengths = 0
  for (let i = 0; i < fields.length; i += 2) {
    const raw = fields[i]
    // Only names of these lengths matter (host, expect, upgrade, content-length, http2-settings,
    // x-forwarded-host, transfer-encoding): the others are not even lower-cased.
    if (!WATCHED_LENGTHS.has(raw.length)) continue
    const value = fields[i + 1]
    switch (raw.toLowerCase()) {
      case 'host':
        if (++hosts > 1) return null
        host = value
        break
      case 'content-length':
        // Node refuses a repeated Content-Length, even an equal one.
        if (value !== '0' || ++lengths > 1) return null
        break
      case 'upgrade':
        // Only the WebSocket upgrade the redirect rules know of, once.
        if (websocket || value.toLowerCase() !== 'websocket') return null
        websocket = true
        break
      case 'x-forwarded-host':
        if (forwardedHost !== undefined) return null
        forwardedHost = value
        break
      case 'transfer-encoding':
      case 'expect':
      case 'http2-settings':
        return null
    }
  }
  // Node answers an HTTP/1.1 request without Host itself.
  if (hosts === 0 && head.minor === 1) return null
  const a = answer({ method: head.method, url: target, hosts, host, forwardedHost, websocket, toMain })
  return serialise(a, head.method === 'HEAD')
}

/** The bytes `finish` in `redirect.ts` has Node write for this answer. */
function serialise (a: Answer, head: boolean): string {
  const length = Buffer.byteLength(a.body)
  return `HTTP/1.1 ${a.status} ${STATUS_CODES[a.status] ?? 'unknown'}\r\n` +
    (a.location === undefined ? '' : `location: ${a.location}\r\n`) +
    `content-type: text/plain; charset=utf-8\r\ncontent-length: ${length}\r\nconnection: close\r\nDate: ${httpDate()}\r\n\r\n` +
    (head ? '' : a.body)
}

// ---------------------------------------------------------------------------------------------
// Sending it

/** ms a client that does not read the answer keeps its connection when `connectionTimeout` is not set (or 0). */
export const FLUSH_TIMEOUT = 10_000

function ignore (): void {}

function destroySelf (this: Socket): void {
  this.destroy()
}

/**
 * Write the answer and close the connection. When the kernel takes the whole answer at once
 * (a few hundred bytes: nearly always), the socket is closed right away: TCP sends the answer
 * and then FIN, as a shutdown would, without the extra round through the stream's end.
 * Otherwise the stream ends after the answer and is destroyed once it is flushed; a client
 * that never reads is cut off by the socket's own timeout.
 */
export function sendAndClose (socket: Socket, reply: string, timeout: number): void {
  socket.on('error', ignore)
  socket.write(reply, 'latin1')
  if (socket.writableLength === 0) {
    socket.destroy()
    return
  }
  // Anything more the client sends is read and dropped meanwhile.
  socket.resume()
  socket.once('finish', destroySelf)
  socket.end()
  socket.setTimeout(timeout, destroySelf)
}
