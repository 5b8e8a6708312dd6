/**
 * `parseAuthority` and `requestTarget`: examples and properties.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { parseAuthority, requestTarget } from '../../src/sniff/http-target.js'

// ---------------------------------------------------------------------------------------------
// parseAuthority

test('parseAuthority: names, IPv4, bracketed IPv6 and ports', () => {
  const ok: Array<[string, string, number | undefined]> = [
    ['example.com', 'example.com', undefined],
    ['Example.COM', 'example.com', undefined],
    ['localhost', 'localhost', undefined],
    ['a', 'a', undefined],
    ['a-b.c_d.example', 'a-b.c_d.example', undefined],
    ['xn--bcher-kva.example:8443', 'xn--bcher-kva.example', 8443],
    ['localhost:8080', 'localhost', 8080],
    ['127.0.0.1', '127.0.0.1', undefined],
    ['127.0.0.1:8443', '127.0.0.1', 8443],
    ['10.0.0.255:1', '10.0.0.255', 1],
    ['host:1', 'host', 1],
    ['host:65535', 'host', 65535],
    ['host:080', 'host', 80],
    ['[::1]', '[::1]', undefined],
    ['[::1]:8443', '[::1]', 8443],
    ['[2001:DB8::A]:443', '[2001:db8::a]', 443],
    ['[::ffff:192.0.2.1]:65535', '[::ffff:192.0.2.1]', 65535],
    ['[fe80::1]:1', '[fe80::1]', 1],
    // An empty port is allowed by RFC 3986 and means the default.
    ['host:', 'host', undefined],
    ['[::1]:', '[::1]', undefined]
  ]
  for (const [input, host, port] of ok) {
    assert.deepEqual(parseAuthority(input), { host, port }, input)
  }
})

test('parseAuthority: malformed values are null', () => {
  const bad = [
    undefined,
    '',
    ':',
    ':8080',
    'a b',
    ' example.com',
    'example.com ',
    'exa\tmple.com',
    'example.com\r\n',
    'example.com\r\nX-Injected: 1',
    'a\nb',
    'a\rb',
    'a\0b',
    'user@host',
    'user:pass@host',
    'user@host:8080',
    'host:0',
    'host:00000',
    'host:65536',
    'host:99999',
    'host:123456',
    'host:+1',
    'host:-1',
    'host:08a',
    'host: 80',
    'host:80 ',
    'host:0x50',
    'host:1e3',
    'host:80:80',
    'host/path',
    'host?q',
    'host#f',
    'host\\x',
    '-host',
    'host-',
    '.host',
    'host..',
    '::1',
    '::1:8080',
    '2001:db8::1',
    'fe80::1',
    '[::1',
    '::1]',
    '[]',
    '[]:80',
    '[127.0.0.1]',
    '[example.com]',
    '[fe80::1%25eth0]',
    '[fe80::1%eth0]',
    '[fe80::1%25eth0]:80',
    '[v1.fe]',
    'ex%61mple.com',
    '%65xample.com',
    'example.com%3A80',
    '[::1]x',
    '[::1]80',
    '[::1]:80x',
    '[::1]]',
    '[::1]:80]',
    '[::1][::2]',
    '[::1]:0',
    '[::1]:65536',
    'exämple.com',
    'example.com\u3002',
    'a'.repeat(254),
    'a'.repeat(254) + ':80',
    'a'.repeat(300),
    `${'a'.repeat(63)}.`.repeat(5) + 'com'
  ]
  for (const input of bad) {
    assert.equal(parseAuthority(input), null, JSON.stringify(input))
  }
})

test('parseAuthority: a fully qualified name with its trailing dot is a valid Host', () => {
  // RFC 3986 reg-name allows it, and browsers send it as typed (`http://example.com./`).
  assert.notEqual(parseAuthority('example.com.'), null)
  assert.notEqual(parseAuthority('localhost.:8080'), null)
  assert.equal(parseAuthority('localhost.:8080')?.port, 8080)
})

test('parseAuthority: the longest names still parse', () => {
  // 253 characters: four labels of 63 plus a dot-separated tail (the DNS maximum).
  const longest = ['a'.repeat(63), 'b'.repeat(63), 'c'.repeat(63), 'd'.repeat(61)].join('.')
  assert.equal(longest.length, 253)
  assert.deepEqual(parseAuthority(longest), { host: longest, port: undefined })
  assert.deepEqual(parseAuthority(longest + ':65535'), { host: longest, port: 65535 })
})

// ---------------------------------------------------------------------------------------------
// requestTarget

test('requestTarget: origin-form and absolute-form', () => {
  assert.deepEqual(requestTarget('/'), { authority: undefined, path: '/' })
  assert.deepEqual(requestTarget('/a?b=1'), { authority: undefined, path: '/a?b=1' })
  assert.deepEqual(requestTarget('/a/../b?x=%20&y'), { authority: undefined, path: '/a/../b?x=%20&y' })
  assert.deepEqual(requestTarget('//double/slash'), { authority: undefined, path: '//double/slash' })
  assert.deepEqual(requestTarget('http://other.test:8080/x?y'), { authority: 'other.test:8080', path: '/x?y' })
  assert.deepEqual(requestTarget('http://other.test'), { authority: 'other.test', path: '/' })
  assert.deepEqual(requestTarget('http://other.test?q=1'), { authority: 'other.test', path: '/?q=1' })
  assert.deepEqual(requestTarget('HTTP://Other.Test/X'), { authority: 'Other.Test', path: '/X' })
  assert.deepEqual(requestTarget('https://[::1]:8443/p'), { authority: '[::1]:8443', path: '/p' })
  // The authority comes back as sent; parseAuthority is what judges it.
  const withUser = requestTarget('http://user@evil.test/')
  assert.ok(withUser !== null)
  assert.equal(parseAuthority(withUser.authority), null)
})

test('requestTarget: targets that cannot be redirected are null', () => {
  for (const input of [undefined, '', '*', 'example.com:443', 'ftp://example.com/', 'http:/x', 'http:x', 'x', 'mailto:a@b', 'http://h/x#frag']) {
    assert.equal(requestTarget(input), null, JSON.stringify(input))
  }
})

// ---------------------------------------------------------------------------------------------
// Properties

const authorityChars = fc.constantFrom(
  ...'aZ09.-_:[]@%/?#\\ \t\r\n\0:f.1]['.split(''), 'é', '\u3002', '::', '%25', '80', '65536', '[::1]'
)
const authorityish = fc.oneof(
  fc.string(),
  fc.string({ unit: 'binary' }),
  fc.array(authorityChars, { maxLength: 30 }).map((a) => a.join('')),
  fc.webAuthority({ withIPv4: true, withIPv6: true, withPort: true, withUserInfo: true })
)

function serialise (a: { host: string, port: number | undefined }): string {
  return a.port === undefined ? a.host : `${a.host}:${a.port}`
}

test('property: parseAuthority never throws, and what parses re-serialises to the same', () => {
  fc.assert(fc.property(authorityish, (input) => {
    const a = parseAuthority(input)
    if (a === null) return
    assert.equal(typeof a.host, 'string')
    assert.ok(a.port === undefined || (Number.isInteger(a.port) && a.port >= 1 && a.port <= 65535))
    assert.doesNotMatch(a.host, /[\s@%/?#\\]/)
    assert.deepEqual(parseAuthority(serialise(a)), a)
  }), { numRuns: 2000 })
})

test('property: generated host names, IPv4 and IPv6 with ports parse to themselves', () => {
  const port = fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined })
  const host = fc.oneof(
    fc.domain().filter((d) => d.length <= 253),
    fc.ipV4(),
    fc.ipV6().map((ip) => `[${ip}]`)
  )
  fc.assert(fc.property(host, port, (h, p) => {
    const input = p === undefined ? h : `${h}:${p}`
    const a = parseAuthority(input)
    assert.deepEqual(a, { host: h.toLowerCase(), port: p }, input)
    assert.deepEqual(parseAuthority(serialise(a)), a)
  }), { numRuns: 1000 })
})

test('property: out-of-range and non-decimal ports never parse', () => {
  const badPort = fc.oneof(
    fc.integer({ min: 65536, max: 99999 }).map(String),
    fc.constant('0'),
    fc.stringMatching(/^[0-9]*[^0-9][0-9]*$/).filter((s) => s.length > 0)
  )
  fc.assert(fc.property(fc.constantFrom('host', '127.0.0.1', '[::1]'), badPort, (h, p) => {
    assert.equal(parseAuthority(`${h}:${p}`), null, `${h}:${p}`)
  }), { numRuns: 500 })
})

test('property: requestTarget never throws, and keeps origin-form paths unchanged', () => {
  fc.assert(fc.property(fc.oneof(fc.string(), fc.webUrl({ withQueryParameters: true, withFragments: true }), fc.webPath()), (url) => {
    const r = requestTarget(url)
    if (r === null) return
    assert.equal(r.path.charCodeAt(0), 0x2f, JSON.stringify(r))
    if (url.startsWith('/')) assert.deepEqual(r, { authority: undefined, path: url })
  }), { numRuns: 2000 })
  fc.assert(fc.property(fc.webUrl({ withQueryParameters: true }), (url) => {
    const r = requestTarget(url)
    assert.ok(r !== null, url)
    // Put back together, it is the same URL: nothing of the path or query was lost or changed.
    const scheme = url.slice(0, url.indexOf(':'))
    assert.equal(new URL(`${scheme}://${r.authority ?? ''}${r.path}`).href, new URL(url).href, url)
    assert.ok(url.endsWith(r.path) || r.path === '/' || r.path.startsWith('/?'), `${url} → ${r.path}`)
  }), { numRuns: 500 })
})
