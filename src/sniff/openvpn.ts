import type { Detector, Verdict } from './types.js'

const LENGTH_BYTES = 2
const OPCODE_SHIFT = 3
const KEY_ID_MASK = 0b111
const P_CONTROL_HARD_RESET_CLIENT_V2 = 7
const P_CONTROL_HARD_RESET_CLIENT_V3 = 10
const OPCODE_V2 = P_CONTROL_HARD_RESET_CLIENT_V2 << OPCODE_SHIFT
const OPCODE_V3 = P_CONTROL_HARD_RESET_CLIENT_V3 << OPCODE_SHIFT

/** Opcode (1) + session id (8): the start of every reset. */
const SESSION_END = 9
/** Ack count (1) + message packet id (4), both zero in a client's first packet. */
const ZERO_TAIL_BYTES = 5
/** Replay packet id (4) + net time (4). */
const REPLAY_ID_BYTES = 4
const NET_TIME_BYTES = 4

const PLAIN_LENGTH = SESSION_END + ZERO_TAIL_BYTES
const TLS_AUTH_FIXED = SESSION_END + REPLAY_ID_BYTES + NET_TIME_BYTES + ZERO_TAIL_BYTES
/**
 * HMAC output sizes of the digests `--auth` accepts: MD5/MD4 (16), SHA-1/RIPEMD-160 (20),
 * SHA-224/SHA3-224/SHA-512/224 (28), SHA-256/SHA3-256/BLAKE2s/SM3 (32), MD5-SHA1 (36, OpenSSL's
 * concatenation of the two), SHA-384/SHA3-384 (48), SHA-512/SHA3-512/BLAKE2b/whirlpool (64).
 */
const HMAC_SIZES: readonly number[] = [16, 20, 28, 32, 36, 48, 64]
const TLS_CRYPT_TAG_BYTES = 32
const TLS_CRYPT_LENGTH = SESSION_END + REPLAY_ID_BYTES + NET_TIME_BYTES + TLS_CRYPT_TAG_BYTES + ZERO_TAIL_BYTES
/** Room for encrypted early-negotiation TLVs in a tls-crypt(-v2) reset. */
const TLS_CRYPT_SLACK = 64
/** WKc: tag (32) + client key (256) + its length (2), plus at most 734 bytes of metadata. */
const WKC_MIN = 32 + 256 + 2
const WKC_MAX = 1024
const WKC_LENGTH_BYTES = 2

const V3_MIN_LENGTH = TLS_CRYPT_LENGTH + WKC_MIN
const V3_MAX_LENGTH = TLS_CRYPT_LENGTH + TLS_CRYPT_SLACK + WKC_MAX
const MAX_LENGTH = V3_MAX_LENGTH

/** The high byte of a replay id that announces early negotiation (EARLY_NEG_START). */
const EARLY_NEG_MARKER = 0x0f
/** A fresh session's replay id is small: 2^24 control packets never happen in one. */
const REPLAY_ID_SMALL_LIMIT = 0x1000000

function u16 (bytes: Uint8Array, at: number): number {
  return (bytes[at] << 8) | bytes[at + 1]
}

function u32 (bytes: Uint8Array, at: number): number {
  return ((bytes[at] << 24) | (bytes[at + 1] << 16) | (bytes[at + 2] << 8) | bytes[at + 3]) >>> 0
}

function isPlausibleReplayId (id: number): boolean {
  return id !== 0 && (id < REPLAY_ID_SMALL_LIMIT || id >>> 24 === EARLY_NEG_MARKER)
}

function allZero (bytes: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (bytes[i] !== 0) return false
  return true
}

function isTlsAuthLength (length: number): boolean {
  return HMAC_SIZES.includes(length - TLS_AUTH_FIXED)
}

function isTlsCryptLength (length: number): boolean {
  return length >= TLS_CRYPT_LENGTH && length <= TLS_CRYPT_LENGTH + TLS_CRYPT_SLACK
}

/** Could a V2 reset of this length exist at all? */
function isV2Length (length: number): boolean {
  return length === PLAIN_LENGTH || isTlsAuthLength(length) || isTlsCryptLength(length)
}

/*
 * The judges below see the whole first packet; `at` is the index of its opcode in `bytes`
 * (after the length field) and `length` its length, so that no view is allocated.
 */

/** A complete tls-auth reset: replay id, net time and five zeros end the packet. */
function isTlsAuthPacket (bytes: Uint8Array, at: number, length: number): boolean {
  const end = at + length
  const replayAt = end - ZERO_TAIL_BYTES - NET_TIME_BYTES - REPLAY_ID_BYTES
  return isPlausibleReplayId(u32(bytes, replayAt)) && allZero(bytes, end - ZERO_TAIL_BYTES, end)
}

/** A complete tls-crypt-v2 reset: replay id up front, a consistent WKc length at the end. */
function isTlsCryptV2Packet (bytes: Uint8Array, at: number, length: number): boolean {
  if (!isPlausibleReplayId(u32(bytes, at + SESSION_END))) return false
  const wkc = u16(bytes, at + length - WKC_LENGTH_BYTES)
  return wkc >= WKC_MIN && wkc <= WKC_MAX && wkc <= length - TLS_CRYPT_LENGTH
}

