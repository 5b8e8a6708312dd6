import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { http, isTchar, MAX_METHOD_LENGTH, TCHAR } from '../../src/sniff/http.js'
import { loadFixtures } from '../fixtures/index.js'
import { runDetectorSuite, type Vector } from './suite.js'

const latin1 = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0))
const fixtures = loadFixtures('http')

const matches = [
  'GET / HTTP/1.1\r\n',
  'GET / HTTP/1.0\r\n',
  'GET / HTTP/1.1\n',
  'GET / HTTP/1.1\r',
  'HEAD /index.html HTTP/1.1\r\nHost: a\r\n\r\n',
  'POST /api?x=1&y=%20 HTTP/1.1\r\n',
  'PATCH /items/1 HTTP/1.1\r\n',
  'QUERY /search HTTP/1.1\r\n',
  'PROPFIND /dav/ HTTP/1.1\r\n',
  'MKCOL /dav/new/ HTTP/1.1\r\n',
  'UPDATEREDIRECTREF /a HTTP/1.1\r\n',
  'X-CUSTOM_method.v2! / HTTP/1.1\r\n',
  'get / HTTP/1.1\r\n',
  'OPTIONS * HTTP/1.1\r\n',
  'CONNECT example.com:443 HTTP/1.1\r\n',
  'CONNECT [::1]:443 HTTP/1.1\r\n',
  'CONNECT 127.0.0.1:443 HTTP/1.1\r\n',
  'GET http://example.com/a?b HTTP/1.1\r\n',
  'GET https://user@example.com:8443/ HTTP/1.1\r\n',
  'GET /caf\xc3\xa9 HTTP/1.1\r\n',
  'GET / HTTP/1.9\r\n',
  `${'M'.repeat(MAX_METHOD_LENGTH)} / HTTP/1.1\r\n`
]

const refusals = [
  'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n',
  'GET / HTTP/2.0\r\n',
  'GET / HTTP/1.1 \r\n',
  'GET / HTTP/1.x\r\n',
  'GET / HTTP/1.11\r\n',
  'GET / HTTP/1.1x',
  'GET / http/1.1\r\n',
  'GET /\r\n',
  'GET  / HTTP/1.1\r\n',
  'GET /  HTTP/1.1\r\n',
  'GET\t/ HTTP/1.1\r\n',
  'GET /a\tb HTTP/1.1\r\n',
  'GET /a\x00 HTTP/1.1\r\n',
  'GET /a\x7f HTTP/1.1\r\n',
  'GET /a\rb HTTP/1.1\r\n',
  'GET *x HTTP/1.1\r\n',
  'GET "/" HTTP/1.1\r\n',
  'GET <x> HTTP/1.1\r\n',
  ' GET / HTTP/1.1\r\n',
  '\r\nGET / HTTP/1.1\r\n',
  '(GET) / HTTP/1.1\r\n',
  'G:T / HTTP/1.1\r\n',
  `${'M'.repeat(MAX_METHOD_LENGTH + 1)} / HTTP/1.1\r\n`,
  'SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n',
  '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03',
  '\x00\x00\x00\x08\x04\xd2\x16\x2f',
  '\x05\x01\x00',
  '\x04\x01\x00\x50\x7f\x00\x00\x01user\x00',
  '<?xml version="1.0"?><stream:stream to="example.com">',
  '0 node1 17.7\n',
  'PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n',
  'EHLO mail.example.com\r\n'
]

const pending = [
  'GET',
  'GET ',
  'GET /',
  'GET /very/long/path?with=query',
  'GET / ',
  'GET / HTTP/',
  'GET / HTTP/1.',
  'GET / HTTP/1.1',
  'OPTIONS *',
  'M'.repeat(MAX_METHOD_LENGTH)
]

const vectors: Vector[] = [
  ...fixtures.map((f) => ({ name: `fixture ${f.name}`, bytes: f.bytes, expect: 'match' as const })),
  ...matches.map((s) => ({ name: JSON.stringify(s), bytes: latin1(s), expect: 'match' as const })),
  ...refusals.map((s) => ({ name: JSON.stringify(s), bytes: latin1(s), expect: 'no' as const })),
  ...pending.map((s) => ({ name: JSON.stringify(s), bytes: latin1(s), expect: 'more' as const }))
]

runDetectorSuite(http, vectors)

test('http: fixtures are all there and all match', () => {
  assert.ok(fixtures.length >= 13)
  for (const f of fixtures) assert.equal(http.detect(f.bytes), 'match', f.name)
})

test('http: the h2c preface is left to h2c.ts at every prefix length', () => {
  const preface = latin1('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n')
  for (let i = 1; i <= preface.length; i++) {
    const v = http.detect(preface.subarray(0, i))
    assert.ok(v === 'more' || v === 'no', `${i}: ${v}`)
    if (i >= 'PRI * HTTP/'.length + 1) assert.equal(v, 'no')
  }
})

test('http: a huge request-target keeps asking for more', () => {
  const head = latin1('GET /')
  const big = new Uint8Array(1 << 20).fill(0x61)
  big.set(head)
  assert.equal(http.detect(big), 'more')
  big.set(latin1(' HTTP/1.1\r'), big.length - 10)
  assert.equal(http.detect(big), 'match')
})

test('http: the tchar table is RFC 9110 token characters', () => {
  const tchars = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
  for (let b = 0; b < 256; b++) {
    assert.equal(isTchar(b), tchars.includes(String.fromCharCode(b)) && b < 128, `byte ${b}`)
    assert.equal(TCHAR[b] === 1, isTchar(b))
  }
})

test('http: any token method with an origin-form target matches', () => {
  const tchar = fc.constantFrom(...Array.from("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"))
  const pathChar = fc.integer({ min: 0x21, max: 0xff }).filter((b) => b !== 0x7f).map((b) => String.fromCharCode(b))
  fc.assert(fc.property(
    fc.array(tchar, { minLength: 1, maxLength: MAX_METHOD_LENGTH }).map((a) => a.join('')),
    fc.array(pathChar, { maxLength: 200 }).map((a) => '/' + a.join('')),
    fc.constantFrom('0', '1', '9'),
    fc.constantFrom('\r\n', '\n'),
    (method, target, minor, eol) => {
      assert.equal(http.detect(latin1(`${method} ${target} HTTP/1.${minor}${eol}`)), 'match')
    }
  ), { numRuns: 500 })
})

test('http: random bytes and mutated requests never throw', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
    assert.ok(['match', 'no', 'more'].includes(http.detect(bytes)))
  }), { numRuns: 3000 })
  const originals = [...fixtures.map((f) => f.bytes), ...matches.map(latin1)]
  fc.assert(fc.property(
    fc.constantFrom(...originals),
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
    (original, flips) => {
      const bytes = Uint8Array.from(original)
      for (const [at, value] of flips) bytes[at % bytes.length] = value
      assert.ok(['match', 'no', 'more'].includes(http.detect(bytes)))
    }
  ), { numRuns: 3000 })
})
