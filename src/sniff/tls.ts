/**
 * TLS ClientHello detection and parsing (RFC 8446 §4.1.2, RFC 5246 §7.4.1.2, RFC 6066 §3,
 * RFC 7301 §3.1).
 *
 * On the wire a client opens with one or more TLS records, each a 5-byte header
 * (content type, legacy record version, 16-bit length) followed by that many bytes of fragment.
 * The fragments of the handshake records (content type 22), joined, carry the handshake
 * messages; the first must be a ClientHello: a 4-byte header (type 1, 24-bit length) and then
 *
 *     legacy_version (2) · random (32) · session_id <0..32> · cipher_suites <2..2^16-2>
 *     · compression_methods <1..2^8-1> · [ extensions <0..2^16-1> ]
 *
 * Everything is read by index straight out of the caller's bytes: the detector allocates nothing,
 * and `parseClientHello` only its result (strings, arrays) on a match. A message spread over
 * several records (rare: DPI-evasion tools and hellos above 16 KiB do it) is first joined into a
 * reused scratch buffer.
 */
import type { Detector, Verdict } from './types.js'

/** Record content type of handshake records. */
const CONTENT_TYPE_HANDSHAKE = 0x16
/** Handshake message type of a ClientHello. */
const HANDSHAKE_CLIENT_HELLO = 0x01
/** Every TLS and SSL 3.0 version has major version 3; minor 0 (SSL 3.0) to 4 (TLS 1.3). */
const VERSION_MAJOR = 0x03
const VERSION_MINOR_MAX = 0x04

const RECORD_HEADER_LENGTH = 5
const HANDSHAKE_HEADER_LENGTH = 4
const RANDOM_LENGTH = 32
const MAX_SESSION_ID_LENGTH = 32
/**
 * Largest record fragment accepted. A plaintext record may carry at most 2^14 bytes
 * (RFC 8446 §5.1); we allow the 256 bytes of TLS 1.3 ciphertext expansion on top, so that a
 * sloppy but otherwise real client is still routed to the TLS stack, which then answers
 * with a proper alert instead of the mux dropping it.
 */
const MAX_RECORD_LENGTH = 16384 + 256
/** version + random + session id length + one cipher suite + one compression method. */
const MIN_CLIENT_HELLO_BODY = 2 + RANDOM_LENGTH + 1 + 2 + 2 + 1 + 1
/** The longest host name OpenSSL (and DNS) accepts. */
const MAX_HOST_NAME_LENGTH = 255

const EXT_SERVER_NAME = 0x0000
const EXT_ALPN = 0x0010
const EXT_SUPPORTED_VERSIONS = 0x002b
const SNI_TYPE_HOST_NAME = 0x00
const COMPRESSION_NULL = 0x00

/** What `maxBytes` defaults to: the mux's default `maxSniffBytes`. */
export const DEFAULT_MAX_HELLO_BYTES = 16384

/** What a ClientHello tells a router. */
export interface ClientHello {
  /** The host_name from server_name, lower-cased, without a trailing dot. */
  sni?: string
  /** The ALPN protocol names offered, in the client's order (empty without the extension). */
  alpn: string[]
  /**
   * The versions offered: supported_versions when present (GREASE values left out),
   * else `[legacyVersion]`. `0x0304` is TLS 1.3, `0x0303` TLS 1.2, …, `0x0300` SSL 3.0.
   */
  versions: number[]
  /** The ClientHello's legacy_version field. */
  legacyVersion: number
  /** Whether the hello has an extensions block at all (SSL 3.0 era clients may not). */
  hasExtensions: boolean
}

/**
 * The result of {@link parseClientHello}. On a match, `length` is the number of bytes taken by
 * the records that hold the whole ClientHello (the end of the last of them).
 */
export type ClientHelloResult =
  | { verdict: 'more' }
  | { verdict: 'no', reason: string }
  | { verdict: 'match', hello: ClientHello, length: number }

/** Why bytes are not a ClientHello. Stable strings, meant for logs and stats. */
export type ClientHelloReason =
  | 'not-handshake-record'
  | 'bad-record-version'
  | 'empty-record'
  | 'record-too-long'
  | 'not-client-hello'
  | 'hello-too-short'
  | 'hello-too-large'
  | 'bad-legacy-version'
  | 'bad-session-id'
  | 'bad-cipher-suites'
  | 'bad-compression-methods'
  | 'truncated-hello'
  | 'bad-extensions-length'
  | 'bad-extension'
  | 'duplicate-extension'
  | 'bad-server-name'
  | 'bad-alpn'
  | 'bad-supported-versions'

