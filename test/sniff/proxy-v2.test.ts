import { test } from 'node:test'
import assert from 'node:assert/strict'
import { SocketAddress, isIPv6 } from 'node:net'
import fc from 'fast-check'
import {
  crc32c, encodeProxyV2, parseProxyV2, PP2_TYPE_ALPN, PP2_TYPE_AUTHORITY, PP2_TYPE_CRC32C, PP2_TYPE_NOOP,
  PROXY_V2_MAX_LENGTH, PROXY_V2_SIGNATURE
} from '../../src/sniff/proxy-v2.js'
import { parseProxyHeader, type ProxyParseResult, type ProxyTlv } from '../../src/sniff/proxy-header.js'
import { encodeProxyV1 } from '../../src/sniff/proxy-v1.js'
import type { Detector, ProtocolName } from '../../src/sniff/types.js'
import { runDetectorSuite, type Vector } from './suite.js'

const SIG = Array.from(PROXY_V2_SIGNATURE)
const u16 = (n: number): number[] => [(n >> 8) & 0xff, n & 0xff]
const bytesOf = (...parts: Array<number[] | Uint8Array | string>): Uint8Array =>
  Uint8Array.from(parts.flatMap((p) => typeof p === 'string' ? Array.from(Buffer.from(p, 'latin1')) : Array.from(p)))

/** A header from its parts, with `len` computed unless given. */
function v2 (verCmd: number, fam: number, body: number[], len = body.length): Uint8Array {
  return bytesOf(SIG, [verCmd, fam], u16(len), body)
}
const tlv = (type: number, value: number[] | string): number[] => {
  const v = typeof value === 'string' ? Array.from(Buffer.from(value)) : value
  return [type, ...u16(v.length), ...v]
}

const INET_BLOCK = [172, 19, 0, 1, 172, 19, 0, 3, ...u16(42578), ...u16(80)]
const INET6_BLOCK = [0x20, 0x01, 0x0d, 0xb8, ...Array(11).fill(0), 1, 0x20, 0x01, 0x0d, 0xb8, ...Array(11).fill(0), 2, ...u16(1234), ...u16(443)]
const unixPath = (p: string): number[] => { const b = Array(108).fill(0); Buffer.from(p).forEach((x, i) => { b[i] = x }); return b }

const proxyV2: Detector = { name: 'proxy-v2' as string as ProtocolName, detect: (bytes) => parseProxyV2(bytes).verdict }
const proxyAny: Detector = { name: 'proxy' as string as ProtocolName, detect: (bytes) => parseProxyHeader(bytes).verdict }

const v2Vectors: Vector[] = [
  { name: 'TCP over IPv4 followed by HTTP', bytes: bytesOf(v2(0x21, 0x11, INET_BLOCK), 'GET / HTTP/1.1\r\n'), expect: 'match' },
  { name: 'UDP over IPv4', bytes: v2(0x21, 0x12, INET_BLOCK), expect: 'match' },
  { name: 'TCP over IPv6', bytes: v2(0x21, 0x21, INET6_BLOCK), expect: 'match' },
  { name: 'UNIX stream', bytes: v2(0x21, 0x31, [...unixPath('/run/a.sock'), ...unixPath('/run/b.sock')]), expect: 'match' },
  { name: 'LOCAL with no block', bytes: v2(0x20, 0x00, []), expect: 'match' },
  { name: 'LOCAL with an INET block (ignored)', bytes: v2(0x20, 0x11, INET_BLOCK), expect: 'match' },
  { name: 'LOCAL with an INET family and a short block', bytes: v2(0x20, 0x11, [1, 2, 3]), expect: 'match' },
  { name: 'PROXY over UNSPEC with TLVs', bytes: v2(0x21, 0x00, tlv(PP2_TYPE_NOOP, [])), expect: 'match' },
  { name: 'IPv4 with TLVs', bytes: v2(0x21, 0x11, [...INET_BLOCK, ...tlv(PP2_TYPE_ALPN, 'h2'), ...tlv(PP2_TYPE_AUTHORITY, 'example.com'), ...tlv(0xe0, [1, 2, 3])]), expect: 'match' },
  { name: 'encoded with CRC32C', bytes: encodeProxyV2({ source: { address: '1.2.3.4', port: 1 }, destination: { address: '5.6.7.8', port: 2 }, crc32c: true }), expect: 'match' },

  { name: 'signature only', bytes: Uint8Array.from(SIG), expect: 'more' },
  { name: 'fixed part only', bytes: v2(0x21, 0x11, INET_BLOCK).subarray(0, 16), expect: 'more' },
  { name: 'address block cut', bytes: v2(0x21, 0x11, INET_BLOCK).subarray(0, 20), expect: 'more' },

  { name: 'version 1 in the version nibble', bytes: v2(0x11, 0x11, INET_BLOCK), expect: 'no' },
  { name: 'version 3', bytes: v2(0x31, 0x11, INET_BLOCK), expect: 'no' },
  { name: 'command 2', bytes: v2(0x22, 0x11, INET_BLOCK), expect: 'no' },
  { name: 'family 4', bytes: v2(0x21, 0x41, INET_BLOCK), expect: 'no' },
  { name: 'transport 3', bytes: v2(0x21, 0x13, INET_BLOCK), expect: 'no' },
  { name: 'INET with a 4-byte block', bytes: v2(0x21, 0x11, [1, 2, 3, 4]), expect: 'no' },
  { name: 'INET6 with an INET block', bytes: v2(0x21, 0x21, INET_BLOCK), expect: 'no' },
  { name: 'TLV running past the end', bytes: v2(0x21, 0x11, [...INET_BLOCK, PP2_TYPE_ALPN, 0, 5, 0x68, 0x32]), expect: 'no' },
  { name: 'two stray bytes after the block', bytes: v2(0x21, 0x11, [...INET_BLOCK, 1, 0]), expect: 'no' },
  { name: 'CRC32C of the wrong size', bytes: v2(0x21, 0x11, [...INET_BLOCK, ...tlv(PP2_TYPE_CRC32C, [1, 2, 3])]), expect: 'no' },
  { name: 'CRC32C that does not match', bytes: v2(0x21, 0x11, [...INET_BLOCK, ...tlv(PP2_TYPE_CRC32C, [1, 2, 3, 4])]), expect: 'no' },
  { name: 'broken signature', bytes: bytesOf(SIG.slice(0, 5), [0x0a]), expect: 'no' },
  { name: 'PROXY v1 text', bytes: bytesOf('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n'), expect: 'no' },
  { name: 'HTTP request', bytes: bytesOf('GET / HTTP/1.1\r\n'), expect: 'no' },
  { name: 'bare CRLF CRLF', bytes: bytesOf('\r\n\r\nGET'), expect: 'no' }
]

