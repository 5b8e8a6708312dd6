import { test } from 'node:test'
import assert from 'node:assert/strict'
import { openvpn } from '../../src/sniff/openvpn.js'
import { runDetectorSuite } from './suite.js'
import { concat, fixtureBytes, fixtureVectors, hex, latin1, seededBytes, vectors } from './vectors.js'

const plain = fixtureBytes('openvpn', 'openvpn-2.6.14-plain')
const tlsAuth = fixtureBytes('openvpn', 'openvpn-2.6.14-tls-auth')
const tlsAuth512 = fixtureBytes('openvpn', 'openvpn-2.6.14-tls-auth-sha512')
const tlsAuthMd5Sha1 = fixtureBytes('openvpn', 'openvpn-2.6.14-tls-auth-md5-sha1')
const tlsCrypt = fixtureBytes('openvpn', 'openvpn-2.6.14-tls-crypt')
const tlsCryptV2 = fixtureBytes('openvpn', 'openvpn-2.6.14-tls-crypt-v2')

/** A copy of `bytes` with `bytes[at] = value` (negative `at` counts from the end). */
function withByte (bytes: Uint8Array, at: number, value: number): Uint8Array {
  const copy = Uint8Array.from(bytes)
  copy[at < 0 ? copy.length + at : at] = value
  return copy
}

/** A copy with the 2-byte length field set to `length`, the rest unchanged. */
function withLength (bytes: Uint8Array, length: number): Uint8Array {
  return withByte(withByte(bytes, 0, length >> 8), 1, length & 0xff)
}

const sessionId = hex('4b 50 4b 92 58 3b 85 2a')
/** A tls-auth reset with an HMAC of `size` bytes and the given replay packet id. */
function tlsAuthReset (size: number, replayId = 1): Uint8Array {
  const body = concat(hex('38'), sessionId, seededBytes(size)(size),
    Uint8Array.of(replayId >>> 24, (replayId >>> 16) & 0xff, (replayId >>> 8) & 0xff, replayId & 0xff),
    hex('6b 09 64 37'), hex('00 00 00 00 00'))
  return concat(Uint8Array.of(body.length >> 8, body.length & 0xff), body)
}

/** A P_ACK_V1 the client might send next (what a coalesced read would carry after the reset). */
const ackPacket = hex('00 16 28 4b 50 4b 92 58 3b 85 2a 01 00 00 00 00 11 22 33 44 55 66 77 88')

