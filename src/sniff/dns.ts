import type { Detector, Verdict } from './types.js'

const LENGTH_BYTES = 2
/** Offsets in `bytes`, counting the 2-byte length prefix. */
const FLAGS_HIGH = 4
const FLAGS_LOW = 5
const QDCOUNT = 6
const ANCOUNT = 8
const NSCOUNT = 10
const ARCOUNT = 12
const QUESTION = 14
const HEADER_BYTES = 12

/** Flag bits of the first flags byte. */
const QR = 0x80
const OPCODE_SHIFT = 3
const OPCODE_MASK = 0x0f
const AA = 0x04
const TC = 0x02
const RD = 0x01
/** Flag bits of the second: RA and Z must be clear in a request, and so must RCODE. */
const RA_Z_RCODE = 0xcf

const OPCODE_QUERY = 0
const OPCODE_NOTIFY = 4
const OPCODE_UPDATE = 5

/** The shortest question: the root name (1 byte), QTYPE, QCLASS. */
const MIN_QUESTION_BYTES = 1 + 2 + 2
const MIN_MESSAGE_LENGTH = HEADER_BYTES + MIN_QUESTION_BYTES
/** The shortest resource record: root name, TYPE, CLASS, TTL, RDLENGTH. */
const MIN_RR_BYTES = 1 + 2 + 2 + 4 + 2
/** A query or NOTIFY is small: a name, EDNS options and a TSIG fit well under this. */
const MAX_QUERY_LENGTH = 4096
/** An OPT record and a TSIG (or SIG(0)): the most a client puts in the additional section. */
const MAX_ADDITIONAL = 2
const MAX_LABEL_LENGTH = 63
const MAX_NAME_BYTES = 255
const TYPE_SOA = 6
/** QCLASS values a question may carry: IN, CH, HS, NONE, ANY. */
const QCLASSES: ReadonlySet<number> = new Set([1, 3, 4, 254, 255])
/** Printable ASCII without the space: what a label holds in practice (IDNs travel as punycode). */
const LABEL_MIN = 0x21
const LABEL_MAX = 0x7e

function u16 (bytes: Uint8Array, at: number): number {
  return (bytes[at] << 8) | bytes[at + 1]
}

/** Does the first flags byte fit a request with this opcode? */
function isRequestFlags (high: number): boolean {
  if ((high & (QR | TC)) !== 0) return false
  const opcode = (high >> OPCODE_SHIFT) & OPCODE_MASK
  if (opcode === OPCODE_QUERY) return (high & AA) === 0
  if (opcode === OPCODE_UPDATE) return (high & (AA | RD)) === 0
  return opcode === OPCODE_NOTIFY
}

/** Is the count at `at` (QDCOUNT…ARCOUNT) possible in a request with `opcode`? */
function isCountSane (opcode: number, at: number, count: number): boolean {
  switch (at) {
    case QDCOUNT: return count === 1
    case ANCOUNT: return opcode === OPCODE_QUERY ? count === 0 : opcode === OPCODE_NOTIFY ? count <= 1 : true
    case NSCOUNT: return opcode === OPCODE_UPDATE || count === 0
    default: return count <= MAX_ADDITIONAL
  }
}

/** Judge the counts that have arrived: `false` at the first impossible one. */
function areCountsSane (bytes: Uint8Array, opcode: number): boolean {
  for (let at = QDCOUNT; at <= ARCOUNT && at + 2 <= bytes.length; at += 2) {
    if (!isCountSane(opcode, at, u16(bytes, at))) return false
  }
  return true
}

/**
 * Walk the question name from `QUESTION`: `'no'` at a bad label, `'more'` when the name is
 * not complete yet, else the index just after its terminating zero byte.
 */
function nameEnd (bytes: Uint8Array, messageEnd: number): number | 'no' | 'more' {
  let p = QUESTION
  for (;;) {
    if (p >= bytes.length) return 'more'
    const label = bytes[p]
    if (label === 0) return p + 1
    // 64–255: compression pointers (nothing yet to point at) and the obsolete extended labels.
    if (label > MAX_LABEL_LENGTH) return 'no'
    if (p + 1 + label + 1 - QUESTION > MAX_NAME_BYTES || p + 1 + label + 1 + 4 > messageEnd) return 'no'
    const end = Math.min(bytes.length, p + 1 + label)
    for (let i = p + 1; i < end; i++) {
      if (bytes[i] < LABEL_MIN || bytes[i] > LABEL_MAX) return 'no'
    }
    p += 1 + label
  }
}