runDetectorSuite(proxyV2, v2Vectors)

runDetectorSuite(proxyAny, [
  { name: 'v1 TCP4', bytes: bytesOf('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n'), expect: 'match' },
  { name: 'v1 UNKNOWN', bytes: bytesOf('PROXY UNKNOWN\r\n'), expect: 'match' },
  { name: 'v2 INET', bytes: v2(0x21, 0x11, INET_BLOCK), expect: 'match' },
  { name: 'v2 LOCAL', bytes: v2(0x20, 0x00, []), expect: 'match' },
  { name: 'v2 prefix', bytes: Uint8Array.from(SIG.slice(0, 7)), expect: 'more' },
  { name: 'v1 prefix', bytes: bytesOf('PROXY TCP6 ::1'), expect: 'more' },
  { name: 'HTTP', bytes: bytesOf('GET / HTTP/1.1\r\n'), expect: 'no' },
  { name: 'TLS', bytes: Uint8Array.of(0x16, 0x03, 0x01, 0x00, 0x40), expect: 'no' },
  { name: 'SSH', bytes: bytesOf('SSH-2.0-x\r\n'), expect: 'no' },
  { name: 'PRI (h2c)', bytes: bytesOf('PRI * HTTP/2.0\r\n'), expect: 'no' }
])

function matched (r: ProxyParseResult): Extract<ProxyParseResult, { verdict: 'match' }> {
  assert.equal(r.verdict, 'match', JSON.stringify(r))
  return r as Extract<ProxyParseResult, { verdict: 'match' }>
}

