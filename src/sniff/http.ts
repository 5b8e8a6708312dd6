/**
 * HTTP/1.x request-line detection (RFC 9112 §3):
 *
 *     request-line = method SP request-target SP HTTP-version CRLF
 *
 * - method: any token (RFC 9110 §5.6.2 tchars), so PATCH, QUERY, PROPFIND, MKCOL and private
 *   methods are all HTTP; at most {@link MAX_METHOD_LENGTH} bytes;
 * - request-target: starts with `/` (origin-form), `*` (asterisk-form, alone), a letter or digit
 *   (absolute-form `scheme://…`, authority-form `host:port`) or `[` (an IPv6 authority), then
 *   bytes up to the next SP; control characters and DEL are refused, bytes ≥ 0x80 are tolerated
 *   (some clients send raw UTF-8 paths). There is no length bound: a huge target keeps the
 *   verdict at `'more'` and the caller's byte limit decides;
 * - HTTP-version: `HTTP/1.` and one digit, then CR or LF. A bare LF is accepted as the line end
 *   (RFC 9112 §2.2 lets a recipient do so); the CR is not waited on to be followed by LF.
 *
 * Exactly one SP separates the parts. `HTTP/0.9` one-word requests, leading empty lines and the
 * h2c preface (`PRI * HTTP/2.0`, see `h2c.ts`) are not HTTP/1.x here.
 *
 * The detector reads the bytes once, by index, with no allocation: O(n) per call.
 */
import type { Detector, Verdict } from './types.js'

const SP = 0x20
const CR = 0x0d
const LF = 0x0a
const SLASH = 0x2f
const ASTERISK = 0x2a
const LEFT_BRACKET = 0x5b
const DEL = 0x7f

/**
 * Longest method accepted. RFC 9110 sets no limit; the longest registered method
 * (UPDATEREDIRECTREF) has 17 bytes. The bound lets a long run of token bytes be refused early
 * instead of holding the decision until the caller's byte limit.
 */
export const MAX_METHOD_LENGTH = 64

/** `HTTP/1.` in ASCII. */
const VERSION_PREFIX = Uint8Array.of(0x48, 0x54, 0x54, 0x50, 0x2f, 0x31, 0x2e)

/** `TCHAR[b] === 1` when byte `b` is a token character (RFC 9110 §5.6.2). */
export const TCHAR: Readonly<Uint8Array> = (() => {
  const table = new Uint8Array(256)
  for (let c = 0x30; c <= 0x39; c++) table[c] = 1
  for (let c = 0x41; c <= 0x5a; c++) table[c] = 1
  for (let c = 0x61; c <= 0x7a; c++) table[c] = 1
  for (const c of "!#$%&'*+-.^_`|~") table[c.charCodeAt(0)] = 1
  return table
})()

/** Whether `byte` is a token character. */
export function isTchar (byte: number): boolean {
  return TCHAR[byte] === 1
}

function isAlphaNumeric (byte: number): boolean {
  return (byte >= 0x30 && byte <= 0x39) || ((byte | 0x20) >= 0x61 && (byte | 0x20) <= 0x7a)
}

/** A request-target byte: anything but control characters, SP and DEL. */
function isTargetByte (byte: number): boolean {
  return byte > SP && byte !== DEL
}

/** The verdict for a request line at the start of `bytes`. */
function detectRequestLine (bytes: Uint8Array): Verdict {
  const n = bytes.length
  let i = 0

  // method
  while (i < n && TCHAR[bytes[i]] === 1) {
    if (++i > MAX_METHOD_LENGTH) return 'no'
  }
  if (i === n) return 'more'
  if (i === 0 || bytes[i] !== SP) return 'no'
  i++

  // request-target
  if (i === n) return 'more'
  const first = bytes[i]
  if (first === ASTERISK) {
    i++
  } else {
    if (first !== SLASH && first !== LEFT_BRACKET && !isAlphaNumeric(first)) return 'no'
    while (i < n && isTargetByte(bytes[i])) i++
  }
  if (i === n) return 'more'
  if (bytes[i] !== SP) return 'no'
  i++

  // HTTP-version and the line end
  for (let k = 0; k < VERSION_PREFIX.length; k++, i++) {
    if (i === n) return 'more'
    if (bytes[i] !== VERSION_PREFIX[k]) return 'no'
  }
  if (i === n) return 'more'
  if (bytes[i] < 0x30 || bytes[i] > 0x39) return 'no'
  i++
  if (i === n) return 'more'
  return bytes[i] === CR || bytes[i] === LF ? 'match' : 'no'
}

/** The HTTP/1.x detector: `'match'` at the end of a well-formed request line. */
export const http = {
  name: 'http',
  detect: detectRequestLine
} satisfies Detector
