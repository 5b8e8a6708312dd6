import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { DEFAULT_MAX_HELLO_BYTES, looksLikeTls, matchAlpn, matchServerName, parseClientHello, tls } from '../../src/sniff/tls.js'
import type { ClientHelloResult } from '../../src/sniff/tls.js'
import { loadFixtures } from '../fixtures/index.js'
import { runDetectorSuite, type Vector } from './suite.js'

// ---------------------------------------------------------------------------------------------
// Building ClientHellos in code

const u8 = (n: number): number[] => [n & 0xff]
const u16 = (n: number): number[] => [(n >> 8) & 0xff, n & 0xff]
const u24 = (n: number): number[] => [(n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff]
const ascii = (s: string): number[] => Array.from(s, (c) => c.charCodeAt(0))

interface Extension { type: number, data: number[] }

const ext = {
  sni: (name: string): Extension => ({ type: 0, data: [...u16(name.length + 3), 0, ...u16(name.length), ...ascii(name)] }),
  alpn: (names: string[]): Extension => {
    const list = names.flatMap((n) => [n.length, ...ascii(n)])
    return { type: 16, data: [...u16(list.length), ...list] }
  },
  versions: (versions: number[]): Extension => ({ type: 43, data: [versions.length * 2, ...versions.flatMap(u16)] }),
  raw: (type: number, data: number[]): Extension => ({ type, data })
}

interface HelloSpec {
  legacyVersion?: number
  sessionId?: number[]
  cipherSuites?: number[]
  compression?: number[]
  /** `undefined`: no extensions block at all. */
  extensions?: Extension[]
  handshakeType?: number
}

/** A handshake message (4-byte header + ClientHello body). */
function helloMessage (spec: HelloSpec = {}): Uint8Array {
  const body = [
    ...u16(spec.legacyVersion ?? 0x0303),
    ...Array.from({ length: 32 }, (_, i) => i),
    ...u8((spec.sessionId ?? []).length), ...(spec.sessionId ?? []),
    ...u16((spec.cipherSuites ?? [0x1301, 0xc02f]).length * 2), ...(spec.cipherSuites ?? [0x1301, 0xc02f]).flatMap(u16),
    ...u8((spec.compression ?? [0]).length), ...(spec.compression ?? [0])
  ]
  if (spec.extensions !== undefined) {
    const block = spec.extensions.flatMap((e) => [...u16(e.type), ...u16(e.data.length), ...e.data])
    body.push(...u16(block.length), ...block)
  }
  return Uint8Array.from([spec.handshakeType ?? 1, ...u24(body.length), ...body])
}

/** Wrap a handshake message into records, cutting it into fragments of the given sizes (the rest in the last). */
function toRecords (message: Uint8Array, sizes: number[] = [], recordVersion = 0x0301): Uint8Array {
  const out: number[] = []
  let p = 0
  for (const size of [...sizes, message.length]) {
    const end = Math.min(message.length, p + size)
    if (end <= p) continue
    out.push(0x16, ...u16(recordVersion), ...u16(end - p), ...message.subarray(p, end))
    p = end
  }
  return Uint8Array.from(out)
}

/** The handshake message of a single-record capture. */
function messageOf (record: Uint8Array): Uint8Array {
  return record.subarray(5, 5 + ((record[3] << 8) | record[4]))
}

function hello (spec: HelloSpec = {}, sizes?: number[]): Uint8Array {
  return toRecords(helloMessage(spec), sizes)
}

const concat = (...parts: Array<Uint8Array | number[]>): Uint8Array => Uint8Array.from(parts.flatMap((p) => Array.from(p)))

// ---------------------------------------------------------------------------------------------
// Vectors for the shared detector suite

const fixtures = loadFixtures('tls')
const typical = { extensions: [ext.sni('example.com'), ext.alpn(['h2', 'http/1.1']), ext.versions([0x0304, 0x0303])] }

const vectors: Vector[] = [
  ...fixtures.map((f) => ({ name: `fixture ${f.name}`, bytes: f.bytes, expect: 'match' as const })),
  ...fixtures.map((f) => {
    const m = messageOf(f.bytes)
    return { name: `fixture ${f.name} in 2 records`, bytes: toRecords(m, [Math.floor(m.length / 2)]), expect: 'match' as const }
  }),
  ...fixtures.map((f) => {
    const m = messageOf(f.bytes)
    return { name: `fixture ${f.name} in 3 records, header split`, bytes: toRecords(m, [2, Math.floor(m.length / 3)]), expect: 'match' as const }
  }),
  { name: 'hello without extensions', bytes: hello(), expect: 'match' },
  { name: 'SSL 3.0 hello without extensions', bytes: toRecords(helloMessage({ legacyVersion: 0x0300 }), [], 0x0300), expect: 'match' },
  { name: 'SNI upper case with trailing dot', bytes: hello({ extensions: [ext.sni('WWW.Example.COM.')] }), expect: 'match' },
  { name: 'typical hello, one record', bytes: hello(typical), expect: 'match' },
  { name: 'typical hello, 1-byte records', bytes: hello(typical, Array(200).fill(1)), expect: 'match' },
  { name: 'hello followed by a ChangeCipherSpec record', bytes: concat(hello(typical), [0x14, 0x03, 0x03, 0x00, 0x01, 0x01]), expect: 'match' },
  { name: 'empty session id, 32-byte session id', bytes: hello({ sessionId: Array(32).fill(7), extensions: [] }), expect: 'match' },
  { name: 'unknown extensions are skipped', bytes: hello({ extensions: [ext.raw(0xfe0d, [1, 2, 3]), ext.raw(0x1a1a, []), ext.sni('a.b')] }), expect: 'match' },

  { name: 'truncated record', bytes: hello(typical).subarray(0, 40), expect: 'more' },
  { name: 'record header only', bytes: hello(typical).subarray(0, 5), expect: 'more' },
  { name: 'first of two records', bytes: hello(typical, [30]).subarray(0, 35), expect: 'more' },

  { name: 'record length 0', bytes: Uint8Array.of(0x16, 0x03, 0x01, 0x00, 0x00, 0x01), expect: 'no' },
  { name: 'record length 0 between fragments', bytes: concat(hello(typical, [10]).subarray(0, 15), [0x16, 0x03, 0x01, 0, 0]), expect: 'no' },
  { name: 'record longer than 2^14 + 256', bytes: Uint8Array.of(0x16, 0x03, 0x01, 0x41, 0x01, 0x01), expect: 'no' },
  { name: 'alert record', bytes: Uint8Array.of(0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x28), expect: 'no' },
  { name: 'application data record', bytes: Uint8Array.of(0x17, 0x03, 0x03, 0x00, 0x10), expect: 'no' },
  { name: 'record version 3.5', bytes: Uint8Array.of(0x16, 0x03, 0x05, 0x00, 0x40), expect: 'no' },
  { name: 'record version 2.0', bytes: Uint8Array.of(0x16, 0x02, 0x00, 0x00, 0x40), expect: 'no' },
  { name: 'SSL 2.0 compatible hello', bytes: Uint8Array.of(0x80, 0x2e, 0x01, 0x00, 0x02, 0x00, 0x15, 0x00, 0x00, 0x00, 0x10), expect: 'no' },
  { name: 'ServerHello (handshake type 2)', bytes: hello({ handshakeType: 2, extensions: [] }), expect: 'no' },
  { name: 'handshake type 1 with a 10-byte body', bytes: Uint8Array.of(0x16, 0x03, 0x01, 0x00, 0x0e, 0x01, 0x00, 0x00, 0x0a, ...Array(10).fill(0)), expect: 'no' },
  { name: 'non-handshake record between fragments', bytes: concat(hello(typical, [20]).subarray(0, 25), [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]), expect: 'no' },
  { name: 'legacy_version 2.0', bytes: hello({ legacyVersion: 0x0200 }), expect: 'no' },
  { name: 'legacy_version 3.5', bytes: hello({ legacyVersion: 0x0305 }), expect: 'no' },
  { name: 'session id of 33 bytes', bytes: hello({ sessionId: Array(33).fill(1) }), expect: 'no' },
  { name: 'odd cipher suites length', bytes: mutateHello(hello(), (b) => { b[5 + 4 + 35 + 1] = 3 }), expect: 'no' },
  { name: 'no cipher suites', bytes: hello({ cipherSuites: [] }), expect: 'no' },
  { name: 'no compression methods', bytes: hello({ compression: [] }), expect: 'no' },
  { name: 'compression without null', bytes: hello({ compression: [1] }), expect: 'no' },
  { name: 'extensions length too long', bytes: mutateHello(hello({ extensions: [ext.sni('a.example')] }), (b) => { b[5 + 4 + 44] += 1 }), expect: 'no' },
  { name: 'extension length past the block', bytes: hello({ extensions: [ext.raw(0x0017, [])] }).map((x, i, all) => i === all.length - 1 ? 1 : x), expect: 'no' },
  { name: 'one stray byte after compression', bytes: toRecords(concat(helloMessage(), [0]).map((x, i) => i === 3 ? x + 1 : x)), expect: 'no' },
  { name: 'SNI of type 1', bytes: hello({ extensions: [ext.raw(0, [0, 6, 1, 0, 3, 0x61, 0x62, 0x63])] }), expect: 'no' },
  { name: 'SNI with two names', bytes: hello({ extensions: [ext.raw(0, [0, 12, 0, 0, 3, 0x61, 0x62, 0x63, 0, 0, 3, 0x64, 0x65, 0x66])] }), expect: 'no' },
  { name: 'SNI list length wrong', bytes: hello({ extensions: [ext.raw(0, [0, 7, 0, 0, 3, 0x61, 0x62, 0x63])] }), expect: 'no' },
  { name: 'empty SNI extension', bytes: hello({ extensions: [ext.raw(0, [])] }), expect: 'no' },
  { name: 'SNI with a space', bytes: hello({ extensions: [ext.sni('a b.example')] }), expect: 'no' },
  { name: 'SNI "."', bytes: hello({ extensions: [ext.sni('.')] }), expect: 'no' },
  { name: 'two SNI extensions', bytes: hello({ extensions: [ext.sni('a.example'), ext.sni('b.example')] }), expect: 'no' },
  { name: 'ALPN with an empty name', bytes: hello({ extensions: [ext.alpn(['h2', ''])] }), expect: 'no' },
  { name: 'ALPN with an empty list', bytes: hello({ extensions: [ext.raw(16, [0, 0])] }), expect: 'no' },
  { name: 'ALPN name overruns', bytes: hello({ extensions: [ext.raw(16, [0, 3, 5, 0x68, 0x32])] }), expect: 'no' },
  { name: 'supported_versions odd', bytes: hello({ extensions: [ext.raw(43, [3, 3, 4, 3])] }), expect: 'no' },
  { name: 'hello declared larger than maxBytes', bytes: Uint8Array.of(0x16, 0x03, 0x01, 0x40, 0x00, 0x01, 0x00, 0x40, 0x00), expect: 'no' },
  { name: 'HTTP request', bytes: new TextEncoder().encode('GET / HTTP/1.1\r\n\r\n'), expect: 'no' },
  { name: 'h2c preface', bytes: new TextEncoder().encode('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), expect: 'no' },
  { name: 'SSH banner', bytes: new TextEncoder().encode('SSH-2.0-OpenSSH_9.2\r\n'), expect: 'no' }
]

function mutateHello (bytes: Uint8Array, change: (b: Uint8Array) => void): Uint8Array {
  const copy = Uint8Array.from(bytes)
  change(copy)
  return copy
}

runDetectorSuite(tls, vectors)

// ---------------------------------------------------------------------------------------------
// Extracted fields

/** Call the parser as the pipeline would: growing prefixes, stop at the first final result. */
function feedParse (bytes: Uint8Array, cuts: number[]): ClientHelloResult {
  const points = [...new Set(cuts.filter((c) => c > 0 && c < bytes.length))].sort((a, b) => a - b)
  points.push(bytes.length)
  let result: ClientHelloResult = { verdict: 'more' }
  for (const end of points) {
    result = parseClientHello(Uint8Array.from(bytes.subarray(0, end)))
    if (result.verdict !== 'more') return result
  }
  return result
}

function fields (r: ClientHelloResult): unknown {
  assert.equal(r.verdict, 'match', JSON.stringify(r))
  return r.verdict === 'match' ? { sni: r.hello.sni, alpn: r.hello.alpn, versions: r.hello.versions } : undefined
}

const expected: Record<string, { sni?: string, alpn: string[], versions: number[] }> = {
  'curl-sni-h2': { sni: 'portmux.test', alpn: ['h2', 'http/1.1'], versions: [0x0304, 0x0303, 0x0302, 0x0301] },
  'curl-ip-no-sni': { alpn: ['h2', 'http/1.1'], versions: [0x0304, 0x0303, 0x0302, 0x0301] },
  'openssl-tls12-alpn': { sni: 'example.com', alpn: ['h2', 'http/1.1'], versions: [0x0303] },
  'openssl-tls13-alpn': { sni: 'example.com', alpn: ['h2', 'http/1.1'], versions: [0x0304] },
  'openssl-no-servername': { alpn: [], versions: [0x0304, 0x0303, 0x0302, 0x0301] },
  'node-tls-sni-alpn': { sni: 'api.portmux.test', alpn: ['h2', 'http/1.1'], versions: [0x0304, 0x0303] },
  'node-tls12-ip': { alpn: ['http/1.1'], versions: [0x0303] }
}

test('tls: fixtures give the expected SNI, ALPN and versions', () => {
  assert.ok(fixtures.length >= 8, 'fixtures are there')
  for (const f of fixtures) {
    const r = parseClientHello(f.bytes)
    assert.equal(r.verdict, 'match', f.name)
    if (r.verdict !== 'match') continue
    assert.equal(r.length, f.bytes.length, `${f.name}: length`)
    assert.equal(r.hello.legacyVersion, 0x0303)
    assert.equal(r.hello.hasExtensions, true)
    const want = expected[f.name]
    if (want !== undefined) assert.deepEqual(fields(r), { sni: want.sni, alpn: want.alpn, versions: want.versions }, f.name)
  }
  const big = parseClientHello(fixtures.find((f) => f.name === 'node-tls-large-alpn')!.bytes)
  assert.ok(big.verdict === 'match' && big.hello.alpn.length === 42 && big.hello.sni === 'big.portmux.test')
  assert.ok(big.verdict === 'match' && big.length > 1460, 'larger than one TCP segment')
})

test('tls: fields are the same whole, one byte at a time, and in random splits', () => {
  for (const f of fixtures) {
    const whole = fields(parseClientHello(f.bytes))
    assert.deepEqual(fields(feedParse(f.bytes, Array.from({ length: f.bytes.length }, (_, i) => i))), whole, `${f.name} byte by byte`)
    fc.assert(fc.property(
      fc.array(fc.integer({ min: 1, max: f.bytes.length - 1 }), { maxLength: 10 }),
      (cuts) => { assert.deepEqual(fields(feedParse(f.bytes, cuts)), whole) }
    ), { numRuns: 100 })
  }
})

test('tls: a hello spread over 2 and 3 records parses the same', () => {
  for (const f of fixtures) {
    const whole = parseClientHello(f.bytes)
    const m = messageOf(f.bytes)
    for (const sizes of [[Math.floor(m.length / 2)], [1], [3, 5], [m.length - 1], [100, 1]]) {
      const bytes = toRecords(m, sizes)
      const r = parseClientHello(bytes)
      assert.deepEqual(fields(r), fields(whole), `${f.name} cut at ${sizes.join(',')}`)
      assert.ok(r.verdict === 'match' && r.length === bytes.length)
    }
    fc.assert(fc.property(
      fc.array(fc.integer({ min: 1, max: m.length }), { minLength: 1, maxLength: 2 }),
      fc.array(fc.integer({ min: 1, max: 10_000 }), { maxLength: 6 }),
      (sizes, cuts) => {
        const bytes = toRecords(m, sizes)
        assert.deepEqual(fields(feedParse(bytes, cuts.map((c) => c % bytes.length))), fields(whole))
      }
    ), { numRuns: 50 })
  }
})

test('tls: generated hellos round-trip their fields through any record split', () => {
  const label = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?$/)
  const hostName = fc.array(label, { minLength: 1, maxLength: 4 }).map((l) => l.join('.')).filter((h) => h.length <= 255)
  const alpnName = fc.uint8Array({ minLength: 1, maxLength: 20 }).map((b) => String.fromCharCode(...b))
  fc.assert(fc.property(
    fc.option(hostName, { nil: undefined }),
    fc.option(fc.array(alpnName, { minLength: 1, maxLength: 5 }), { nil: undefined }),
    fc.option(fc.array(fc.constantFrom(0x0304, 0x0303, 0x0302, 0x0301), { minLength: 1, maxLength: 4 }), { nil: undefined }),
    fc.boolean(),
    fc.array(fc.integer({ min: 1, max: 64 }), { maxLength: 4 }),
    (sni, alpn, versions, upper, sizes) => {
      const extensions: Extension[] = []
      if (sni !== undefined) extensions.push(ext.sni(upper ? sni.toUpperCase() + '.' : sni))
      if (alpn !== undefined) extensions.push(ext.alpn(alpn))
      if (versions !== undefined) extensions.push(ext.versions([0x3a3a, ...versions]))
      const r = parseClientHello(hello({ extensions }, sizes))
      assert.deepEqual(fields(r), { sni, alpn: alpn ?? [], versions: versions ?? [0x0303] })
    }
  ), { numRuns: 300 })
})

test('tls: hellos without extensions, SSL 3.0, GREASE, trailing dot', () => {
  const plain = parseClientHello(hello())
  assert.deepEqual(plain, { verdict: 'match', hello: { alpn: [], versions: [0x0303], legacyVersion: 0x0303, hasExtensions: false }, length: hello().length })
  const ssl3 = parseClientHello(toRecords(helloMessage({ legacyVersion: 0x0300 }), [], 0x0300))
  assert.ok(ssl3.verdict === 'match' && ssl3.hello.versions[0] === 0x0300)
  const dotted = parseClientHello(hello({ extensions: [ext.sni('WWW.Example.COM.'), ext.versions([0x0a0a, 0x0304])] }))
  assert.ok(dotted.verdict === 'match')
  assert.equal(dotted.hello.sni, 'www.example.com')
  assert.deepEqual(dotted.hello.versions, [0x0304])
  const emptyBlock = parseClientHello(hello({ extensions: [] }))
  assert.ok(emptyBlock.verdict === 'match' && emptyBlock.hello.hasExtensions && emptyBlock.hello.sni === undefined)
})

test('tls: reasons for refusals', () => {
  const reason = (bytes: Uint8Array, maxBytes?: number): string | undefined => {
    const r = parseClientHello(bytes, maxBytes)
    return r.verdict === 'no' ? r.reason : r.verdict
  }
  assert.equal(reason(Uint8Array.of(0x15)), 'not-handshake-record')
  assert.equal(reason(Uint8Array.of(0x16, 0x03, 0x01, 0x00, 0x00)), 'empty-record')
  assert.equal(reason(Uint8Array.of(0x16, 0x03, 0x01, 0xff, 0xff)), 'record-too-long')
  assert.equal(reason(hello({ handshakeType: 2 })), 'not-client-hello')
  assert.equal(reason(hello({ sessionId: Array(33).fill(0) })), 'bad-session-id')
  assert.equal(reason(hello({ cipherSuites: [] })), 'hello-too-short')
  assert.equal(reason(hello({ cipherSuites: [], extensions: [] })), 'bad-cipher-suites')
  assert.equal(reason(hello({ cipherSuites: [0x1301], extensions: [ext.raw(0x0a0a, [0])] }).map((b, i) => i === 45 ? 3 : b)), 'bad-cipher-suites')
  assert.equal(reason(hello({ compression: [] })), 'bad-compression-methods')
  assert.equal(reason(hello({ extensions: [ext.sni('bad name')] })), 'bad-server-name')
  assert.equal(reason(hello({ extensions: [ext.alpn([''])] })), 'bad-alpn')
  assert.equal(reason(hello({ extensions: [ext.alpn(['h2']), ext.alpn(['h2'])] })), 'duplicate-extension')
  assert.equal(reason(hello({ extensions: [ext.raw(43, [1, 3])] })), 'bad-supported-versions')
})

test('tls: maxBytes — more while the hello can still fit, hello-too-large when it cannot', () => {
  const big = fixtures.find((f) => f.name === 'node-tls-large-alpn')!.bytes
  assert.equal(parseClientHello(big.subarray(0, 100), big.length).verdict, 'more')
  assert.equal(parseClientHello(big, big.length).verdict, 'match')
  assert.deepEqual(parseClientHello(big.subarray(0, 5), big.length - 1), { verdict: 'no', reason: 'hello-too-large' })
  // A 2-record hello: the first record fits, but the handshake length says the rest cannot.
  const m = messageOf(big)
  const split = toRecords(m, [1000])
  assert.equal(parseClientHello(split, split.length).verdict, 'match')
  assert.deepEqual(parseClientHello(split.subarray(0, 20), split.length - 1), { verdict: 'no', reason: 'hello-too-large' })
  assert.equal(parseClientHello(split.subarray(0, 20), split.length).verdict, 'more')
  // The detector uses the mux's default limit.
  assert.equal(DEFAULT_MAX_HELLO_BYTES, 16384)
  const huge = toRecords(helloMessage({ extensions: [ext.raw(0xffce, Array(20000).fill(0))] }), [16000])
  assert.equal(tls.detect(huge), 'no')
  assert.equal(parseClientHello(huge, 1 << 20).verdict, 'match')
})

// ---------------------------------------------------------------------------------------------
// Robustness

test('tls: random bytes never throw', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
    const r = parseClientHello(bytes)
    assert.ok(['match', 'no', 'more'].includes(r.verdict))
    assert.ok(['match', 'no', 'more'].includes(tls.detect(bytes)))
    assert.ok(['match', 'no', 'more'].includes(looksLikeTls(bytes)))
  }), { numRuns: 2000 })
  // Random bodies behind a plausible record and handshake header reach the deep code paths.
  fc.assert(fc.property(fc.uint8Array({ minLength: 41, maxLength: 400 }), fc.integer({ min: 0, max: 3 }), (body, slack) => {
    const message = concat([1, ...u24(body.length - slack)], body)
    const r = parseClientHello(toRecords(message))
    assert.equal(tls.detect(toRecords(message)), r.verdict)
  }), { numRuns: 2000 })
})

