import type { Detector, Verdict } from './types.js'

const HEAD_BYTES = 8
const MAX_PACKET_LENGTH = 10000
const SSL_REQUEST_CODE = 80877103
const GSSENC_REQUEST_CODE = 80877104
const CANCEL_REQUEST_CODE = 80877102
const REQUEST_LENGTH = 8
const CANCEL_MIN_LENGTH = 16
const CANCEL_MAX_KEY_BYTES = 256
const CANCEL_MAX_LENGTH = 12 + CANCEL_MAX_KEY_BYTES
const PROTOCOL_MAJOR = 3
/** The highest minor version we believe a client may ask for. */
const PROTOCOL_MAX_MINOR = 0xff
/** The smallest StartupMessage: head plus the terminating NUL (no parameters at all). */
const STARTUP_MIN_LENGTH = HEAD_BYTES + 1
const NUL = 0

function u32 (bytes: Uint8Array, at: number): number {
  return ((bytes[at] << 24) | (bytes[at + 1] << 16) | (bytes[at + 2] << 8) | bytes[at + 3]) >>> 0
}

/** [A-Za-z0-9_.-]: the characters of parameter names. */
function isNameByte (b: number): boolean {
  return (b >= 0x61 && b <= 0x7a) || (b >= 0x41 && b <= 0x5a) || (b >= 0x30 && b <= 0x39) ||
    b === 0x5f || b === 0x2e || b === 0x2d
}

/**
 * The name/value pairs of a StartupMessage of `length` bytes, from offset 8 to the last
 * byte of what has arrived: `'no'` at the first impossible byte, `'match'` when the final
 * NUL sits on the message's last byte, `'more'` until then.
 */
function parseParameters (bytes: Uint8Array, length: number): Verdict {
  const available = Math.min(bytes.length, length)
  const last = length - 1
  let inName = true
  let tokenStart = HEAD_BYTES
  for (let i = HEAD_BYTES; i < available; i++) {
    const b = bytes[i]
    if (b === NUL) {
      if (inName && i === tokenStart) return i === last ? 'match' : 'no' // the terminator
      inName = !inName
      tokenStart = i + 1
      if (i === last) return 'no' // the message ends without its terminator
    } else if (inName && !isNameByte(b)) {
      return 'no'
    }
  }
  return available === length ? 'no' : 'more' // complete, yet no terminator on the last byte
}

/**
 * PostgreSQL client's first message: SSL/GSSENC/Cancel request or a v3 StartupMessage.
 *
 * It has no type byte ("Message Formats" in the frontend/backend protocol docs): an int32
 * length (counting itself), then an int32 code.
 *
 * - SSLRequest:     length 8, code 80877103 (1234 << 16 | 5679). The client waits for 'S'/'N'.
 * - GSSENCRequest:  length 8, code 80877104 (… 5680). Same.
 * - CancelRequest:  length 16, code 80877102 (… 5678), process id, secret key. It is
 *   PostgreSQL traffic (a cancel for a session on the same server), so it is claimed.
 *   From protocol 3.2 (PostgreSQL 18) the key is variable, up to 256 bytes: length 16–268.
 * - StartupMessage: length, protocol version (major 3 in the high 16 bits; minor 0 today,
 *   2 from PostgreSQL 18, and a client may ask for any newer minor — the server answers
 *   with NegotiateProtocolVersion — we take up to 255), then NUL-terminated name/value
 *   pairs and one more NUL.
 *
 * Every length is bounded by 10000, the server's own limit on a startup packet
 * (MAX_STARTUP_PACKET_LENGTH), so the first two bytes are always 0: `'no'` at once otherwise.
 *
 * Certainty: the 8-byte head of the three requests is a fixed length plus a magic code:
 * `'match'` once it is there (for CancelRequest the rest is key material that cannot make
 * it any less PostgreSQL). A StartupMessage is parsed to its end, since its head is only
 * 6 fixed bytes: each name is 1+ bytes of [A-Za-z0-9_.-] (user, database, options,
 * replication, any GUC, `_pq_.` extensions), each value any bytes but NUL, and the final
 * NUL must fall exactly on the last byte the length announces. The spec calls `user`
 * required, but a StartupMessage without it is still unmistakably PostgreSQL, and the
 * server's own error ("no PostgreSQL user name specified") beats a misroute: not required.
 * Bytes after the message are not looked at.
 *
 * `sslnegotiation=direct` (PostgreSQL 17) starts with a TLS ClientHello instead (ALPN
 * `postgresql`): that is TLS, for a `{ tls: { alpn } }` route, not for this detector.
 */
export const postgres = {
  name: 'postgres',
  detect (bytes: Uint8Array): Verdict {
    // The length is at most 10000 (0x2710): its first two bytes are 0.
    if (bytes.length >= 1 && bytes[0] !== 0) return 'no'
    if (bytes.length >= 2 && bytes[1] !== 0) return 'no'
    if (bytes.length < 4) return 'more'
    const length = u32(bytes, 0)
    if (length < REQUEST_LENGTH || length > MAX_PACKET_LENGTH) return 'no'
    if (bytes.length < HEAD_BYTES) return 'more'
    const code = u32(bytes, 4)
    switch (code) {
      case SSL_REQUEST_CODE:
      case GSSENC_REQUEST_CODE:
        return length === REQUEST_LENGTH ? 'match' : 'no'
      case CANCEL_REQUEST_CODE:
        return length >= CANCEL_MIN_LENGTH && length <= CANCEL_MAX_LENGTH ? 'match' : 'no'
    }
    if (code >>> 16 !== PROTOCOL_MAJOR || (code & 0xffff) > PROTOCOL_MAX_MINOR) return 'no'
    if (length < STARTUP_MIN_LENGTH) return 'no'
    return parseParameters(bytes, length)
  }
} satisfies Detector
