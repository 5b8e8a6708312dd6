import { test } from 'node:test'
import assert from 'node:assert/strict'
import { SocketAddress, isIPv6 } from 'node:net'
import fc from 'fast-check'
import { encodeProxyV1, parseProxyV1, PROXY_V1_MAX_LENGTH } from '../../src/sniff/proxy-v1.js'
import type { ProxyParseResult } from '../../src/sniff/proxy-header.js'
import { formatIpv6, parseIpv4, parseIpv6 } from '../../src/sniff/ip.js'
import type { Detector, ProtocolName } from '../../src/sniff/types.js'
import { runDetectorSuite, type Vector } from './suite.js'

const latin1 = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0))
const text = (b: Uint8Array): string => Buffer.from(b).toString('latin1')

/** The suite wants a Detector; PROXY is not a routable protocol name, so the adapter borrows the type. */
const proxyV1: Detector = { name: 'proxy-v1' as string as ProtocolName, detect: (bytes) => parseProxyV1(bytes).verdict }

const FULL_V6 = 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'

const matches = [
  'PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n',
  'PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n',
  'PROXY TCP4 0.0.0.0 10.0.0.1 0 0\r\n',
  'PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n',
  'PROXY TCP6 2001:db8::1 2001:db8::2 1234 443\r\n',
  'PROXY TCP6 2001:DB8:0:0:0:0:0:1 ::1 1234 443\r\n',
  `PROXY TCP6 ${FULL_V6} ${FULL_V6} 65535 65535\r\n`,
  'PROXY TCP6 ::ffff:1.2.3.4 ::ffff:10.0.0.1 1 2\r\n',
  'PROXY UNKNOWN\r\n',
  'PROXY UNKNOWN\r\n\x16\x03\x01',
  `PROXY UNKNOWN ${FULL_V6} ${FULL_V6} 65535 65535\r\n`,
  'PROXY UNKNOWN whatever the sender had in mind\r\n'
]

const refusals = [
  'PROXY TCP4 192.168.0.01 192.168.0.11 1 2\r\n',
  'PROXY TCP4 256.1.1.1 1.1.1.1 1 2\r\n',
  'PROXY TCP4 1.2.3 1.1.1.1 1 2\r\n',
  'PROXY TCP4 1.2.3.4.5 1.1.1.1 1 2\r\n',
  'PROXY TCP4 1.2.3.4 5.6.7.8 65536 1\r\n',
  'PROXY TCP4 1.2.3.4 5.6.7.8 1 099999\r\n',
  'PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n',
  'PROXY TCP4 1.2.3.4 5.6.7.8 1 02\r\n',
  'PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n',
  'PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n',
  'PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n',
  'PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n',
  'PROXY TCP4 ::1 ::1 1 2\r\n',
  'PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n',
  'PROXY TCP6 1::2::3 ::1 1 2\r\n',
  'PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n',
  'PROXY TCP6 [::1] ::1 1 2\r\n',
  'PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n',
  'PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n',
  'PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX',
  'PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r\n',
  'PROXY UNKNOWN\n',
  'PROXY UNKNOWN\rX',
  'PROXY UNKNOWN foo\nbar\r\n',
  'PROXY UNKNOWNX\r\n',
  'PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n',
  'PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n',
  'PROXY TCP4\r\n',
  'proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n',
  'PROXY\r\n',
  `PROXY UNKNOWN ${'a'.repeat(100)}\r\n`,
  `PROXY UNKNOWN ${FULL_V6} ${FULL_V6} 65535 655350\r\n`,
  'GET / HTTP/1.1\r\n',
  '\x16\x03\x01\x02\x00',
  '\r\n\r\n\x00\r\nQUIT\n'
]

const pending = [
  'P',
  'PROX',
  'PROXY ',
  'PROXY TCP',
  'PROXY TCP4 1.2.3.4',
  'PROXY TCP4 1.2.3.4 5.6.7.8 1 2',
  'PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r',
  'PROXY TCP6 2001:db8::1 2001:db8::2 1234 443\r',
  'PROXY UNKNOWN',
  'PROXY UNKNOWN abc'
]

const vectors: Vector[] = [
  ...matches.map((s) => ({ name: JSON.stringify(s), bytes: latin1(s), expect: 'match' as const })),
  ...refusals.map((s) => ({ name: JSON.stringify(s), bytes: latin1(s), expect: 'no' as const })),
  ...pending.map((s) => ({ name: JSON.stringify(s), bytes: latin1(s), expect: 'more' as const }))
]

runDetectorSuite(proxyV1, vectors)

function matched (r: ProxyParseResult): Extract<ProxyParseResult, { verdict: 'match' }> {
  assert.equal(r.verdict, 'match', JSON.stringify(r))
  return r as Extract<ProxyParseResult, { verdict: 'match' }>
}