test('tls: mutated fixtures never throw and agree with the detector', () => {
  const all = [...fixtures.map((f) => f.bytes), hello(typical), hello(typical, [7, 30])]
  fc.assert(fc.property(
    fc.constantFrom(...all),
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }),
    fc.nat(),
    (original, flips, cut) => {
      const bytes = Uint8Array.from(original)
      for (const [at, value] of flips) bytes[at % bytes.length] = value
      const truncated = bytes.subarray(0, (cut % bytes.length) + 1)
      for (const b of [bytes, truncated]) {
        const r = parseClientHello(b)
        assert.equal(tls.detect(b), r.verdict)
        if (r.verdict === 'match') assert.ok(r.length <= b.length)
      }
    }
  ), { numRuns: 3000 })
})

// ---------------------------------------------------------------------------------------------
// looksLikeTls, matchServerName, matchAlpn

test('tls: looksLikeTls decides on three bytes', () => {
  assert.equal(looksLikeTls(new Uint8Array(0)), 'more')
  assert.equal(looksLikeTls(Uint8Array.of(0x16)), 'more')
  assert.equal(looksLikeTls(Uint8Array.of(0x16, 0x03)), 'more')
  for (let minor = 0; minor <= 4; minor++) assert.equal(looksLikeTls(Uint8Array.of(0x16, 0x03, minor)), 'match')
  assert.equal(looksLikeTls(Uint8Array.of(0x16, 0x03, 0x05)), 'no')
  assert.equal(looksLikeTls(Uint8Array.of(0x16, 0x02)), 'no')
  assert.equal(looksLikeTls(Uint8Array.of(0x47)), 'no')
  assert.equal(looksLikeTls(Uint8Array.of(0x80, 0x2e, 0x01)), 'no')
  for (const f of fixtures) assert.equal(looksLikeTls(f.bytes), 'match')
})