/** Judge a complete V2 reset. */
function judgeV2 (bytes: Uint8Array, at: number, length: number): Verdict {
  if (length === PLAIN_LENGTH) return 'match' // its zero bytes were checked as they arrived
  if (isTlsAuthLength(length) && isTlsAuthPacket(bytes, at, length)) return 'match'
  if (isTlsCryptLength(length) && isPlausibleReplayId(u32(bytes, at + SESSION_END))) return 'match'
  return 'no'
}

/**
 * OpenVPN (TCP) client hard reset, V2 or V3, in any control-channel wrapping.
 *
 * Over TCP every OpenVPN packet is a 2-byte big-endian length, then that many bytes.
 * A client's first packet is a hard reset: opcode P_CONTROL_HARD_RESET_CLIENT_V2 (7), or
 * _V3 (10) with tls-crypt-v2, in the high 5 bits of the first byte, key id 0 in the low 3,
 * then its 8-byte session id. What comes next depends on how the control channel is
 * wrapped (offsets are in the packet, counting the opcode as 0):
 *
 * - none:         9 ack count (0), 10 message packet id (0)                      → 14 bytes
 * - --tls-auth:   9 HMAC (16, 20, 28, 32, 36, 48 or 64 bytes: MD5…SHA-512), then replay packet id (4), net time (4),
 *                 ack count (0), message packet id (0)                           → 22 + HMAC
 * - --tls-crypt:  9 replay packet id (4), net time (4), 32-byte tag, then 5 encrypted bytes
 *                 (the ack count and message id above)                           → 54 bytes
 * - --tls-crypt-v2 (V3): the tls-crypt packet followed by the wrapped client key WKc
 *                 (32-byte tag, 256-byte client key, metadata, and its own 2-byte length
 *                 as its last bytes; 290–1024 bytes)                             → 344–1078
 *
 * The replay packet id of a fresh session is 1; with tls-crypt-v2, OpenVPN 2.6 and 3 start
 * it at 0x0F000000 (EARLY_NEG_START) to announce early negotiation. It is never 0.
 *
 * A client sends this packet and waits for the server's reset, so the sniffer may see the
 * length alone first (sslh issue #425: the packet arrived in two pieces and sslh gave up on
 * OpenVPN) or the reset followed by more packets in the same read. The detector reads the
 * length, waits (`'more'`) until the whole first packet is there, and judges that packet
 * and nothing after it. `'no'` comes as soon as a field already seen rules every wrapping
 * out (first byte, length, opcode, the plain reset's zeros).
 *
 * The tls-auth resets with HMACs of 32, 36, 48 and 64 bytes (54, 58, 70 and 86 bytes long) fall
 * inside the tls-crypt lengths; such a packet is judged both ways and matches when either
 * wrapping fits it (a 36-byte MD5-SHA1 HMAC was once refused here, read as a bad tls-crypt).
 *
 * Certainty, per wrapping: plain and tls-auth resets carry 5 known zero bytes, a nonzero
 * replay id at a place fixed by the length, and a length that is one of a few values;
 * tls-crypt-v2 carries a WKc length consistent with the packet length. A tls-crypt reset
 * has only its length, opcode and replay id in the clear, the weakest of the four: a
 * 2-byte-length-prefixed protocol (DNS over TCP, say) whose third byte happens to be 0x38
 * and whose length is 54–118 can pass for it.
 *
 * Decisions: the V1 opcode (1, key method 1) is refused — key method 1 was removed in
 * OpenVPN 2.5 and no current server speaks it; plaintext resets must be exact (no client
 * was seen to add payload), while tls-crypt resets may carry up to 64 encrypted bytes more
 * than today's, room for early-negotiation TLVs.
 */
export const openvpn = {
  name: 'openvpn',
  detect (bytes: Uint8Array): Verdict {
    if (bytes.length === 0) return 'more'
    if (bytes[0] > MAX_LENGTH >>> 8) return 'no'
    if (bytes.length < LENGTH_BYTES) return 'more'
    const length = u16(bytes, 0)
    if (length < PLAIN_LENGTH || length > MAX_LENGTH) return 'no'
    if (bytes.length <= LENGTH_BYTES) return 'more'
    const opcode = bytes[LENGTH_BYTES]
    if ((opcode & KEY_ID_MASK) !== 0) return 'no'
    if (opcode === OPCODE_V2) {
      if (!isV2Length(length)) return 'no'
      if (length === PLAIN_LENGTH) {
        const zerosFrom = LENGTH_BYTES + SESSION_END
        if (!allZero(bytes, zerosFrom, Math.min(bytes.length, zerosFrom + ZERO_TAIL_BYTES))) return 'no'
      }
    } else if (opcode === OPCODE_V3) {
      if (length < V3_MIN_LENGTH || length > V3_MAX_LENGTH) return 'no'
    } else {
      return 'no'
    }
    if (bytes.length < LENGTH_BYTES + length) return 'more'
    if (opcode === OPCODE_V3) return isTlsCryptV2Packet(bytes, LENGTH_BYTES, length) ? 'match' : 'no'
    return judgeV2(bytes, LENGTH_BYTES, length)
  }
} satisfies Detector
