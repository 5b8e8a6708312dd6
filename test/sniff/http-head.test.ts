import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { parseRequestHead, type HeadResult } from '../../src/sniff/http-head.js'

const latin1 = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0))
const MAX = 16384
const parse = (s: string, max = MAX): HeadResult => parseRequestHead(latin1(s), max)

test('complete heads: method, target, version, fields as sent and the head length', () => {
  const head = 'GET /a?b=1 HTTP/1.1\r\nHost: example.com:8443\r\nX-Empty:\r\nUser-Agent:  curl/8  \r\nupgrade:\twebsocket\t\r\n\r\n'
  const r = parse(head + 'trailing bytes are not looked at')
  assert.equal(r.verdict, 'match')
  assert.ok(r.verdict === 'match')
  assert.deepEqual(r.head, {
    method: 'GET',
    target: '/a?b=1',
    minor: 1,
    fields: ['Host', 'example.com:8443', 'X-Empty', '', 'User-Agent', 'curl/8', 'upgrade', 'websocket'],
    padded: true,
    length: head.length
  })
  const bare = parse('OPTIONS * HTTP/1.0\r\n\r\n')
  assert.ok(bare.verdict === 'match')
  assert.deepEqual(bare.head, { method: 'OPTIONS', target: '*', minor: 0, fields: [], padded: false, length: 22 })
  // Whitespace after a value is noted; before it, or around an empty value, is not.
  for (const [fieldLines, padded] of [['X: a \r\n', true], ['X: a\t\r\n', true], ['X:\ta\r\n', false], ['X: \t\r\n', false], ['X:\r\n', false], ['X: a b\r\n', false]] as const) {
    const r = parse(`GET / HTTP/1.1\r\n${fieldLines}\r\n`)
    assert.ok(r.verdict === 'match')
    assert.equal(r.head.padded, padded, JSON.stringify(fieldLines))
  }
  // Spaces and tabs inside a value stay; obs-text is kept as latin1.
  const inner = parse('POST http://h/x HTTP/1.1\r\nX: a \t b\r\nY: caf\xe9\r\n\r\n')
  assert.ok(inner.verdict === 'match')
  assert.deepEqual(inner.head.fields, ['X', 'a \t b', 'Y', 'caf\xe9'])
})

test('heads that are not of the plainest form are "no"', () => {
  const bad = [
    'GET / HTTP/1.1\nHost: h\r\n\r\n', // bare LF ending the request line
    'GET / HTTP/1.1\r\nHost: h\n\r\n', // bare LF ending a field line
    'GET / HTTP/1.1\r\nHost: h\r\n\n', // bare LF as the empty line
    'GET / HTTP/1.1\rHost: h\r\n\r\n', // CR without LF
    'GET / HTTP/1.1\r\nHost: h\rX\r\n\r\n',
    'GET / HTTP/1.1\r\nHost: h\r\n\rX',
    'GET / HTTP/1.1\r\nHost : h\r\n\r\n', // whitespace before the colon
    'GET / HTTP/1.1\r\nHost\t: h\r\n\r\n',
    'GET / HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n', // obs-fold
    'GET / HTTP/1.1\r\nHost: h\r\n\tfolded\r\n\r\n',
    'GET / HTTP/1.1\r\n Host: h\r\n\r\n', // whitespace before the first field
    'GET / HTTP/1.1\r\n: h\r\n\r\n', // empty name
    'GET / HTTP/1.1\r\nHo(st: h\r\n\r\n', // not a token
    'GET / HTTP/1.1\r\nHost h\r\n\r\n', // no colon
    'GET / HTTP/1.1\r\nHost: h\0\r\n\r\n', // NUL in a value
    'GET / HTTP/1.1\r\nHost: h\x7f\r\n\r\n', // DEL
    'GET / HTTP/1.1\r\nHost: h\x1b\r\n\r\n',
    'GET  / HTTP/1.1\r\n\r\n', // two spaces
    'GET / HTTP/1.1 \r\n\r\n',
    'GET /caf\xc3\xa9 HTTP/1.1\r\n\r\n', // raw non-ASCII in the target
    'GET /a\tb HTTP/1.1\r\n\r\n',
    'GET / HTTP/2.0\r\n\r\n',
    'GET / HTTP/1.x\r\n\r\n',
    'GET / http/1.1\r\n\r\n',
    'G(T / HTTP/1.1\r\n\r\n',
    ' GET / HTTP/1.1\r\n\r\n',
    '\r\nGET / HTTP/1.1\r\n\r\n',
    'GET HTTP/1.1\r\n\r\n',
    `${'M'.repeat(65)} / HTTP/1.1\r\n\r\n`
  ]
  for (const input of bad) assert.equal(parse(input).verdict, 'no', JSON.stringify(input))
})

