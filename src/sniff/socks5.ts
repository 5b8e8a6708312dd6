import type { Detector, Verdict } from './types.js'

const VERSION = 5
const OFFSET_NMETHODS = 1
const OFFSET_METHODS = 2
const NO_ACCEPTABLE_METHODS = 0xff

/**
 * `'match'` once a complete SOCKS 5 greeting is there; whatever follows it is not looked at.
 *
 * SOCKS 5 greeting (RFC 1928 §3): VER = 5, NMETHODS, then NMETHODS method bytes.
 *
 * Method values: 0x00 no authentication, 0x01 GSSAPI, 0x02 username/password,
 * 0x03–0x7F assigned by IANA (several are), 0x80–0xFE reserved for private methods,
 * 0xFF "no acceptable methods" — a server's answer, never something a client offers.
 * So every value but 0xFF is accepted, and NMETHODS must be at least 1 (a client that
 * offers nothing cannot go on). Duplicates are tolerated: odd, but still a SOCKS 5 client.
 *
 * `'match'` as soon as the 2 + NMETHODS bytes are there; the client then waits for the
 * server's method choice, so nothing more may ever come. A client may still pipeline
 * (send the CONNECT request `05 01 00 …` without waiting, as optimistic clients do);
 * those bytes are ignored. They must be: the greeting alone has already been answered
 * `'match'` when it arrived in its own segment, and a verdict never changes.
 */
export const socks5 = {
  name: 'socks5',
  detect (bytes: Uint8Array): Verdict {
    if (bytes.length === 0) return 'more'
    if (bytes[0] !== VERSION) return 'no'
    if (bytes.length <= OFFSET_NMETHODS) return 'more'
    const nmethods = bytes[OFFSET_NMETHODS]
    if (nmethods === 0) return 'no'
    const end = OFFSET_METHODS + nmethods
    const available = Math.min(bytes.length, end)
    for (let i = OFFSET_METHODS; i < available; i++) {
      if (bytes[i] === NO_ACCEPTABLE_METHODS) return 'no'
    }
    return available === end ? 'match' : 'more'
  }
} satisfies Detector