test('proxy-v2: parsed headers', () => {
  const four = matched(parseProxyV2(bytesOf(v2(0x21, 0x11, [...INET_BLOCK, ...tlv(PP2_TYPE_AUTHORITY, 'example.com')]), 'GET')))
  assert.equal(four.length, 16 + 12 + 3 + 11)
  assert.deepEqual(four.header, {
    version: 2,
    command: 'proxy',
    family: 'tcp4',
    transport: 'stream',
    source: { address: '172.19.0.1', port: 42578 },
    destination: { address: '172.19.0.3', port: 80 },
    tlvs: [{ type: PP2_TYPE_AUTHORITY, value: new Uint8Array(Buffer.from('example.com')) }]
  })
  const six = matched(parseProxyV2(v2(0x21, 0x22, INET6_BLOCK)))
  assert.equal(six.header.transport, 'dgram')
  assert.deepEqual(six.header.source, { address: '2001:db8::1', port: 1234 })
  assert.deepEqual(six.header.destination, { address: '2001:db8::2', port: 443 })
  const unix = matched(parseProxyV2(v2(0x21, 0x31, [...unixPath('/run/a.sock'), 0, ...Buffer.from('abstract'), ...Array(99).fill(0)])))
  assert.deepEqual(unix.header.source, { address: '/run/a.sock', port: 0 })
  assert.deepEqual(unix.header.destination, { address: '@abstract', port: 0 })
  const local = matched(parseProxyV2(v2(0x20, 0x11, [...INET_BLOCK, ...tlv(PP2_TYPE_NOOP, [0, 0])])))
  assert.deepEqual(local.header, { version: 2, command: 'local', family: 'tcp4', transport: 'stream', tlvs: [{ type: PP2_TYPE_NOOP, value: new Uint8Array(2) }] })
  const unspecTransport = matched(parseProxyV2(v2(0x21, 0x10, INET_BLOCK)))
  assert.equal(unspecTransport.header.source, undefined, 'UNSPEC transport reports no addresses')
  // TLV values are copies, not views of the input.
  const input = v2(0x21, 0x00, tlv(0xe1, [9]))
  const copied = matched(parseProxyV2(input))
  input[input.length - 1] = 0
  assert.deepEqual(copied.header.tlvs[0].value, Uint8Array.of(9))
})

test('proxy-v2: reasons and maxBytes', () => {
  const reason = (b: Uint8Array, max?: number): string => {
    const r = parseProxyV2(b, max)
    return r.verdict === 'no' ? r.reason : r.verdict
  }
  assert.equal(reason(bytesOf('\r\nx')), 'bad-signature')
  assert.equal(reason(v2(0x11, 0x11, [])), 'bad-version')
  assert.equal(reason(v2(0x2f, 0x11, [])), 'bad-command')
  assert.equal(reason(v2(0x21, 0x51, [])), 'bad-family')
  assert.equal(reason(v2(0x21, 0x11, [1])), 'bad-address-length')
  assert.equal(reason(v2(0x21, 0x11, [...INET_BLOCK, 1])), 'bad-tlv')
  assert.equal(reason(v2(0x21, 0x11, [...INET_BLOCK, ...tlv(PP2_TYPE_CRC32C, [0, 0, 0, 0])])), 'bad-crc32c')
  const header = v2(0x21, 0x11, INET_BLOCK)
  assert.equal(reason(header.subarray(0, 16), header.length - 1), 'header-too-large')
  assert.equal(reason(header.subarray(0, 16), header.length), 'more')
  assert.equal(PROXY_V2_MAX_LENGTH, 16 + 65535)
  assert.equal(reason(bytesOf(SIG, [0x21, 0x00, 0xff, 0xff])), 'more')
})

test('proxy-v2: CRC32C', () => {
  assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283)
  const withCrc = encodeProxyV2({ source: { address: '::1', port: 1 }, destination: { address: '::2', port: 2 }, tlvs: [{ type: 0xe0, value: Uint8Array.of(1) }], crc32c: true })
  const r = matched(parseProxyV2(withCrc))
  assert.deepEqual(r.header.tlvs.map((t) => t.type), [0xe0, PP2_TYPE_CRC32C])
  for (let i = 0; i < withCrc.length; i++) {
    // The fixed part is refused for other reasons; a changed CRC TLV type is no longer a checksum.
    if ((i >= 12 && i <= 15) || i === withCrc.length - 7) continue
    const flipped = Buffer.from(withCrc)
    flipped[i] ^= 0x01
    assert.equal(parseProxyV2(flipped).verdict, 'no', `flip at ${i}`)
  }
})

