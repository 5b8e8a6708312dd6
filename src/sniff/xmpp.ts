import type { Detector, Verdict } from './types.js'

const MAX_DECLARATION = 256
const MAX_HEADER = 2048
const MAX_PREFIX = 64

const LT = 0x3c
const GT = 0x3e
const QUESTION = 0x3f
const COLON = 0x3a
const SLASH = 0x2f
const QUOTE = 0x22
const APOSTROPHE = 0x27

const BOM = Uint8Array.of(0xef, 0xbb, 0xbf)
/** `<?xml` */
const DECLARATION_OPEN = Uint8Array.of(LT, QUESTION, 0x78, 0x6d, 0x6c)
/** `stream` */
const STREAM = Uint8Array.of(0x73, 0x74, 0x72, 0x65, 0x61, 0x6d)
/** The streams namespace URI. */
const STREAMS_NS = new TextEncoder().encode('http://etherx.jabber.org/streams')

/**
 * Scanning steps return a position in the input (≥ 0) to go on from, or one of these
 * when the scan cannot get past where it is.
 */
const MORE = -1
const NO = -2

function isSpace (b: number): boolean {
  return b === 0x20 || b === 0x09 || b === 0x0d || b === 0x0a
}

/** ASCII letters and `_`: what may start an XML name (non-ASCII names are not XMPP's). */
function isNameStart (b: number): boolean {
  return (b >= 0x61 && b <= 0x7a) || (b >= 0x41 && b <= 0x5a) || b === 0x5f
}

function isNameByte (b: number): boolean {
  return isNameStart(b) || (b >= 0x30 && b <= 0x39) || b === 0x2d || b === 0x2e
}

/** How many leading bytes of `bytes[at…]` agree with `literal` (stops at the first difference). */
function agreeing (bytes: Uint8Array, at: number, literal: Uint8Array): number {
  let n = 0
  while (n < literal.length && at + n < bytes.length && bytes[at + n] === literal[n]) n++
  return n
}

/** Does `bytes[at…]` start with `literal`? `undefined` while too few bytes have arrived to say. */
function startsWith (bytes: Uint8Array, at: number, literal: Uint8Array): boolean | undefined {
  const n = agreeing(bytes, at, literal)
  if (n === literal.length) return true
  return at + n >= bytes.length ? undefined : false
}

/** Past the optional XML declaration starting at `at` (`<?xml` S … `?>`). */
function skipDeclaration (bytes: Uint8Array, at: number): number {
  const open = startsWith(bytes, at, DECLARATION_OPEN)
  if (open === undefined) return MORE
  // `<?` that is not `<?xml`: a processing instruction, which XMPP forbids.
  if (!open) return bytes[at] === LT && bytes[at + 1] === QUESTION ? NO : at
  let i = at + DECLARATION_OPEN.length
  if (i >= bytes.length) return MORE
  if (!isSpace(bytes[i])) return NO
  const limit = at + MAX_DECLARATION
  for (; i < bytes.length; i++) {
    if (i >= limit) return NO
    const b = bytes[i]
    if (b === LT || b === GT) return NO
    if (b === QUESTION) {
      if (i + 1 >= bytes.length) return MORE
      if (bytes[i + 1] === GT) return i + 2
    }
  }
  return MORE
}

/** Past the whitespace at `at`: MORE when the input ends in it, NO past the header bound. */
function skipSpace (bytes: Uint8Array, at: number): number {
  let i = at
  while (i < bytes.length && isSpace(bytes[i])) i++
  if (i >= MAX_HEADER) return NO
  return i < bytes.length ? i : MORE
}

/**
 * The rest of a start tag from `at` to its `>`: `'match'` if the streams namespace URI is
 * an attribute value's content, `'no'` if the tag closes (or the header bound passes)
 * without it. Quotes are followed, so a `>` inside a value does not end the tag.
 */
function tagNamesStreamsNamespace (bytes: Uint8Array, at: number): Verdict {
  let quote = 0
  for (let i = at; i < bytes.length; i++) {
    if (i >= MAX_HEADER) return 'no'
    const b = bytes[i]
    if (quote !== 0) {
      if (b === quote) quote = 0
      else if (b === STREAMS_NS[0] && agreeing(bytes, i, STREAMS_NS) === STREAMS_NS.length) return 'match'
    } else if (b === QUOTE || b === APOSTROPHE) {
      quote = b
    } else if (b === GT || b === LT) {
      return 'no'
    }
  }
  return 'more'
}

/** The stream element's start tag at `at` (its `<`). */
function judgeStartTag (bytes: Uint8Array, at: number): Verdict {
  if (bytes[at] !== LT) return 'no'
  // An optional prefix: a name followed by `:`.
  let i = at + 1
  let prefixEnd = -1
  for (; i < bytes.length; i++) {
    const b = bytes[i]
    if (b === COLON && i > at + 1) {
      prefixEnd = i
      break
    }
    if (!(i === at + 1 ? isNameStart(b) : isNameByte(b)) || i - at > MAX_PREFIX) break
  }
  if (i >= bytes.length) return 'more'
  const localStart = prefixEnd < 0 ? at + 1 : prefixEnd + 1
  const local = startsWith(bytes, localStart, STREAM)
  if (local === undefined) return 'more'
  if (!local) return 'no'
  const after = localStart + STREAM.length
  if (after >= bytes.length) return 'more'
  const b = bytes[after]
  if (b === SLASH || !(isSpace(b) || b === GT)) return 'no'
  const conventional = prefixEnd - (at + 1) === STREAM.length && agreeing(bytes, at + 1, STREAM) === STREAM.length
  if (conventional) return 'match'
  return tagNamesStreamsNamespace(bytes, after)
}

/**
 * XMPP: a stream header, `<stream:stream …>` after an optional XML declaration.
 *
 * An XMPP client (or server, or component) opens with a stream header (RFC 6120 §4.2,
 * §4.8, §11): optionally a UTF-8 byte order mark, optionally the XML declaration
 * `<?xml version='1.0'?>`, optional whitespace, then the start tag of the stream element,
 * qualified by the namespace `http://etherx.jabber.org/streams`:
 *
 *   <stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.org' version='1.0'>
 *
 * XMPP forbids comments and other processing instructions there, so nothing else may come
 * first. The element's name is `stream`; its prefix is conventionally `stream` (every
 * client we know uses it) but RFC 6120 §4.8.5 leaves it free. So:
 *
 * - `<stream:stream` followed by whitespace or `>`: certain, `'match'` right there (no other
 *   protocol opens with it; sslh looks for "jabber" anywhere, which HTTP can contain too);
 * - `<P:stream` with another prefix, or `<stream` unprefixed: certain only once the start
 *   tag, read to its closing `>` (quotes respected), holds the streams namespace URI in an
 *   attribute value; `'no'` if it closes without it;
 * - anything else: `'no'` at the first byte that cannot fit.
 *
 * How long it waits is bounded: the XML declaration may take 256 bytes, the whole header
 * 2048; past that, `'no'`.
 */
export const xmpp = {
  name: 'xmpp',
  detect (bytes: Uint8Array): Verdict {
    let at = 0
    const bom = startsWith(bytes, 0, BOM)
    if (bom === undefined) return 'more'
    if (bom) at = BOM.length
    if (at >= bytes.length) return 'more'
    at = skipDeclaration(bytes, at)
    if (at < 0) return at === MORE ? 'more' : 'no'
    at = skipSpace(bytes, at)
    if (at < 0) return at === MORE ? 'more' : 'no'
    return judgeStartTag(bytes, at)
  }
} satisfies Detector
