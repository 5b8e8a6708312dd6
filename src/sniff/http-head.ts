/**
 * A strict HTTP/1.x request-head parser (RFC 9112 §2–§5), for heads that are answered
 * without a full HTTP server:
 *
 *     request-head = request-line *( field-line CRLF ) CRLF
 *     request-line = method SP request-target SP HTTP-version CRLF
 *     field-line   = field-name ":" OWS field-value OWS
 *
 * Only the plainest form is taken; everything a lenient recipient might repair is `'no'`:
 *
 * - method: a token (RFC 9110 §5.6.2), at most {@link MAX_METHOD_LENGTH} bytes;
 * - request-target: visible ASCII only (0x21–0x7E); its form is the caller's to judge;
 * - HTTP-version: `HTTP/1.` and one digit;
 * - every line ends in CRLF: a bare LF or a CR not followed by LF is `'no'`;
 * - field-name: a token, with the colon right after it (no whitespace before the colon);
 * - field-value: visible ASCII, obs-text (0x80–0xFF), SP and HTAB; any other control byte,
 *   DEL included, is `'no'`. Leading and trailing SP/HTAB are not part of the value, and
 *   `padded` tells whether any value was followed by some (recipients do not all treat that
 *   alike: Node refuses a Content-Length followed by HTAB);
 * - a line starting with SP or HTAB (obs-fold, or whitespace before the first field) is `'no'`.
 *
 * `'more'` while the head is incomplete and shorter than the bound; `'no'` once it is longer.
 * Bytes after the empty line are not looked at: `length` says where the head ends.
 *
 * The parser reads the bytes once, by index; strings are made only for what it returns.
 */
import { TCHAR, MAX_METHOD_LENGTH } from './http.js'

export { MAX_METHOD_LENGTH }

export interface RequestHead {
  method: string
  target: string
  /** The digit after `HTTP/1.`. */
  minor: number
  /** Field names as sent and their values (latin1, without the surrounding whitespace), alternating. */
  fields: string[]
  /** Whether some non-empty field value was followed by SP or HTAB. */
  padded: boolean
  /** Bytes of the head, the final empty line included. */
  length: number
}

export type HeadResult =
  | { verdict: 'match', head: RequestHead }
  | { verdict: 'no' }
  | { verdict: 'more' }

const SP = 0x20
const HTAB = 0x09
const CR = 0x0d
const LF = 0x0a
const COLON = 0x3a
const DEL = 0x7f

/** Buffer's own latin1 decoder of a range (undocumented, but as old as Buffer; undici reads headers with it too). */
interface Latin1View { latin1Slice: (start: number, end: number) => string }

const NO: HeadResult = { verdict: 'no' }
const MORE: HeadResult = { verdict: 'more' }

/** `HTTP/1.` in ASCII. */
const VERSION_PREFIX = Uint8Array.of(0x48, 0x54, 0x54, 0x50, 0x2f, 0x31, 0x2e)

/** A field-value byte: SP, HTAB, visible ASCII or obs-text. */
function isValueByte (byte: number): boolean {
  return byte === HTAB || (byte >= SP && byte !== DEL)
}


/**
 * Parse the request head at the start of `bytes`. A head of more than `maxLength` bytes
 * (the final CRLF included) is `'no'`.
 */
export function parseRequestHead (bytes: Uint8Array, maxLength: number): HeadResult {
  const n = Math.min(bytes.length, maxLength)
  const view = (Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length)) as unknown as Latin1View
  // Past the bound, a verdict of 'more' turns into 'no'.
  const short = bytes.length < maxLength ? MORE : NO
  let i = 0

  // method
  while (i < n && TCHAR[bytes[i]] === 1) {
    if (++i > MAX_METHOD_LENGTH) return NO
  }
  if (i === n) return short
  if (i === 0 || bytes[i] !== SP) return NO
  const method = view.latin1Slice(0, i)
  i++

  // request-target
  const targetStart = i
  while (i < n && bytes[i] > SP && bytes[i] < DEL) i++
  if (i === n) return short
  if (i === targetStart || bytes[i] !== SP) return NO
  const target = view.latin1Slice(targetStart, i)
  i++

  // HTTP-version CRLF
  for (let k = 0; k < VERSION_PREFIX.length; k++, i++) {
    if (i === n) return short
    if (bytes[i] !== VERSION_PREFIX[k]) return NO
  }
  if (i === n) return short
  const digit = bytes[i]
  if (digit < 0x30 || digit > 0x39) return NO
  i++
  if (i === n) return short
  if (bytes[i] !== CR) return NO
  if (++i === n) return short
  if (bytes[i] !== LF) return NO
  i++

  // field lines, up to the empty line
  const fields: string[] = []
  let padded = false
  for (;;) {
    if (i === n) return short
    if (bytes[i] === CR) {
      if (++i === n) return short
      if (bytes[i] !== LF) return NO
      return { verdict: 'match', head: { method, target, minor: digit - 0x30, fields, padded, length: i + 1 } }
    }
    const nameStart = i
    while (i < n && TCHAR[bytes[i]] === 1) i++
    if (i === n) return short
    // An empty name covers obs-fold and leading whitespace; whitespace before the colon is 'no' too.
    if (i === nameStart || bytes[i] !== COLON) return NO
    const name = view.latin1Slice(nameStart, i)
    i++
    while (i < n && (bytes[i] === SP || bytes[i] === HTAB)) i++
    const valueStart = i
    let valueEnd = i
    while (i < n && isValueByte(bytes[i])) {
      if (bytes[i] !== SP && bytes[i] !== HTAB) valueEnd = i + 1
      i++
    }
    if (i === n) return short
    if (bytes[i] !== CR) return NO
    if (++i === n) return short
    if (bytes[i] !== LF) return NO
    if (valueEnd !== valueStart && valueEnd !== i - 1) padded = true
    i++
    fields.push(name, view.latin1Slice(valueStart, valueEnd))
  }
}
