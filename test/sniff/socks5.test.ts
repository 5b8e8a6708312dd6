import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { socks5 } from '../../src/sniff/socks5.js'
import { runDetectorSuite } from './suite.js'
import { concat, fixtureBytes, fixtureVectors, hex, vectors } from './vectors.js'

const curl = fixtureBytes('socks5', 'curl-socks5')
const every254Methods = Uint8Array.from({ length: 255 }, (_, i) => i) // 0x00..0xFE

runDetectorSuite(socks5, [
  ...fixtureVectors('socks5'),
  ...vectors('match', {
    'one method, no auth': hex('05 01 00'),
    'username/password only': hex('05 01 02'),
    'a private method (0x80)': hex('05 01 80'),
    'IANA-assigned methods 0x03-0x09': hex('05 07 03 04 05 06 07 08 09'),
    'the highest private method (0xFE)': hex('05 01 fe'),
    'duplicated method (odd, tolerated)': hex('05 02 00 00'),
    '255 methods, every value but 0xFF': concat(hex('05 ff'), every254Methods.subarray(0, 255)),
    // The greeting decides; whatever a client pipelines after it is not looked at.
    'greeting then a pipelined CONNECT request': concat(curl, hex('05 01 00 01 c0 00 02 0a 00 50')),
    'greeting then bytes that are no request': concat(curl, hex('ff ff ff'))
  }),
  ...vectors('more', {
    empty: '',
    'version alone': hex('05'),
    'NMETHODS without its methods': hex('05 02'),
    'one of two methods': hex('05 02 00')
  }),
  ...vectors('no', {
    'zero methods': hex('05 00'),
    'zero methods then more bytes': hex('05 00 00 00'),
    '0xFF offered (a server\'s "no acceptable")': hex('05 01 ff'),
    '0xFF among others': hex('05 03 00 02 ff'),
    'SOCKS 4': hex('04 01 00 50 7f 00 00 01 00'),
    'version 6': hex('06 01 00'),
    'TLS record': hex('16 03 01 00 c8 01')
  })
])

test('socks5: a complete greeting without 0xFF matches, whatever follows', () => {
  fc.assert(fc.property(
    fc.uint8Array({ minLength: 1, maxLength: 255 }).map((m) => m.map((b) => (b === 0xff ? 0 : b))),
    fc.uint8Array({ maxLength: 16 }),
    (methods, tail) => socks5.detect(concat(Uint8Array.of(5, methods.length), methods, tail)) === 'match'
  ))
})

test('socks5: any greeting offering 0xFF is refused', () => {
  fc.assert(fc.property(fc.uint8Array({ minLength: 1, maxLength: 200 }), fc.nat(), (methods, at) => {
    methods[at % methods.length] = 0xff
    assert.equal(socks5.detect(concat(Uint8Array.of(5, methods.length), methods)), 'no')
  }))
})