test('proxy-v1: parsed headers', () => {
  const r = matched(parseProxyV1(latin1('PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET / HTTP/1.1\r\n')))
  assert.equal(r.length, 'PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n'.length)
  assert.deepEqual(r.header, {
    version: 1,
    command: 'proxy',
    family: 'tcp4',
    transport: 'stream',
    source: { address: '192.168.0.1', port: 56324 },
    destination: { address: '192.168.0.11', port: 443 },
    tlvs: { raw: [] }
  })
  const six = matched(parseProxyV1(latin1('PROXY TCP6 2001:DB8:0:0:0:0:0:1 ::FFFF:10.0.0.1 1 65535\r\n')))
  assert.deepEqual(six.header.source, { address: '2001:db8::1', port: 1 })
  assert.deepEqual(six.header.destination, { address: '::ffff:10.0.0.1', port: 65535 })
  const unknown = matched(parseProxyV1(latin1('PROXY UNKNOWN 1.2.3.4 5.6.7.8 1 2\r\nrest')))
  assert.deepEqual(unknown.header, { version: 1, command: 'proxy', family: 'unknown', transport: 'unspec', tlvs: { raw: [] } })
  assert.equal(unknown.length, 'PROXY UNKNOWN 1.2.3.4 5.6.7.8 1 2\r\n'.length)
  const longest = `PROXY UNKNOWN ${FULL_V6} ${FULL_V6} 65535 65535\r\n`
  assert.equal(longest.length, PROXY_V1_MAX_LENGTH)
  assert.equal(matched(parseProxyV1(latin1(longest))).length, PROXY_V1_MAX_LENGTH)
})

test('proxy-v1: reasons', () => {
  const reason = (s: string): string => {
    const r = parseProxyV1(latin1(s))
    return r.verdict === 'no' ? r.reason : r.verdict
  }
  assert.equal(reason('GET /'), 'bad-signature')
  assert.equal(reason('PROXY UDP4 '), 'bad-protocol')
  assert.equal(reason('PROXY TCP4 01.2.3.4 1.2.3.4 1 2\r\n'), 'bad-address')
  assert.equal(reason('PROXY TCP4 1.2.3.4 1.2.3.4 70000 2\r\n'), 'bad-port')
  assert.equal(reason('PROXY TCP4 1.2.3.4 1.2.3.4 1 2\n'), 'bad-port')
  assert.equal(reason('PROXY TCP4 1.2.3.4 1.2.3.4 1 2\rx'), 'bad-line-end')
  assert.equal(reason(`PROXY UNKNOWN ${'x'.repeat(120)}`), 'line-too-long')
})

test('proxy-v1: encoder', () => {
  const enc = (o: Parameters<typeof encodeProxyV1>[0]): string => encodeProxyV1(o).toString('latin1')
  assert.equal(enc({ source: { address: '192.168.0.1', port: 56324 }, destination: { address: '192.168.0.11', port: 443 } }),
    'PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n')
  assert.equal(enc({ source: { address: '::ffff:192.168.0.1', port: 1 }, destination: { address: '::ffff:10.0.0.1', port: 2 } }),
    'PROXY TCP4 192.168.0.1 10.0.0.1 1 2\r\n')
  assert.equal(enc({ source: { address: '::ffff:192.168.0.1', port: 1 }, destination: { address: '::1', port: 2 } }),
    'PROXY TCP6 ::ffff:c0a8:1 ::1 1 2\r\n')
  assert.equal(enc({ source: { address: '10.0.0.1', port: 1 }, destination: { address: '2001:db8::1', port: 2 } }),
    'PROXY TCP6 ::ffff:a00:1 2001:db8::1 1 2\r\n')
  assert.equal(enc({ family: 'tcp6', source: { address: '10.0.0.1', port: 1 }, destination: { address: '10.0.0.2', port: 2 } }),
    'PROXY TCP6 ::ffff:a00:1 ::ffff:a00:2 1 2\r\n')
  assert.equal(enc({ source: { address: 'fe80::1%eth0', port: 1 }, destination: { address: 'FE80::2', port: 2 } }),
    'PROXY TCP6 fe80::1 fe80::2 1 2\r\n', 'zone ids are dropped')
  assert.equal(enc({ source: { address: '10.0.0.1', port: 1 } }), 'PROXY UNKNOWN\r\n')
  assert.equal(enc({ family: 'unknown', source: { address: '10.0.0.1', port: 1 }, destination: { address: '10.0.0.2', port: 2 } }), 'PROXY UNKNOWN\r\n')
  assert.throws(() => enc({ family: 'tcp4', source: { address: '::1', port: 1 }, destination: { address: '10.0.0.2', port: 2 } }), TypeError)
  assert.throws(() => enc({ source: { address: 'localhost', port: 1 }, destination: { address: '10.0.0.2', port: 2 } }), TypeError)
  assert.throws(() => enc({ source: { address: '10.0.0.1', port: 65536 }, destination: { address: '10.0.0.2', port: 2 } }), RangeError)
  assert.throws(() => enc({ source: { address: '10.0.0.1', port: 1.5 }, destination: { address: '10.0.0.2', port: 2 } }), RangeError)
})

