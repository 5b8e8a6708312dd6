import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { dns } from '../../src/sniff/dns.js'
import { runDetectorSuite } from './suite.js'
import { concat, fixtureBytes, fixtureVectors, hex, latin1, vectors } from './vectors.js'

const plain = fixtureBytes('dns', 'dig-9.18-noedns')
const update = fixtureBytes('dns', 'nsupdate-9.18-update')

/** A copy of `bytes` with `bytes[at] = value`. */
function withByte (bytes: Uint8Array, at: number, value: number): Uint8Array {
  const copy = Uint8Array.from(bytes)
  copy[at] = value
  return copy
}

/** Labels as DNS writes a name: `name('a.b')` is `01 61 01 62 00`. */
function name (text: string): Uint8Array {
  if (text === '.') return Uint8Array.of(0)
  return concat(...text.split('.').map((l) => concat(Uint8Array.of(l.length), latin1(l))), Uint8Array.of(0))
}

/** A request with a 2-byte length prefix: header fields, one question, then `rest` (records). */
function request (options: { flags?: number, counts?: [number, number, number, number], qname?: Uint8Array, qtype?: number, qclass?: number, rest?: Uint8Array } = {}): Uint8Array {
  const { flags = 0x0100, counts = [1, 0, 0, 0], qname = name('example.com'), qtype = 1, qclass = 1, rest = new Uint8Array(0) } = options
  const header = Buffer.alloc(12)
  header.writeUInt16BE(0x1234, 0)
  header.writeUInt16BE(flags, 2)
  counts.forEach((c, i) => header.writeUInt16BE(c, 4 + 2 * i))
  const tail = Buffer.alloc(4)
  tail.writeUInt16BE(qtype, 0)
  tail.writeUInt16BE(qclass, 2)
  const message = concat(header, qname, tail, rest)
  return concat(Uint8Array.of(message.length >> 8, message.length & 0xff), message)
}

/** An EDNS OPT record with no options (11 bytes). */
const opt = hex('00 00 29 10 00 00 00 00 00 00 00')