test('proxy-v2: encoder', () => {
  assert.deepEqual(
    encodeProxyV2({ source: { address: '172.19.0.1', port: 42578 }, destination: { address: '172.19.0.3', port: 80 } }),
    Buffer.from(v2(0x21, 0x11, INET_BLOCK))
  )
  assert.deepEqual(
    encodeProxyV2({ source: { address: '::ffff:172.19.0.1', port: 42578 }, destination: { address: '::ffff:172.19.0.3', port: 80 } }),
    Buffer.from(v2(0x21, 0x11, INET_BLOCK)),
    'both ends v4-mapped give INET'
  )
  assert.deepEqual(encodeProxyV2({ command: 'local', source: { address: '1.2.3.4', port: 1 }, destination: { address: '1.2.3.4', port: 2 } }), Buffer.from(v2(0x20, 0x00, [])))
  assert.deepEqual(encodeProxyV2({}), Buffer.from(v2(0x21, 0x00, [])))
  assert.deepEqual(encodeProxyV2({ transport: 'dgram', source: { address: '2001:db8::1', port: 1234 }, destination: { address: '2001:db8::2', port: 443 } }), Buffer.from(v2(0x21, 0x22, INET6_BLOCK)))
  const unix = matched(parseProxyV2(encodeProxyV2({ family: 'unix', source: { address: '/tmp/a', port: 0 }, destination: { address: '@b', port: 0 } })))
  assert.deepEqual([unix.header.source?.address, unix.header.destination?.address], ['/tmp/a', '@b'])
  assert.throws(() => encodeProxyV2({ family: 'unix', source: { address: 'x'.repeat(109), port: 0 }, destination: { address: '/b', port: 0 } }), RangeError)
  assert.throws(() => encodeProxyV2({ source: { address: 'nope', port: 1 }, destination: { address: '1.2.3.4', port: 2 } }), TypeError)
  assert.throws(() => encodeProxyV2({ source: { address: '1.2.3.4', port: -1 }, destination: { address: '1.2.3.4', port: 2 } }), RangeError)
  assert.throws(() => encodeProxyV2({ tlvs: [{ type: 256, value: new Uint8Array(0) }] }), RangeError)
  assert.throws(() => encodeProxyV2({ tlvs: [{ type: 1, value: new Uint8Array(70000) }] }), RangeError)
})

function nodeForm (address: string): string {
  return new SocketAddress({ address, family: isIPv6(address) ? 'ipv6' : 'ipv4' }).address
}

test('proxy-v2: encode → parse round trip (IPv4, IPv6, ports, TLVs, CRC32C)', () => {
  const port = fc.integer({ min: 0, max: 65535 })
  const tlvArb: fc.Arbitrary<ProxyTlv> = fc.record({
    type: fc.integer({ min: 0, max: 255 }).filter((t) => t !== PP2_TYPE_CRC32C),
    value: fc.uint8Array({ maxLength: 40 })
  })
  fc.assert(fc.property(
    fc.oneof(fc.tuple(fc.ipV4(), fc.ipV4()), fc.tuple(fc.ipV6(), fc.ipV6())),
    port, port,
    fc.array(tlvArb, { maxLength: 5 }),
    fc.boolean(),
    fc.constantFrom('stream' as const, 'dgram' as const),
    ([src, dst], sport, dport, tlvs, crc, transport) => {
      const encoded = encodeProxyV2({ source: { address: src, port: sport }, destination: { address: dst, port: dport }, tlvs, crc32c: crc, transport })
      const r = matched(parseProxyV2(Buffer.concat([encoded, Buffer.from('\x16\x03\x01')])))
      assert.equal(r.length, encoded.length)
      assert.equal(r.header.transport, transport)
      const v4 = !isIPv6(src) || (nodeForm(src).startsWith('::ffff:') && nodeForm(src).includes('.') && nodeForm(dst).startsWith('::ffff:') && nodeForm(dst).includes('.'))
      assert.equal(r.header.family, v4 ? 'tcp4' : 'tcp6')
      const expectText = (a: string): string => v4 && isIPv6(a) ? nodeForm(a).slice(7) : nodeForm(a)
      assert.deepEqual(r.header.source, { address: expectText(src), port: sport })
      assert.deepEqual(r.header.destination, { address: expectText(dst), port: dport })
      assert.deepEqual(r.header.tlvs.filter((t) => t.type !== PP2_TYPE_CRC32C), tlvs.map((t) => ({ type: t.type, value: Uint8Array.from(t.value) })))
      // The same header through the version dispatcher, and v1 agrees on the addresses.
      assert.deepEqual(parseProxyHeader(encoded), r)
      const one = matched(parseProxyHeader(encodeProxyV1({ source: { address: src, port: sport }, destination: { address: dst, port: dport } })))
      assert.deepEqual([one.header.source, one.header.destination], [r.header.source, r.header.destination])
    }
  ), { numRuns: 1000 })
})

test('proxy-v2: random bytes and mutated headers never throw', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (body) => {
    for (const b of [body, bytesOf(SIG, body)]) {
      assert.ok(['match', 'no', 'more'].includes(parseProxyV2(b).verdict))
      assert.ok(['match', 'no', 'more'].includes(parseProxyHeader(b).verdict))
    }
  }), { numRuns: 3000 })
  const originals = v2Vectors.filter((v) => v.expect === 'match').map((v) => v.bytes)
  fc.assert(fc.property(
    fc.constantFrom(...originals),
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
    (original, flips) => {
      const bytes = Uint8Array.from(original)
      for (const [at, value] of flips) bytes[12 + (at % (bytes.length - 12))] = value
      const r = parseProxyV2(bytes)
      if (r.verdict === 'match') assert.ok(r.length <= bytes.length)
    }
  ), { numRuns: 3000 })
})