/**
 * DNS over TCP (RFC 1035 §4.2.2, RFC 7766): a client's first request.
 *
 * Over TCP every DNS message is a 2-byte big-endian length, then that many bytes: a 12-byte
 * header (ID, two flag bytes, QDCOUNT, ANCOUNT, NSCOUNT, ARCOUNT), then the question (a name
 * as length-prefixed labels ending in a zero byte, QTYPE, QCLASS), then records.
 *
 * What a request must be, checked as each byte arrives:
 *
 * - length: at least 17 (header and the shortest question); a QUERY or NOTIFY at most 4096
 *   (an UPDATE may use the whole 16-bit length);
 * - first flags byte: QR clear (a request), TC clear, opcode QUERY (AA clear), NOTIFY
 *   (RFC 1996) or UPDATE (RFC 2136; AA and RD clear); IQUERY and STATUS are obsolete,
 *   DSO (RFC 8490) carries no question;
 * - second flags byte: RA, Z and RCODE clear (AD and CD may be set: dig sets AD);
 * - counts: exactly one question (RFC 9619 for QUERY; NOTIFY too; UPDATE's zone section
 *   holds one zone); a QUERY has no answer or authority records, a NOTIFY at most one answer
 *   (the new SOA); at most 2 additional records (EDNS OPT, TSIG); all the records announced
 *   must fit in the length at 11 bytes each at least;
 * - the question name: labels of 1–63 bytes of printable ASCII (no space), at most 255 bytes
 *   in all, no compression pointer, inside the message; the root name alone is fine;
 * - QTYPE not 0 (SOA for an UPDATE's zone), QCLASS IN, CH, HS, NONE or ANY;
 * - the question ends inside the message, and exactly at its end when no record follows.
 *
 * `'match'` as soon as the question is complete; the records after it are not read. `'no'`
 * at the first field that rules a request out: the first flags byte alone stops HTTP, TLS
 * and SSH. The length and a counts block of `00 01 00 00 00 00 00 0x` is what makes it
 * certain; an OpenVPN tls-crypt reset can look like a DNS query only if its random session
 * id happens to spell a header and a name, so route `dns` before `openvpn` (the reverse holds
 * too: a query whose ID starts with 0x38 can pass for a tls-crypt reset).
 */
export const dns = {
  name: 'dns',
  detect (bytes: Uint8Array): Verdict {
    if (bytes.length < LENGTH_BYTES) return 'more'
    const length = u16(bytes, 0)
    if (length < MIN_MESSAGE_LENGTH) return 'no'
    if (bytes.length <= FLAGS_HIGH) return 'more'
    const high = bytes[FLAGS_HIGH]
    if (!isRequestFlags(high)) return 'no'
    const opcode = (high >> OPCODE_SHIFT) & OPCODE_MASK
    if (opcode !== OPCODE_UPDATE && length > MAX_QUERY_LENGTH) return 'no'
    if (bytes.length <= FLAGS_LOW) return 'more'
    const low = bytes[FLAGS_LOW]
    if ((low & RA_Z_RCODE) !== 0 || (opcode !== OPCODE_QUERY && low !== 0)) return 'no'
    if (!areCountsSane(bytes, opcode)) return 'no'
    if (bytes.length < QUESTION) return 'more'
    const records = u16(bytes, ANCOUNT) + u16(bytes, NSCOUNT) + u16(bytes, ARCOUNT)
    if (records * MIN_RR_BYTES > length - MIN_MESSAGE_LENGTH) return 'no'

    const messageEnd = LENGTH_BYTES + length
    const end = nameEnd(bytes, messageEnd)
    if (typeof end !== 'number') return end
    const questionEnd = end + 4
    if (records === 0 ? questionEnd !== messageEnd : messageEnd - questionEnd < records * MIN_RR_BYTES) return 'no'
    if (bytes.length < end + 2) return 'more'
    const qtype = u16(bytes, end)
    if (qtype === 0 || (opcode === OPCODE_UPDATE && qtype !== TYPE_SOA)) return 'no'
    if (bytes.length < questionEnd) return 'more'
    return QCLASSES.has(u16(bytes, end + 2)) ? 'match' : 'no'
  }
} satisfies Detector
