import type { Detector, Verdict } from './types.js'

const VERSION = 4
const CMD_CONNECT = 1
const CMD_BIND = 2
const OFFSET_CMD = 1
const OFFSET_IP = 4
const OFFSET_USERID = 8
const MAX_USERID = 255
const MAX_DOMAIN = 255
const NUL = 0

/** Printable ASCII starts at the space, visible ASCII just after it; both end before DEL. */
const FIRST_PRINTABLE = 0x20
const FIRST_VISIBLE = 0x21
const LAST_VISIBLE = 0x7e

/**
 * A NUL-terminated string of bytes in `lowest`..0x7E starting at `from`: its end (the
 * index after the NUL), `-1` when the bytes cannot be one (bad byte, too long, empty where
 * that is not allowed), or `bytes.length + 1` (never a valid end) while it is incomplete.
 */
function cString (bytes: Uint8Array, from: number, max: number, lowest: number, allowEmpty: boolean): number {
  const limit = Math.min(bytes.length, from + max + 1)
  for (let i = from; i < limit; i++) {
    const b = bytes[i]
    if (b === NUL) return i === from && !allowEmpty ? -1 : i + 1
    if (b < lowest || b > LAST_VISIBLE) return -1
  }
  return limit === from + max + 1 ? -1 : bytes.length + 1
}

/**
 * SOCKS 4 or 4A request, complete through its last NUL.
 *
 * The request (the SOCKS 4 protocol note, and its SOCKS 4A extension):
 *
 *   offset 0  VN       1 byte   4
 *          1  CD       1 byte   1 = CONNECT, 2 = BIND
 *          2  DSTPORT  2 bytes  big-endian
 *          4  DSTIP    4 bytes  0.0.0.x with x ≠ 0 means "4A: a domain name follows"
 *          8  USERID   bytes up to a NUL
 *          …  DOMAIN   (4A only) bytes up to a NUL
 *
 * The client sends all of it and waits for the 8-byte reply, so nothing follows the
 * request's last NUL. A prefix `04 01` alone is weak (random binary starts with it one
 * time in 2^16), so the detector only answers `'match'` once the whole request is there,
 * through its final NUL, and every part is plausible:
 *
 * - DSTIP 0.0.0.0 is neither an address nor a 4A marker: `'no'`;
 * - USERID is printable ASCII (0x20–0x7E), at most 255 bytes (curl sends the user part
 *   of the proxy URL, often nothing); any other byte before the NUL is `'no'`;
 * - the 4A DOMAIN is 1–255 visible ASCII bytes (0x21–0x7E): a host name or an address
 *   literal, never empty, never with spaces or control bytes.
 *
 * With these bounds, random bytes that begin `04 01` are a match about 1 time in 160.
 * The port is not judged. `'no'` at the first byte that breaks the format.
 */
export const socks4 = {
  name: 'socks4',
  detect (bytes: Uint8Array): Verdict {
    if (bytes.length === 0) return 'more'
    if (bytes[0] !== VERSION) return 'no'
    if (bytes.length <= OFFSET_CMD) return 'more'
    const cmd = bytes[OFFSET_CMD]
    if (cmd !== CMD_CONNECT && cmd !== CMD_BIND) return 'no'
    if (bytes.length < OFFSET_USERID) return 'more'
    const ipHead = bytes[OFFSET_IP] | bytes[OFFSET_IP + 1] | bytes[OFFSET_IP + 2]
    const ipLast = bytes[OFFSET_IP + 3]
    if (ipHead === 0 && ipLast === 0) return 'no'
    const socks4a = ipHead === 0

    const afterUser = cString(bytes, OFFSET_USERID, MAX_USERID, FIRST_PRINTABLE, true)
    if (afterUser < 0) return 'no'
    if (afterUser > bytes.length) return 'more'
    if (!socks4a) return 'match'

    const afterDomain = cString(bytes, afterUser, MAX_DOMAIN, FIRST_VISIBLE, false)
    if (afterDomain < 0) return 'no'
    return afterDomain > bytes.length ? 'more' : 'match'
  }
} satisfies Detector