/** Internal outcome: a complete hello, not yet, or a reason why never. */
type Outcome = 'match' | 'more' | ClientHelloReason

const MORE_RESULT: ClientHelloResult = Object.freeze({ verdict: 'more' })

/**
 * Fast check of a TLS handshake record start: content type 0x16, then version major 0x03 and
 * minor 0x00–0x04. `'match'` after those 3 bytes, `'no'` at the first wrong byte. Allocates
 * nothing; it does not look at the ClientHello itself (see {@link tls} for that).
 */
export function looksLikeTls (bytes: Uint8Array): Verdict {
  const n = bytes.length
  if (n === 0) return 'more'
  if (bytes[0] !== CONTENT_TYPE_HANDSHAKE) return 'no'
  if (n === 1) return 'more'
  if (bytes[1] !== VERSION_MAJOR) return 'no'
  if (n === 2) return 'more'
  return bytes[2] <= VERSION_MINOR_MAX ? 'match' : 'no'
}

function u16 (bytes: Uint8Array, at: number): number {
  return (bytes[at] << 8) | bytes[at + 1]
}

/**
 * Walk the records from offset 0 until they hold the whole ClientHello message.
 * Returns the end offset of the last record needed (a number ≥ 0), or `'more'`, or a reason.
 *
 * Each record header is checked as soon as its bytes are there, and the 4-byte handshake header
 * (which may itself straddle records) as soon as its bytes are there, so non-TLS input is
 * refused within the first few bytes and an impossible length without waiting for it.
 */
function locateHello (bytes: Uint8Array, maxBytes: number): number | Outcome {
  const n = bytes.length
  let pos = 0
  /** Message bytes carried by the complete records walked so far. */
  let carried = 0
  /** Bytes of the handshake header folded in so far (0–4), and its 24-bit length. */
  let headerSeen = 0
  let bodyLength = 0
  for (;;) {
    if (pos >= n) return 'more'
    if (bytes[pos] !== CONTENT_TYPE_HANDSHAKE) return 'not-handshake-record'
    if (pos + 1 >= n) return 'more'
    if (bytes[pos + 1] !== VERSION_MAJOR) return 'bad-record-version'
    if (pos + 2 >= n) return 'more'
    if (bytes[pos + 2] > VERSION_MINOR_MAX) return 'bad-record-version'
    if (pos + 4 >= n) return 'more'
    const recordLength = u16(bytes, pos + 3)
    if (recordLength === 0) return 'empty-record'
    if (recordLength > MAX_RECORD_LENGTH) return 'record-too-long'
    const fragmentStart = pos + RECORD_HEADER_LENGTH
    const fragmentEnd = fragmentStart + recordLength
    if (fragmentEnd > maxBytes) return 'hello-too-large'

    // Fold in the handshake header bytes that this fragment carries.
    const available = Math.min(fragmentEnd, n)
    for (let i = fragmentStart; i < available && headerSeen < HANDSHAKE_HEADER_LENGTH; i++) {
      if (headerSeen === 0) {
        if (bytes[i] !== HANDSHAKE_CLIENT_HELLO) return 'not-client-hello'
      } else {
        bodyLength = bodyLength * 256 + bytes[i]
      }
      headerSeen++
      if (headerSeen === HANDSHAKE_HEADER_LENGTH && bodyLength < MIN_CLIENT_HELLO_BODY) return 'hello-too-short'
    }

    if (headerSeen === HANDSHAKE_HEADER_LENGTH) {
      const messageLength = HANDSHAKE_HEADER_LENGTH + bodyLength
      const missing = messageLength - (carried + recordLength)
      // Fewest bytes the whole hello can take: this record, then one more record holding the rest.
      if (missing > 0 && fragmentEnd + RECORD_HEADER_LENGTH + missing > maxBytes) return 'hello-too-large'
      if (fragmentEnd > n) return 'more'
      if (missing <= 0) return fragmentEnd
    } else if (fragmentEnd > n) {
      return 'more'
    }
    carried += recordLength
    pos = fragmentEnd
  }
}

/**
 * Scratch space for joining a hello spread over several records. Parsing is synchronous and
 * every string is copied out before `parseClientHello` returns, so one buffer can serve every
 * call; hellos above {@link MAX_SCRATCH_LENGTH} get a buffer of their own instead of growing it.
 */
let scratch: Uint8Array | undefined
const MAX_SCRATCH_LENGTH = 65536

/**
 * Join the message fragments of the records in `bytes[0, end)` into one buffer holding the
 * ClientHello body (the handshake header left out) at offset 0. Only used when the hello spans
 * records; the buffer may be longer than the body.
 */