runDetectorSuite(openvpn, [
  ...fixtureVectors('openvpn'),
  ...vectors('match', {
    'tls-auth with MD5 (16-byte HMAC)': tlsAuthReset(16),
    'tls-auth with SHA-256 (32-byte HMAC, the tls-crypt length)': tlsAuthReset(32),
    'tls-auth with SHA-224 (28-byte HMAC)': tlsAuthReset(28),
    'tls-auth with MD5-SHA1 (36-byte HMAC, inside the tls-crypt lengths)': tlsAuthReset(36),
    'tls-auth with SHA-384 (48-byte HMAC)': tlsAuthReset(48),
    'tls-auth with SHA-512 (64-byte HMAC)': tlsAuthReset(64),
    'tls-auth with a persisted replay id': tlsAuthReset(20, 0x12345),
    // Coalesced: the reset and whatever came next in the same read. Only the first packet counts.
    'plain reset coalesced with a second packet': concat(plain, ackPacket),
    'tls-auth reset coalesced with a second packet': concat(tlsAuth, tlsAuth),
    'tls-crypt-v2 reset then garbage': concat(tlsCryptV2, latin1('GET / HTTP/1.1\r\n')),
    'tls-crypt with 64 extra encrypted bytes (TLVs)': withLength(concat(tlsCrypt, seededBytes(7)(64)), 54 + 64)
  }),
  ...vectors('more', {
    empty: '',
    // sslh #425: the length arrives alone, the rest in the next segment.
    'plain reset: length alone': plain.subarray(0, 2),
    'plain reset: length and opcode': plain.subarray(0, 3),
    'plain reset: all but the last byte': plain.subarray(0, plain.length - 1),
    'tls-auth reset: length alone': tlsAuth.subarray(0, 2),
    'tls-auth reset: all but the last byte': tlsAuth.subarray(0, tlsAuth.length - 1),
    'tls-crypt-v2 reset: first 100 bytes': tlsCryptV2.subarray(0, 100),
    'tls-crypt-v2 reset: all but the last byte': tlsCryptV2.subarray(0, tlsCryptV2.length - 1),
    'first byte alone': plain.subarray(0, 1)
  }),
  ...vectors('no', {
    'V1 opcode (key method 1, removed in 2.5)': withByte(plain, 2, 1 << 3),
    'key id 1': withByte(plain, 2, 0x39),
    'server hard reset (opcode 8)': withByte(plain, 2, 8 << 3),
    'P_CONTROL_V1 (opcode 4)': withByte(plain, 2, 4 << 3),
    'P_ACK_V1 first': ackPacket,
    'length 0': hex('00 00 38'),
    'length 13': withLength(plain, 13),
    'length 15 with opcode V2': concat(withLength(plain, 15), hex('00')),
    'plain reset acknowledging something': withByte(plain, 11, 1),
    'plain reset with message id 1': withByte(plain, -1, 1),
    'tls-auth: ack count not zero': withByte(tlsAuth, -5, 1),
    'tls-auth: replay id 0': withByte(tlsAuth, -10, 0),
    'tls-auth: a 40-byte HMAC (no such digest)': tlsAuthReset(40),
    'tls-auth SHA-512 with a message id': withByte(tlsAuth512, -1, 7),
    'tls-auth MD5-SHA1: replay id 0': withByte(tlsAuthMd5Sha1, -10, 0),
    'tls-auth MD5-SHA1 with a message id': withByte(tlsAuthMd5Sha1, -1, 7),
    'tls-auth: a 24-byte HMAC (no such digest)': tlsAuthReset(24),
    'tls-crypt: replay id 0': withByte(tlsCrypt, 14, 0),
    'tls-crypt: replay id in the high range without the early-negotiation marker': withByte(tlsCrypt, 11, 0x80),
    'tls-crypt-v2: replay id 0': withByte(withByte(tlsCryptV2, 11, 0), 14, 0),
    'tls-crypt-v2: WKc length too small': withByte(withByte(tlsCryptV2, -2, 0), -1, 100),
    'tls-crypt-v2: WKc longer than the packet': withByte(tlsCryptV2, -2, 0x03),
    'V3 opcode at the plain length': withByte(plain, 2, 10 << 3),
    'length above the V3 maximum': hex('04 80 50'),
    'first byte 0x05': hex('05 01 00'),
    'a DNS query over TCP': hex('00 1d 38 21 01 00 00 01 00 00 00 00 00 00 07 65 78 61 6d 70 6c 65 03 63 6f 6d 00 00 01 00 01'),
    'PostgreSQL SSLRequest': hex('00 00 00 08 04 d2 16 2f'),
    'SOCKS 4 CONNECT to port 0x3801': hex('04 01 38 01 c0 00 02 0a 00'),
    'RDP connection request': hex('03 00 00 13 0e e0 00 00 00 00 00 01 00 08 00 03 00 00 00')
  })
])

test('openvpn: every split of every fixture into two reads decides the same (sslh #425)', () => {
  for (const bytes of [plain, tlsAuth, tlsAuth512, tlsAuthMd5Sha1, tlsCrypt, tlsCryptV2]) {
    for (let cut = 1; cut < bytes.length; cut++) {
      assert.equal(openvpn.detect(bytes.subarray(0, cut)), 'more', `cut at ${cut} of ${bytes.length}`)
    }
    assert.equal(openvpn.detect(bytes), 'match')
  }
})
