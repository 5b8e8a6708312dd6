import type { Detector, Verdict } from './types.js'

const CHAR_S = 0x53
const CHAR_H = 0x48
const CHAR_DASH = 0x2d
const CHAR_DOT = 0x2e
const CHAR_0 = 0x30
const CHAR_1 = 0x31
const CHAR_2 = 0x32
const CHAR_9 = 0x39

/** `SSH-` */
const PREFIX = Uint8Array.of(CHAR_S, CHAR_S, CHAR_H, CHAR_DASH)
/** The only SSH 2 protoversion, with its terminating dash: `2.0-`. */
const VERSION_2 = Uint8Array.of(CHAR_2, CHAR_DOT, CHAR_0, CHAR_DASH)
/** Digits allowed after `1.` (`1.5`, `1.99`). */
const MAX_V1_MINOR_DIGITS = 2

function isDigit (b: number): boolean {
  return b >= CHAR_0 && b <= CHAR_9
}

/**
 * Compare `bytes[from...]` with `expected`: `'match'` when all of `expected` is there,
 * `'more'` while what has arrived agrees, `'no'` at the first difference.
 */
function expectLiteral (bytes: Uint8Array, from: number, expected: Uint8Array): Verdict {
  for (let i = 0; i < expected.length; i++) {
    if (from + i >= bytes.length) return 'more'
    if (bytes[from + i] !== expected[i]) return 'no'
  }
  return 'match'
}

/** After `SSH-1`: `.`, one or two digits, `-`. */
function expectVersion1 (bytes: Uint8Array, from: number): Verdict {
  let i = from
  if (i >= bytes.length) return 'more'
  if (bytes[i] !== CHAR_DOT) return 'no'
  i++
  let digits = 0
  while (i < bytes.length && isDigit(bytes[i])) {
    if (++digits > MAX_V1_MINOR_DIGITS) return 'no'
    i++
  }
  if (i >= bytes.length) return 'more'
  return digits > 0 && bytes[i] === CHAR_DASH ? 'match' : 'no'
}

/**
 * SSH client: `SSH-2.0-`, `SSH-1.99-` or `SSH-1.<d>[<d>]-` at offset 0.
 *
 * The identification string (RFC 4253 §4.2) is
 * `SSH-protoversion-softwareversion [SP comments] CR LF`. A server may send other lines
 * before its own, but a client may not: the very first bytes a client sends are `SSH-`.
 * Then the protocol version:
 *
 * - `2.0`  — SSH 2, the only version in use;
 * - `1.99` — "2.0 and 1.x" (RFC 4253 §5.1); a client sends it only if it speaks both;
 * - `1.x`  — an SSH 1 client (`1.5` was the last). Obsolete and insecure, but still SSH:
 *   routing it to sshd gets it the server's own refusal instead of a hang or a misroute.
 *   We take `1.` followed by one or two digits.
 *
 * The dash that ends the version is the point of certainty: `SSH-2.0-` begins no other
 * protocol, so the detector answers `'match'` there, without waiting for the software
 * version or the line end (OpenSSH sends the banner alone and then waits for the server's,
 * so waiting longer could only delay the decision). `'no'` at the first byte that cannot
 * fit, `'more'` before either.
 */
export const ssh = {
  name: 'ssh',
  detect (bytes: Uint8Array): Verdict {
    const prefix = expectLiteral(bytes, 0, PREFIX)
    if (prefix !== 'match') return prefix
    const at = PREFIX.length
    if (at >= bytes.length) return 'more'
    if (bytes[at] === CHAR_2) return expectLiteral(bytes, at, VERSION_2)
    if (bytes[at] === CHAR_1) return expectVersion1(bytes, at + 1)
    return 'no'
  }
} satisfies Detector