function joinBody (bytes: Uint8Array, end: number, bodyLength: number): Uint8Array {
  let body: Uint8Array
  if (bodyLength > MAX_SCRATCH_LENGTH) {
    body = new Uint8Array(bodyLength)
  } else {
    if (scratch === undefined || scratch.length < bodyLength) scratch = new Uint8Array(Math.max(bodyLength, MAX_RECORD_LENGTH))
    body = scratch
  }
  let skip = HANDSHAKE_HEADER_LENGTH
  let written = 0
  for (let pos = 0; pos < end && written < bodyLength;) {
    const fragmentEnd = pos + RECORD_HEADER_LENGTH + u16(bytes, pos + 3)
    let from = pos + RECORD_HEADER_LENGTH
    const dropped = Math.min(skip, fragmentEnd - from)
    from += dropped
    skip -= dropped
    const take = Math.min(fragmentEnd - from, bodyLength - written)
    body.set(bytes.subarray(from, from + take), written)
    written += take
    pos = fragmentEnd
  }
  return body
}

/** The 24-bit handshake body length, read across record boundaries (records known complete). */
function readBodyLength (bytes: Uint8Array): number {
  let value = 0
  let seen = 0
  for (let pos = 0; seen < HANDSHAKE_HEADER_LENGTH;) {
    const fragmentEnd = pos + RECORD_HEADER_LENGTH + u16(bytes, pos + 3)
    for (let i = pos + RECORD_HEADER_LENGTH; i < fragmentEnd && seen < HANDSHAKE_HEADER_LENGTH; i++) {
      if (seen > 0) value = value * 256 + bytes[i]
      seen++
    }
    pos = fragmentEnd
  }
  return value
}

function isGrease (value: number): boolean {
  return (value & 0x0f0f) === 0x0a0a && (value >> 8) === (value & 0xff)
}

/** Strings up to this length are built by concatenation (V8 keeps them flat); longer ones by Buffer. */
const SHORT_STRING = 12

/** Latin-1 text of `bytes[start, end)`: each byte one character. */
function latin1 (bytes: Uint8Array, start: number, end: number): string {
  if (end - start > SHORT_STRING) return Buffer.from(bytes.buffer, bytes.byteOffset + start, end - start).toString('latin1')
  let text = ''
  for (let i = start; i < end; i++) text += String.fromCharCode(bytes[i])
  return text
}

/**
 * server_name (RFC 6066 §3): a 2-byte list length, then entries of name_type (1) and a 2-byte
 * length. Like OpenSSL we accept exactly one entry, of type host_name, 1–255 bytes of visible
 * ASCII. The name is stored lower-cased without its trailing dot.
 */
function readServerName (bytes: Uint8Array, start: number, end: number, hello: ClientHello | null): Outcome {
  if (end - start < 2 + 3) return 'bad-server-name'
  if (u16(bytes, start) !== end - start - 2) return 'bad-server-name'
  if (bytes[start + 2] !== SNI_TYPE_HOST_NAME) return 'bad-server-name'
  const nameStart = start + 5
  const nameLength = u16(bytes, start + 3)
  if (nameLength === 0 || nameLength > MAX_HOST_NAME_LENGTH || nameStart + nameLength !== end) return 'bad-server-name'
  let upper = false
  for (let i = nameStart; i < end; i++) {
    const c = bytes[i]
    if (c <= 0x20 || c >= 0x7f) return 'bad-server-name'
    if (c >= 0x41 && c <= 0x5a) upper = true
  }
  const nameEnd = bytes[end - 1] === 0x2e ? end - 1 : end
  if (nameEnd === nameStart) return 'bad-server-name'
  if (hello !== null) {
    const name = latin1(bytes, nameStart, nameEnd)
    hello.sni = upper ? name.toLowerCase() : name
  }
  return 'match'
}

/**
 * application_layer_protocol_negotiation (RFC 7301 §3.1): a 2-byte list length, then names of
 * 1–255 bytes each prefixed by their 1-byte length; the list may not be empty.
 */
function readAlpn (bytes: Uint8Array, start: number, end: number, hello: ClientHello | null): Outcome {
  if (end - start < 2 + 2) return 'bad-alpn'
  if (u16(bytes, start) !== end - start - 2) return 'bad-alpn'
  for (let p = start + 2; p < end;) {
    const length = bytes[p]
    if (length === 0 || p + 1 + length > end) return 'bad-alpn'
    if (hello !== null) hello.alpn.push(latin1(bytes, p + 1, p + 1 + length))
    p += 1 + length
  }
  return 'match'
}