/** What Node itself would print for an address. */
function nodeForm (address: string): string {
  return new SocketAddress({ address, family: isIPv6(address) ? 'ipv6' : 'ipv4' }).address
}

const port = fc.integer({ min: 0, max: 65535 })

test('proxy-v1: encode → parse round trip (IPv4, IPv6, mixed, v4-mapped)', () => {
  const address = fc.oneof(fc.ipV4(), fc.ipV6(), fc.ipV4().map((a) => '::ffff:' + a))
  fc.assert(fc.property(address, address, port, port, (src, dst, sport, dport) => {
    const encoded = encodeProxyV1({ source: { address: src, port: sport }, destination: { address: dst, port: dport } })
    assert.ok(encoded.length <= PROXY_V1_MAX_LENGTH)
    const r = matched(parseProxyV1(Buffer.concat([encoded, Buffer.from('payload')])))
    assert.equal(r.length, encoded.length)
    const mapped = (a: string): string | undefined => {
      const n = nodeForm(a)
      return !isIPv6(n) ? n : n.startsWith('::ffff:') && n.includes('.') ? n.slice(7) : undefined
    }
    const v4 = mapped(src) !== undefined && mapped(dst) !== undefined
    assert.equal(r.header.family, v4 ? 'tcp4' : 'tcp6', text(encoded))
    const expectedText = (a: string): string => v4 ? mapped(a)! : isIPv6(a) ? nodeForm(a) : nodeForm('::ffff:' + a)
    assert.deepEqual(r.header.source, { address: expectedText(src), port: sport })
    assert.deepEqual(r.header.destination, { address: expectedText(dst), port: dport })
  }), { numRuns: 1000 })
})

test('proxy-v1: random bytes and mutated lines never throw', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
    assert.ok(['match', 'no', 'more'].includes(parseProxyV1(bytes).verdict))
  }), { numRuns: 2000 })
  const alphabet = fc.constantFrom(...'PROXY TCP46UNKNOW0123456789abcdefABCDEF:.\r\n '.split(''))
  fc.assert(fc.property(fc.array(alphabet, { maxLength: 120 }), (chars) => {
    assert.ok(['match', 'no', 'more'].includes(parseProxyV1(latin1('PROXY ' + chars.join(''))).verdict))
  }), { numRuns: 3000 })
  fc.assert(fc.property(
    fc.constantFrom(...matches.map(latin1)),
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
    (original, flips) => {
      const bytes = Uint8Array.from(original)
      for (const [at, value] of flips) bytes[at % bytes.length] = value
      const r = parseProxyV1(bytes)
      if (r.verdict === 'match') assert.ok(r.length <= bytes.length && r.length <= PROXY_V1_MAX_LENGTH)
    }
  ), { numRuns: 3000 })
})

// ---------------------------------------------------------------------------------------------
// The IP helpers behind both versions

test('ip: formatIpv6 prints what Node prints', () => {
  // Mostly-zero words, so that runs of zeros, ::ffff: and ::a.b.c.d shapes come up often.
  const word = fc.oneof(fc.constant(0), fc.constant(0), fc.constant(0xffff), fc.integer({ min: 0, max: 0xffff }))
  fc.assert(fc.property(fc.array(word, { minLength: 8, maxLength: 8 }), (words) => {
    const bytes = new Uint8Array(16)
    words.forEach((w, i) => { bytes[2 * i] = w >> 8; bytes[2 * i + 1] = w & 0xff })
    const full = words.map((w) => w.toString(16)).join(':')
    assert.equal(formatIpv6(bytes), new SocketAddress({ address: full, family: 'ipv6' }).address, full)
  }), { numRuns: 3000 })
  assert.equal(formatIpv6(new Uint8Array(16)), '::')
  assert.equal(formatIpv6(Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4), 0, false), '::ffff:102:304')
})

test('ip: parseIpv6 and parseIpv4 agree with node:net on validity', () => {
  fc.assert(fc.property(fc.ipV6(), (a) => {
    const out = new Uint8Array(16)
    assert.ok(parseIpv6(a, out), a)
    assert.equal(formatIpv6(out), nodeForm(a))
  }), { numRuns: 1000 })
  const char = fc.constantFrom(...'0123456789abcdefABCDEF:.'.split(''))
  fc.assert(fc.property(fc.array(char, { maxLength: 46 }).map((c) => c.join('')), (s) => {
    assert.equal(parseIpv6(s, new Uint8Array(16)), isIPv6(s), s)
  }), { numRuns: 5000 })
  fc.assert(fc.property(fc.ipV4(), (a) => { assert.ok(parseIpv4(a) >= 0) }))
  for (const bad of ['01.2.3.4', '1.2.3', '1.2.3.4.', '.1.2.3', '256.0.0.0', '1..2.3', '1.2.3.4 ', '']) assert.equal(parseIpv4(bad), -1, bad)
  assert.equal(parseIpv4('255.255.255.255'), 0xffffffff)
})