runDetectorSuite(dns, [
  ...fixtureVectors('dns'),
  ...vectors('match', {
    'plain A query': request(),
    'RD clear (an iterative resolver)': request({ flags: 0x0000 }),
    'AD and CD set': request({ flags: 0x0130 }),
    'root name, NS (a priming query)': request({ qname: name('.'), qtype: 2 }),
    'CH TXT version.bind': request({ qname: name('version.bind'), qtype: 16, qclass: 3 }),
    'ANY class': request({ qclass: 255 }),
    'with an OPT record': request({ counts: [1, 0, 0, 1], rest: opt }),
    'with OPT and another record': request({ counts: [1, 0, 0, 2], rest: concat(opt, opt) }),
    'labels of 63 bytes': request({ qname: name(`${'a'.repeat(63)}.${'b'.repeat(63)}`) }),
    'a name of 255 bytes': request({ qname: name(['a'.repeat(63), 'b'.repeat(63), 'c'.repeat(63), 'd'.repeat(61)].join('.')) }),
    'underscore and wildcard labels': request({ qname: name('_sip._tcp.*.example'), qtype: 33 }),
    'NOTIFY with AA': request({ flags: 0x2400, qtype: 6 }),
    'NOTIFY with the new SOA as answer': request({ flags: 0x2400, qtype: 6, counts: [1, 1, 0, 0], rest: opt }),
    'UPDATE with prerequisites and updates': request({ flags: 0x2800, qtype: 6, counts: [1, 1, 2, 0], rest: concat(opt, opt, opt) }),
    'the query and a second one pipelined': concat(plain, plain),
    'query followed by garbage': concat(plain, latin1('GET / HTTP/1.1\r\n'))
  }),
  ...vectors('more', {
    empty: '',
    'length alone': plain.subarray(0, 2),
    'header only': plain.subarray(0, 14),
    'name cut': plain.subarray(0, 20),
    'all but the last byte': plain.subarray(0, plain.length - 1),
    'UPDATE cut before QCLASS': update.subarray(0, 30)
  }),
  ...vectors('no', {
    'length 16': withByte(plain, 1, 16),
    'a response (QR set)': withByte(plain, 2 + 2, 0x81),
    'TC set': withByte(plain, 4, 0x03),
    'AA set in a QUERY': withByte(plain, 4, 0x05),
    'IQUERY (opcode 1)': withByte(plain, 4, 0x08),
    'STATUS (opcode 2)': withByte(plain, 4, 0x10),
    'DSO (opcode 6)': withByte(plain, 4, 0x30),
    'opcode 3 (unassigned)': withByte(plain, 4, 0x18),
    'RA set': withByte(plain, 5, 0x80),
    'Z set': withByte(plain, 5, 0x40),
    'RCODE 3 in a request': withByte(plain, 5, 0x03),
    'QDCOUNT 0': withByte(plain, 7, 0),
    'QDCOUNT 2': withByte(plain, 7, 2),
    'an answer in a QUERY': request({ counts: [1, 1, 0, 0], rest: opt }),
    'authority in a QUERY': request({ counts: [1, 0, 1, 0], rest: opt }),
    'three additional records': request({ counts: [1, 0, 0, 3], rest: concat(opt, opt, opt) }),
    'OPT announced but the message ends after the question': request({ counts: [1, 0, 0, 1] }),
    'bytes left over with no record announced': request({ rest: opt }),
    'a compression pointer as the first label': request({ qname: hex('c0 0c') }),
    'a 64-byte label': request({ qname: name('a'.repeat(64)) }),
    'a space in a label': request({ qname: name('a b.com') }),
    'a control byte in a label': request({ qname: name('a\x01b.com') }),
    'a name of 256 bytes': request({ qname: name(['a'.repeat(63), 'b'.repeat(63), 'c'.repeat(63), 'd'.repeat(62)].join('.')) }),
    'QTYPE 0': request({ qtype: 0 }),
    'QCLASS 2 (CSNET)': request({ qclass: 2 }),
    'name running past the length': withByte(plain, 1, 20),
    'a QUERY of 4097 bytes': hex('10 01 12 34 01 00'),
    'UPDATE with RD set': withByte(update, 4, 0x29),
    'UPDATE whose zone is not an SOA question': request({ flags: 0x2800, qtype: 1 }),
    'NOTIFY with two answers': request({ flags: 0x2400, counts: [1, 2, 0, 0], rest: concat(opt, opt) }),
    'NOTIFY with AD set': request({ flags: 0x2420 }),
    'more records than the length can hold': request({ flags: 0x2800, qtype: 6, counts: [1, 0, 9, 0], rest: concat(opt, opt) }),
    'HTTP GET': 'GET / HTTP/1.1\r\n',
    'TLS ClientHello start': hex('16 03 01 02 00 01 00 01 fc 03 03'),
    'SSH banner': 'SSH-2.0-OpenSSH_9.2p1\r\n',
    'PostgreSQL SSLRequest': hex('00 00 00 08 04 d2 16 2f'),
    'OpenVPN plain reset': hex('00 0e 38 4b 50 4b 92 58 3b 85 2a 00 00 00 00 00'),
    'RDP connection request': hex('03 00 00 13 0e e0 00 00 00 00 00 01 00 08 00 03 00 00 00')
  })
])

test('dns: HTTP, TLS and SSH are refused by the fifth byte at the latest', () => {
  for (const text of ['GET / HTTP/1.1\r\n', 'POST /x HTTP/1.1\r\n', 'PUT /index HTTP/1.1\r\n', 'SSH-2.0-x\r\n', '\x16\x03\x01\x02\x00\x01']) {
    assert.equal(dns.detect(latin1(text).subarray(0, 5)), 'no', JSON.stringify(text))
  }
})

test('dns: random bytes behind a good header never throw and stay monotone', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 80 }), (tail) => {
    const bytes = concat(plain.subarray(0, 14), tail)
    const whole = dns.detect(bytes)
    for (let i = 1; i < bytes.length; i++) {
      const v = dns.detect(bytes.subarray(0, i))
      if (v !== 'more') assert.equal(v, whole, `prefix ${i}`)
    }
  }), { numRuns: 2000 })
})
