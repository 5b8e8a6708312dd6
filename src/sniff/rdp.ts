import type { Detector, Verdict } from './types.js'

const TPKT_VERSION = 3
const TPKT_HEADER_BYTES = 4
const X224_CR_CODE = 0xe0
const CR_HEADER_END = 11
/** LI counts the CR header from the code on: LI = TPKT length − TPKT header − 1. */
const LI_OVERHEAD = TPKT_HEADER_BYTES + 1
/** LI 255 is reserved for an extension; 254 is the largest real value. */
const MAX_LI = 254
const MAX_LENGTH = MAX_LI + LI_OVERHEAD
const OFFSET_LI = 4
const OFFSET_CODE = 5
const OFFSET_DST_REF = 6
const OFFSET_CLASS = 10
const CLASS_0 = 0

const TYPE_RDP_NEG_REQ = 0x01
const NEG_REQ_BYTES = 8
const FLAG_CORRELATION_INFO_PRESENT = 0x08
const TYPE_RDP_CORRELATION_INFO = 0x06
const CORRELATION_INFO_BYTES = 36
const CR = 0x0d
const LF = 0x0a

/** The fixed header bytes, each checked as soon as it has arrived: `false` at a wrong one. */
function headerSoFarValid (bytes: Uint8Array): boolean {
  const n = bytes.length
  if (n > 0 && bytes[0] !== TPKT_VERSION) return false
  if (n > 1 && bytes[1] !== 0) return false
  if (n > 2 && bytes[2] > MAX_LENGTH >>> 8) return false
  if (n > 3) {
    const length = (bytes[2] << 8) | bytes[3]
    if (length < CR_HEADER_END || length > MAX_LENGTH) return false
    if (n > OFFSET_LI && bytes[OFFSET_LI] !== length - LI_OVERHEAD) return false
  }
  if (n > OFFSET_CODE && bytes[OFFSET_CODE] !== X224_CR_CODE) return false
  if (n > OFFSET_DST_REF && bytes[OFFSET_DST_REF] !== 0) return false
  if (n > OFFSET_DST_REF + 1 && bytes[OFFSET_DST_REF + 1] !== 0) return false
  if (n > OFFSET_CLASS && bytes[OFFSET_CLASS] !== CLASS_0) return false
  return true
}

/** RDP_NEG_REQ at `at`, with its correlation info when its flag says so, ending at `end`. */
function isNegotiation (bytes: Uint8Array, at: number, end: number): boolean {
  if (end - at < NEG_REQ_BYTES || bytes[at] !== TYPE_RDP_NEG_REQ) return false
  if (bytes[at + 2] !== NEG_REQ_BYTES || bytes[at + 3] !== 0) return false
  const rest = end - at - NEG_REQ_BYTES
  if ((bytes[at + 1] & FLAG_CORRELATION_INFO_PRESENT) === 0) return rest === 0
  const info = at + NEG_REQ_BYTES
  return rest === CORRELATION_INFO_BYTES && bytes[info] === TYPE_RDP_CORRELATION_INFO &&
    bytes[info + 1] === 0 && bytes[info + 2] === CORRELATION_INFO_BYTES && bytes[info + 3] === 0
}

/** Index just past the first CR LF in `[at, end)`, or -1 when there is none (or a bare CR/LF). */
function afterFirstCrLf (bytes: Uint8Array, at: number, end: number): number {
  for (let i = at; i + 1 < end; i++) {
    if (bytes[i] === CR) return bytes[i + 1] === LF ? i + 2 : -1
    if (bytes[i] === LF) return -1
  }
  return -1
}

/** The variable part `[CR_HEADER_END, end)`: [cookie or token CR LF] [RDP_NEG_REQ [correlation]]. */
function isRdpVariablePart (bytes: Uint8Array, end: number): boolean {
  let at = CR_HEADER_END
  if (at === end) return true
  if (bytes[at] !== TYPE_RDP_NEG_REQ) {
    at = afterFirstCrLf(bytes, at, end)
    if (at < 0) return false
    if (at === end) return true
  }
  return isNegotiation(bytes, at, end)
}

/**
 * RDP: a TPKT + X.224 Connection Request whose variable part is RDP's.
 *
 * The request (MS-RDPBCGR 2.2.1.1, RFC 1006, X.224 §13.3):
 *
 *   0  TPKT version 3, reserved 0, length (2 bytes, big-endian, the whole packet)
 *   4  LI: the TPDU header's length, not counting LI itself; RDP clients count everything
 *      after it, so LI = TPKT length − 5
 *   5  0xE0: CR, credit 0
 *   6  DST-REF 0 (no connection yet), SRC-REF (2 bytes, any), class option 0 (class 0)
 *  11  what RDP puts in the variable part, each piece optional:
 *      - a cookie `Cookie: mstshash=<user>\r\n` or a routing token (`Cookie: msts=…\r\n`,
 *        or a load-balance string like `tsv://MS Terminal Services Plugin.1.<farm>\r\n`):
 *        bytes that end at the first CR LF;
 *      - RDP_NEG_REQ: type 0x01, flags, length 8 (little-endian), requested protocols (4);
 *      - RDP_NEG_CORRELATION_INFO (36 bytes: type 0x06, flags 0, length 36) after it, when
 *        the request's CORRELATION_INFO_PRESENT flag says so.
 *
 * The 11-byte TPKT + CR header is shared with every other ISO-on-TCP user (S7, MMS,
 * T.125 …), whose variable part holds X.224 parameters (0xC0/0xC1/0xC2 …). So the header
 * alone is not certain (though every wrong header byte is a `'no'` as soon as it arrives);
 * the variable part is what says RDP. As LI is one byte, the whole request is at most
 * 259 bytes, and a client sends it in one write and then waits for the Connection Confirm:
 * the detector waits for the complete TPDU and parses it, which costs no latency.
 * A bare CR (no variable part, 11 bytes — what the oldest RDP clients sent) is accepted.
 * Bytes after the TPDU are not looked at.
 */
export const rdp = {
  name: 'rdp',
  detect (bytes: Uint8Array): Verdict {
    if (!headerSoFarValid(bytes)) return 'no'
    if (bytes.length < TPKT_HEADER_BYTES) return 'more'
    const length = (bytes[2] << 8) | bytes[3]
    if (bytes.length < length) return 'more'
    return isRdpVariablePart(bytes, length) ? 'match' : 'no'
  }
} satisfies Detector