test('every prefix of a complete head is "more"', () => {
  const head = 'PUT http://[::1]:8080/p?q HTTP/1.0\r\nHost: [::1]:8080\r\nContent-Length: 0\r\nX:\t \r\n\r\n'
  for (let n = 0; n < head.length; n++) assert.equal(parse(head.slice(0, n)).verdict, 'more', JSON.stringify(head.slice(0, n)))
  assert.equal(parse(head).verdict, 'match')
})

test('the length bound: a head of exactly maxLength bytes parses, one byte more is "no"', () => {
  const head = 'GET / HTTP/1.1\r\nHost: h\r\n\r\n'
  assert.equal(parse(head, head.length).verdict, 'match')
  assert.equal(parse(head, head.length - 1).verdict, 'no')
  // Incomplete and still under the bound: more; at the bound: no.
  assert.equal(parse(head.slice(0, 10), 11).verdict, 'more')
  assert.equal(parse(head.slice(0, 10), 10).verdict, 'no')
  const long = 'GET / HTTP/1.1\r\nX: ' + 'a'.repeat(20000)
  assert.equal(parse(long).verdict, 'no')
})

// A generated head: valid by construction, with its fields.
const tchar = fc.constantFrom(...'abcXYZ019!#$%&\'*+-.^_`|~'.split(''))
const token = fc.array(tchar, { minLength: 1, maxLength: 12 }).map((a) => a.join(''))
const vchar = fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c))
const valueChar = fc.oneof(vchar, fc.constantFrom(' ', '\t', '\x80', '\xff'))
const value = fc.array(valueChar, { maxLength: 20 }).map((a) => a.join('').replace(/^[ \t]+|[ \t]+$/g, ''))
const ows = fc.constantFrom('', ' ', '\t', '  ', ' \t')
const field = fc.tuple(token, ows, value, ows)
const target = fc.oneof(fc.array(vchar, { minLength: 1, maxLength: 30 }).map((a) => '/' + a.join('')), fc.webUrl())
const generated = fc.record({
  method: token,
  target,
  minor: fc.integer({ min: 0, max: 9 }),
  fields: fc.array(field, { maxLength: 8 })
}).map((h) => ({
  ...h,
  text: `${h.method} ${h.target} HTTP/1.${h.minor}\r\n${h.fields.map(([n, a, v, b]) => `${n}:${a}${v}${b}\r\n`).join('')}\r\n`
}))

test('property: generated heads parse to what they were built from, and split anywhere stay "more" until complete', () => {
  fc.assert(fc.property(generated, fc.nat(), (h, cut) => {
    const r = parse(h.text)
    assert.ok(r.verdict === 'match', h.text)
    assert.equal(r.head.method, h.method)
    assert.equal(r.head.target, h.target)
    assert.equal(r.head.minor, h.minor)
    assert.deepEqual(r.head.fields, h.fields.flatMap(([n, , v]) => [n, v]))
    assert.equal(r.head.padded, h.fields.some(([, , v, b]) => v !== '' && b !== ''))
    assert.equal(r.head.length, h.text.length)
    const at = cut % h.text.length
    assert.equal(parse(h.text.slice(0, at)).verdict, 'more')
  }), { numRuns: 500 })
})

test('property: never throws; a match is a prefix ending in an empty line, and a "no" stays "no" with more bytes', () => {
  const bytes = fc.oneof(
    fc.uint8Array({ maxLength: 80 }),
    generated.chain((h) => fc.tuple(fc.nat({ max: h.text.length }), fc.uint8Array({ minLength: 1, maxLength: 4 })).map(([at, junk]) => {
      const b = latin1(h.text)
      return Uint8Array.from([...b.subarray(0, at), ...junk, ...b.subarray(at)])
    }))
  )
  fc.assert(fc.property(bytes, fc.uint8Array({ maxLength: 8 }), (input, more) => {
    const r = parseRequestHead(input, MAX)
    const longer = parseRequestHead(Uint8Array.from([...input, ...more]), MAX)
    if (r.verdict === 'match') {
      assert.equal(Buffer.from(input.subarray(r.head.length - 4, r.head.length)).toString('latin1'), '\r\n\r\n')
      assert.deepEqual(longer, r)
    }
    if (r.verdict === 'no') assert.equal(longer.verdict, 'no')
  }), { numRuns: 2000 })
})