test('tls: matchServerName', () => {
  const cases: Array<[string, string | undefined, boolean]> = [
    ['example.com', 'example.com', true],
    ['Example.COM', 'example.com', true],
    ['example.com.', 'EXAMPLE.com', true],
    ['example.com', 'example.com.', true],
    ['example.com', 'www.example.com', false],
    ['example.com', undefined, false],
    ['*.example.com', 'a.example.com', true],
    ['*.example.com', 'A.Example.Com.', true],
    ['*.Example.com.', 'a.example.com', true],
    ['*.example.com', 'example.com', false],
    ['*.example.com', 'a.b.example.com', false],
    ['*.example.com', '.example.com', false],
    ['*.example.com', 'aexample.com', false],
    ['*.example.com', 'a.example.org', false],
    ['*.example.com', undefined, false],
    ['*', 'a', false],
    ['a*.example.com', 'ab.example.com', false],
    ['a*.example.com', 'a*.example.com', true],
    ['', '', false],
    ['.', '.', false]
  ]
  for (const [pattern, name, want] of cases) assert.equal(matchServerName(pattern, name), want, `${pattern} vs ${String(name)}`)
})

test('tls: matchAlpn', () => {
  assert.equal(matchAlpn(['h2'], ['h2', 'http/1.1']), true)
  assert.equal(matchAlpn(['acme-tls/1', 'http/1.1'], ['h2', 'http/1.1']), true)
  assert.equal(matchAlpn(['h2'], ['http/1.1']), false)
  assert.equal(matchAlpn(['H2'], ['h2']), false)
  assert.equal(matchAlpn([], ['h2']), false)
  assert.equal(matchAlpn(['h2'], []), false)
})
