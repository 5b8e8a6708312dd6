import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { postgres } from '../../src/sniff/postgres.js'
import { runDetectorSuite } from './suite.js'
import { concat, fixtureBytes, fixtureVectors, hex, latin1, vectors } from './vectors.js'

const SSL = hex('00 00 00 08 04 d2 16 2f')
const disable = fixtureBytes('postgres', 'psql-15-sslmode-disable')

/** A StartupMessage with protocol `major.minor` and the given parameters (NUL-joined text). */
function startup (params: string, major = 3, minor = 0): Uint8Array {
  const body = latin1(params)
  const length = 8 + body.length
  return concat(
    Uint8Array.of(length >>> 24, (length >>> 16) & 0xff, (length >>> 8) & 0xff, length & 0xff),
    Uint8Array.of(major >> 8, major & 0xff, minor >> 8, minor & 0xff),
    body)
}

/** A CancelRequest with a key of `keyBytes` bytes. */
function cancel (keyBytes: number): Uint8Array {
  const length = 12 + keyBytes
  return concat(Uint8Array.of(0, 0, length >> 8, length & 0xff), hex('04 d2 16 2e 00 00 10 92'), new Uint8Array(keyBytes).fill(0x5e))
}

runDetectorSuite(postgres, [
  ...fixtureVectors('postgres'),
  ...vectors('match', {
    'StartupMessage without user (the server answers with its own error)': startup('database\0shop\0\0'),
    'StartupMessage with no parameters at all': startup('\0'),
    'an empty value': startup('user\0alice\0options\0\0\0'),
    'UTF-8 in a value': startup('user\0z\xc3\xbcrich\0\0'),
    'protocol 3.2': startup('user\0a\0\0', 3, 2),
    'protocol 3.255 (any newer minor; NegotiateProtocolVersion answers it)': startup('user\0a\0\0', 3, 255),
    'CancelRequest with the longest 3.2 key (256 bytes)': cancel(256),
    'SSLRequest followed by more bytes (never sent, not looked at)': concat(SSL, hex('16 03 01')),
    'StartupMessage followed by a pipelined Query': concat(disable, latin1('Q\0\0\0\x0dselect 1\0'))
  }),
  ...vectors('more', {
    empty: '',
    'three bytes of the length': hex('00 00 00'),
    'SSLRequest without its last byte': SSL.subarray(0, 7),
    'the 8-byte head of a StartupMessage': disable.subarray(0, 8),
    'StartupMessage without its terminator': disable.subarray(0, disable.length - 1),
    'StartupMessage cut inside a value': disable.subarray(0, 17)
  }),
  ...vectors('no', {
    'first byte not 0': hex('01 00 00 08'),
    'length over 10000': hex('00 00 27 11 00 03 00 00'),
    'length 7': hex('00 00 00 07 04 d2 16 2f'),
    'SSLRequest with length 16': hex('00 00 00 10 04 d2 16 2f'),
    'GSSENCRequest with length 12': hex('00 00 00 0c 04 d2 16 30 00 00 00 00'),
    'unknown request code 80877105': hex('00 00 00 08 04 d2 16 31'),
    'CancelRequest with length 12 (no key)': cancel(0),
    'CancelRequest with a 257-byte key': cancel(257),
    'protocol 2.0 (removed in PostgreSQL 14)': startup('user\0a\0\0', 2, 0),
    'protocol 4.0': startup('user\0a\0\0', 4, 0),
    'protocol 3.256': startup('user\0a\0\0', 3, 256),
    'StartupMessage of length 8 (no terminator room)': hex('00 00 00 08 00 03 00 00'),
    'a space in a parameter name': startup('user name\0a\0\0'),
    'the terminator before the last byte': startup('\0user\0a\0\0'),
    'a byte after the terminator, inside the length': startup('user\0alice\0\0x'),
    'the message ends after a value (no terminator)': startup('user\0alice\0'),
    'the message ends after a name': startup('user\0'),
    'HTTP': 'GET / HTTP/1.1\r\n',
    'OpenVPN reset': hex('00 0e 38 4b 50 4b 92 58 3b 85 2a 00 00 00 00 00')
  })
])

test('postgres: every StartupMessage of name/value pairs matches', () => {
  const name = fc.string({ unit: fc.constantFrom(...'abz_.-09AZ'), minLength: 1, maxLength: 20 })
  const value = fc.string({ unit: fc.integer({ min: 1, max: 255 }).map((c) => String.fromCharCode(c)), maxLength: 40 })
  fc.assert(fc.property(fc.array(fc.tuple(name, value), { maxLength: 8 }), (pairs) => {
    const message = startup(pairs.map(([n, v]) => `${n}\0${v}\0`).join('') + '\0')
    return postgres.detect(message) === 'match'
  }))
})

test('postgres: the SSLRequest head decides at exactly 8 bytes', () => {
  assert.equal(postgres.detect(SSL.subarray(0, 7)), 'more')
  assert.equal(postgres.detect(SSL), 'match')
})