/** supported_versions in a ClientHello (RFC 8446 §4.2.1): a 1-byte length, then 2-byte versions. */
function readSupportedVersions (bytes: Uint8Array, start: number, end: number, hello: ClientHello | null): Outcome {
  const length = end - start - 1
  if (length < 2 || (length & 1) !== 0 || bytes[start] !== length) return 'bad-supported-versions'
  if (hello !== null) {
    for (let p = start + 1; p < end; p += 2) {
      const version = u16(bytes, p)
      if (!isGrease(version)) hello.versions.push(version)
    }
  }
  return 'match'
}

/** Seen-flags for the extensions we read, so that a second copy of one is refused. */
const SEEN_SERVER_NAME = 1
const SEEN_ALPN = 2
const SEEN_SUPPORTED_VERSIONS = 4

/** Walk the extensions block `bytes[start, end)`: 2-byte type, 2-byte length, data, until `end` exactly. */
function readExtensions (bytes: Uint8Array, start: number, end: number, hello: ClientHello | null): Outcome {
  let seen = 0
  for (let p = start; p < end;) {
    if (p + 4 > end) return 'bad-extension'
    const type = u16(bytes, p)
    const dataStart = p + 4
    const dataEnd = dataStart + u16(bytes, p + 2)
    if (dataEnd > end) return 'bad-extension'
    let outcome: Outcome = 'match'
    let flag = 0
    if (type === EXT_SERVER_NAME) {
      flag = SEEN_SERVER_NAME
      outcome = readServerName(bytes, dataStart, dataEnd, hello)
    } else if (type === EXT_ALPN) {
      flag = SEEN_ALPN
      outcome = readAlpn(bytes, dataStart, dataEnd, hello)
    } else if (type === EXT_SUPPORTED_VERSIONS) {
      flag = SEEN_SUPPORTED_VERSIONS
      outcome = readSupportedVersions(bytes, dataStart, dataEnd, hello)
    }
    if ((seen & flag) !== 0) return 'duplicate-extension'
    if (outcome !== 'match') return outcome
    seen |= flag
    p = dataEnd
  }
  return 'match'
}

/**
 * Check the ClientHello body `bytes[start, end)` field by field, filling `hello` when given.
 * A body that stops right after compression_methods is a hello without extensions (valid).
 */
function readBody (bytes: Uint8Array, start: number, end: number, hello: ClientHello | null): Outcome {
  let p = start
  if (bytes[p] !== VERSION_MAJOR || bytes[p + 1] > VERSION_MINOR_MAX) return 'bad-legacy-version'
  const legacyVersion = u16(bytes, p)
  p += 2 + RANDOM_LENGTH

  const sessionIdLength = bytes[p]
  if (sessionIdLength > MAX_SESSION_ID_LENGTH) return 'bad-session-id'
  p += 1 + sessionIdLength
  if (p + 2 > end) return 'truncated-hello'

  const suitesLength = u16(bytes, p)
  if (suitesLength === 0 || (suitesLength & 1) !== 0) return 'bad-cipher-suites'
  p += 2 + suitesLength
  if (p + 1 > end) return 'truncated-hello'

  const compressionLength = bytes[p]
  p += 1
  if (compressionLength === 0 || p + compressionLength > end) return 'bad-compression-methods'
  let offersNull = false
  for (let i = p; i < p + compressionLength; i++) if (bytes[i] === COMPRESSION_NULL) offersNull = true
  if (!offersNull) return 'bad-compression-methods'
  p += compressionLength

  if (hello !== null) hello.legacyVersion = legacyVersion
  if (p === end) {
    if (hello !== null) hello.versions.push(legacyVersion)
    return 'match'
  }
  if (p + 2 > end || p + 2 + u16(bytes, p) !== end) return 'bad-extensions-length'
  if (hello !== null) hello.hasExtensions = true
  const outcome = readExtensions(bytes, p + 2, end, hello)
  if (outcome === 'match' && hello !== null && hello.versions.length === 0) hello.versions.push(legacyVersion)
  return outcome
}

/** Locate and check the whole hello; fill `hello` (when given) and report the records' end. */
function scanClientHello (bytes: Uint8Array, maxBytes: number, hello: ClientHello | null): number | Outcome {
  const end = locateHello(bytes, maxBytes)
  if (typeof end !== 'number') return end
  const firstRecordLength = u16(bytes, 3)
  const bodyLength = readBodyLength(bytes)
  const outcome = firstRecordLength >= HANDSHAKE_HEADER_LENGTH + bodyLength
    ? readBody(bytes, RECORD_HEADER_LENGTH + HANDSHAKE_HEADER_LENGTH, RECORD_HEADER_LENGTH + HANDSHAKE_HEADER_LENGTH + bodyLength, hello)
    : readBody(joinBody(bytes, end, bodyLength), 0, bodyLength, hello)
  return outcome === 'match' ? end : outcome
}

