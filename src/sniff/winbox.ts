import type { Detector, Verdict } from './types.js'

/** A chunk: length (1), type (1), up to 255 bytes. */
const CHUNK_HEADER_BYTES = 2
const CHUNK_MAX = 255
const TYPE_FIRST = 0x06
const TYPE_NEXT = 0xff
const PUBLIC_KEY_BYTES = 32
/** The message after the user name: its NUL, the public key, the parity byte. */
const TAIL_BYTES = 1 + PUBLIC_KEY_BYTES + 1
const USERNAME_MAX = 255
const MIN_PAYLOAD = 1 + TAIL_BYTES
/** The second chunk header sits after a full first chunk. */
const SECOND_HEADER_AT = CHUNK_HEADER_BYTES + CHUNK_MAX
const PLUS = 0x2b
const CHAR_R = 0x72

function isAlnum (b: number): boolean {
  return (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a)
}

/** The characters RouterOS allows inside a user name besides letters and digits: `- # . @ _`. */
function isNameInner (b: number): boolean {
  return isAlnum(b) || b === 0x2d || b === 0x23 || b === 0x2e || b === 0x40 || b === 0x5f
}

/** Where payload byte `j` sits on the wire: after the first chunk's header, or after the second's. */
function wireIndex (j: number): number {
  return j < CHUNK_MAX ? CHUNK_HEADER_BYTES + j : 2 * CHUNK_HEADER_BYTES + j
}

/**
 * Check the second chunk's header (if the payload needs one and it has arrived); `length` is
 * the whole payload's length when already known.
 */
function secondHeader (bytes: Uint8Array, length: number | undefined): Verdict | undefined {
  if (bytes.length > SECOND_HEADER_AT) {
    const size = bytes[SECOND_HEADER_AT]
    if (size === 0 || size > TAIL_BYTES || (length !== undefined && size !== length - CHUNK_MAX)) return 'no'
  }
  if (bytes.length > SECOND_HEADER_AT + 1 && bytes[SECOND_HEADER_AT + 1] !== TYPE_NEXT) return 'no'
  return undefined
}

/**
 * MikroTik WinBox (TCP 8291), RouterOS 6.43 and later: the client's first message, which opens
 * the EC-SRP5 key exchange (facts from Margin Research's published analysis of the protocol,
 * the same ones caddy-l4's `winbox` matcher relies on).
 *
 * The message is a user name, a NUL, the client's 32-byte Curve25519 public key and a parity
 * byte (0 or 1), cut into chunks of at most 255 bytes, each behind a length byte and a type
 * byte: 0x06 for the first chunk, 0xFF for the next. A user name starts and ends with a letter
 * or digit and holds letters, digits and `- # . @ _`; RoMON mode adds `+r` to it. With user
 * names of at most 255 bytes the payload is 35–289 bytes, so one or two chunks.
 *
 * `'no'` as early as the bytes allow: a first length below 35 (TLS, SSH, DNS, SOCKS, RDP,
 * PostgreSQL and OpenVPN all start so), a type other than 0x06 (every text protocol's
 * second byte), a character a user name cannot hold, a user name longer than its chunk
 * allows, a chunk length that disagrees with where the NUL fell, a parity above 1.
 * `'match'` once the parity byte is in: the chunk length agreeing with the user name's
 * length is what makes the message certain.
 *
 * Decisions: the pre-6.43 protocol (an unencrypted M2 message asking for `index`) is not
 * recognised; the public key's bytes are not checked (any 32 bytes can be one).
 */
export const winbox = {
  name: 'winbox',
  detect (bytes: Uint8Array): Verdict {
    const n = bytes.length
    if (n === 0) return 'more'
    const first = bytes[0]
    if (first < MIN_PAYLOAD) return 'no'
    if (n === 1) return 'more'
    if (bytes[1] !== TYPE_FIRST) return 'no'

    // The user name, up to its NUL.
    let nul = -1
    for (let j = 0; nul < 0; j++) {
      if (j > USERNAME_MAX || (first < CHUNK_MAX && j + TAIL_BYTES > first)) return 'no'
      const header = j >= CHUNK_MAX ? secondHeader(bytes, undefined) : undefined
      if (header !== undefined) return header
      const w = wireIndex(j)
      if (w >= n) return 'more'
      const b = bytes[w]
      if (b === 0) {
        if (j === 0 || !isAlnum(bytes[wireIndex(j - 1)])) return 'no'
        nul = j
      } else if (b === PLUS) {
        // Only as RoMON's `+r` suffix, right after the name's last letter or digit.
        if (j === 0 || !isAlnum(bytes[wireIndex(j - 1)])) return 'no'
        const r = wireIndex(j + 1)
        if (r < n && bytes[r] !== CHAR_R) return 'no'
        const end = wireIndex(j + 2)
        if (end < n && bytes[end] !== 0) return 'no'
      } else if (j === 0 ? !isAlnum(b) : !isNameInner(b)) {
        return 'no'
      }
    }

    // The chunk lengths must agree with the payload's length.
    const length = nul + TAIL_BYTES
    if (length <= CHUNK_MAX ? first !== length : first !== CHUNK_MAX) return 'no'
    if (length > CHUNK_MAX) {
      const header = secondHeader(bytes, length)
      if (header !== undefined) return header
    }
    const parityAt = wireIndex(length - 1)
    if (n <= parityAt) return 'more'
    return bytes[parityAt] <= 1 ? 'match' : 'no'
  }
} satisfies Detector
