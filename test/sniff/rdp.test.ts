import { test } from 'node:test'
import assert from 'node:assert/strict'
import { rdp } from '../../src/sniff/rdp.js'
import { runDetectorSuite } from './suite.js'
import { concat, fixtureBytes, fixtureVectors, hex, latin1, vectors } from './vectors.js'

/** TPKT + X.224 CR around a variable part, with consistent length and LI. */
function connectionRequest (variable: Uint8Array, overrides: { li?: number, code?: number, dstRef?: number, classOption?: number } = {}): Uint8Array {
  const length = 11 + variable.length
  return concat(
    Uint8Array.of(3, 0, length >> 8, length & 0xff),
    Uint8Array.of(overrides.li ?? length - 5, overrides.code ?? 0xe0, 0, overrides.dstRef ?? 0, 0x12, 0x34, overrides.classOption ?? 0),
    variable)
}

const cookie = latin1('Cookie: mstshash=alice\r\n')
const negTls = hex('01 00 08 00 01 00 00 00')
const correlation = concat(hex('06 00 24 00'), new Uint8Array(32).fill(0x11))
const freerdp = fixtureBytes('rdp', 'xfreerdp-2.11.7-user')
/** LI is one byte and 255 is reserved, so 259 bytes is the most a request can take. */
const largest = connectionRequest(concat(latin1(`Cookie: mstshash=${'u'.repeat(221)}\r\n`), negTls))

runDetectorSuite(rdp, [
  ...fixtureVectors('rdp'),
  ...vectors('match', {
    'cookie only': connectionRequest(cookie),
    'negotiation only': connectionRequest(negTls),
    'routing token then negotiation': connectionRequest(concat(latin1('Cookie: msts=3640205228.15629.0000\r\n'), negTls)),
    'cookie, negotiation with correlation info': connectionRequest(concat(cookie, hex('01 08 08 00 03 00 00 00'), correlation)),
    'non-ASCII user in the cookie': connectionRequest(concat(latin1('Cookie: mstshash=j\xf6rg\r\n'), negTls)),
    'request followed by more bytes': concat(freerdp, hex('03 00 01 00')),
    'the largest request (259 bytes, LI 254)': largest
  }),
  ...vectors('more', {
    empty: '',
    'TPKT version alone': hex('03'),
    'TPKT header': freerdp.subarray(0, 4),
    'CR header without the variable part': freerdp.subarray(0, 11),
    'cookie cut short': freerdp.subarray(0, 30),
    'all but the last byte': freerdp.subarray(0, freerdp.length - 1)
  }),
  ...vectors('no', {
    'TPKT version 2': hex('02 00 00 0b 06 e0 00 00 00 00 00'),
    'TPKT reserved byte set': hex('03 01 00 0b 06 e0 00 00 00 00 00'),
    'TPKT length 10': hex('03 00 00 0a 05 e0 00 00 00 00'),
    'TPKT length 260 (LI would be 255)': hex('03 00 01 04'),
    'LI inconsistent with the TPKT length': connectionRequest(cookie, { li: 6 }),
    'Connection Confirm (0xD0)': connectionRequest(cookie, { code: 0xd0 }),
    'CR with credit 1 (0xE1)': connectionRequest(cookie, { code: 0xe1 }),
    'DST-REF not 0': connectionRequest(cookie, { dstRef: 1 }),
    'class 2': connectionRequest(cookie, { classOption: 0x20 }),
    'ISO-on-TCP with TSAP parameters (S7)': hex('03 00 00 16 11 e0 00 00 00 01 00 c1 02 01 00 c2 02 01 02 c0 01 0a'),
    'token without CR LF': connectionRequest(latin1('Cookie: mstshash=alice')),
    'token with a bare LF': connectionRequest(latin1('Cookie: mstshash=alice\n')),
    'token with a bare CR': connectionRequest(concat(latin1('Cookie: mstshash=alice\rx\r\n'))),
    'negotiation with a wrong length field': connectionRequest(hex('01 00 09 00 01 00 00 00')),
    'negotiation cut short inside the TPDU': connectionRequest(hex('01 00 08 00 01 00')),
    'bytes after the negotiation inside the TPDU': connectionRequest(concat(negTls, hex('00'))),
    'correlation flag without correlation info': connectionRequest(hex('01 08 08 00 03 00 00 00')),
    'correlation info without its flag': connectionRequest(concat(negTls, correlation)),
    'correlation info of the wrong type': connectionRequest(concat(hex('01 08 08 00 03 00 00 00'), hex('07 00 24 00'), new Uint8Array(32))),
    'TLS': hex('16 03 01 00 c8'),
    'SOCKS 4': hex('04 01 00 50 7f 00 00 01 00')
  })
])

test('rdp: the largest request really is 259 bytes', () => {
  assert.equal(largest.length, 259)
})

test('rdp: a bare Connection Request is decided at its 11th byte', () => {
  const bare = connectionRequest(new Uint8Array(0))
  assert.equal(rdp.detect(bare.subarray(0, 10)), 'more')
  assert.equal(rdp.detect(bare), 'match')
})