/**
 * Parse the ClientHello at the start of `bytes` (everything received so far, from offset 0).
 *
 * - `'more'` while the records holding the hello are incomplete and can still fit in `maxBytes`;
 * - `'no'` with a short reason as soon as the bytes cannot be a ClientHello, or when the declared
 *   record or handshake lengths make it impossible to finish within `maxBytes`
 *   (`'hello-too-large'`);
 * - `'match'` with the extracted fields once every record holding the hello is complete.
 *
 * The message may be spread over several handshake records, and the records over any number of
 * reads. Bytes after the hello inside its last record are ignored. Never throws.
 */
export function parseClientHello (bytes: Uint8Array, maxBytes = DEFAULT_MAX_HELLO_BYTES): ClientHelloResult {
  if (looksLikeTls(bytes) === 'more') return MORE_RESULT
  const hello: ClientHello = { alpn: [], versions: [], legacyVersion: 0, hasExtensions: false }
  const outcome = scanClientHello(bytes, maxBytes, hello)
  if (typeof outcome === 'number') return { verdict: 'match', hello, length: outcome }
  return outcome === 'more' ? MORE_RESULT : { verdict: 'no', reason: outcome }
}

/**
 * The TLS detector: `'match'` for a complete, well-formed ClientHello within
 * {@link DEFAULT_MAX_HELLO_BYTES}, `'no'` for anything else, `'more'` while undecided.
 * Builds no strings and no result objects.
 */
export const tls = {
  name: 'tls',
  detect (bytes: Uint8Array): Verdict {
    const quick = looksLikeTls(bytes)
    if (quick !== 'match') return quick
    const outcome = scanClientHello(bytes, DEFAULT_MAX_HELLO_BYTES, null)
    if (typeof outcome === 'number') return 'match'
    return outcome === 'more' ? 'more' : 'no'
  }
} satisfies Detector

const DOT = 0x2e

/** Length of `text` without one trailing dot. */
function trimmedLength (text: string): number {
  return text.length > 0 && text.charCodeAt(text.length - 1) === DOT ? text.length - 1 : text.length
}

/** ASCII case-insensitive comparison of `a[aStart, aStart+length)` and `b[bStart, …)`. */
function equalsIgnoreCase (a: string, aStart: number, b: string, bStart: number, length: number): boolean {
  for (let i = 0; i < length; i++) {
    let x = a.charCodeAt(aStart + i)
    let y = b.charCodeAt(bStart + i)
    if (x >= 0x41 && x <= 0x5a) x += 0x20
    if (y >= 0x41 && y <= 0x5a) y += 0x20
    if (x !== y) return false
  }
  return true
}

/**
 * Whether an SNI `name` matches a route `pattern`. Both compare case-insensitively (ASCII) and
 * without a trailing dot. A pattern `*.example.com` matches exactly one non-empty label in
 * front of `example.com`: `a.example.com`, but not `example.com`, `a.b.example.com` or
 * `.example.com`. Any other `*` is literal. No name (a hello without SNI) never matches.
 */
export function matchServerName (pattern: string, name: string | undefined): boolean {
  if (name === undefined) return false
  const patternLength = trimmedLength(pattern)
  const nameLength = trimmedLength(name)
  if (patternLength === 0 || nameLength === 0) return false
  if (patternLength > 2 && pattern.charCodeAt(0) === 0x2a && pattern.charCodeAt(1) === DOT) {
    // Compare ".example.com", then require one dot-free, non-empty label in front of it.
    const suffixLength = patternLength - 1
    const labelLength = nameLength - suffixLength
    if (labelLength < 1) return false
    if (!equalsIgnoreCase(pattern, 1, name, labelLength, suffixLength)) return false
    for (let i = 0; i < labelLength; i++) if (name.charCodeAt(i) === DOT) return false
    return true
  }
  return patternLength === nameLength && equalsIgnoreCase(pattern, 0, name, 0, nameLength)
}

/** Whether the client offers any of the ALPN `patterns` (exact, case-sensitive, as RFC 7301 compares). */
export function matchAlpn (patterns: readonly string[], offered: readonly string[]): boolean {
  for (const pattern of patterns) {
    if (offered.includes(pattern)) return true
  }
  return false
}
