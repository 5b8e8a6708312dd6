/**
 * The redirect and the refusal answered from the sniffed bytes must be byte for byte what the
 * HTTP server writes for the same request (the Date value aside). Every request is sent, as
 * raw bytes, to two servers with the same options — one as shipped, one with the fast path
 * switched off — and the replies are compared; which path answered is counted on the
 * internal diagnostics channel.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import diagnostics_channel from 'node:diagnostics_channel'
import { once } from 'node:events'
import { METHODS } from 'node:http'
import type { Socket } from 'node:net'
import fc from 'fast-check'
import { createServer } from '../../src/node.js'
import type { MuxServer } from '../../src/server.js'
import { fastChannel, type HttpServers } from '../../src/handlers/http.js'
import type { MuxOptions } from '../../src/types.js'
import { connect, exchange, listen, readAll, testCertificate } from '../helpers.js'

const T = { timeout: 60_000 }

/** Fast-path answers per server port. */
const fast = new Map<number, number>()
function onFast (message: unknown): void {
  const port = (message as { socket: Socket }).socket.localPort ?? 0
  fast.set(port, (fast.get(port) ?? 0) + 1)
}
diagnostics_channel.subscribe(fastChannel.name, onFast)
const fastCount = (port: number): number => fast.get(port) ?? 0

interface Pair { fast: number, slow: number, servers: [MuxServer, MuxServer] }

async function pair (t: TestContext, options: Omit<MuxOptions, 'tls'> = {}): Promise<Pair> {
  const pems = await testCertificate()
  const a = createServer(() => { throw new Error('the app must not run') }, { tls: pems, ...options })
  const b = createServer(() => { throw new Error('the app must not run') }, { tls: pems, ...options })
  ;(b as unknown as { http: HttpServers }).http.fastPlaintext = false
  return { fast: await listen(t, a), slow: await listen(t, b), servers: [a, b] }
}

const normalise = (raw: string): string => raw.replace(/\r\nDate: [^\r\n]*\r\n/, '\r\nDate: -\r\n')

type Path = 'fast' | 'server' | 'either'

/** Send `request` to both servers; the replies must be equal; `path` says who must have answered. */
async function same (t: TestContext, p: Pair, request: string | Buffer, path: Path): Promise<string> {
  const before = fastCount(p.fast)
  const a = await exchange(t, p.fast, request)
  const took = fastCount(p.fast) - before
  const b = await exchange(t, p.slow, request)
  assert.equal(fastCount(p.slow), 0, 'the server with the fast path off never takes it')
  const shown = JSON.stringify(request.toString().slice(0, 200))
  assert.equal(normalise(a), normalise(b), `${shown}: fast ${JSON.stringify(a)} vs server ${JSON.stringify(b)}`)
  if (path === 'fast') assert.equal(took, 1, `${shown} should be answered from the sniffed bytes`)
  if (path === 'server') assert.equal(took, 0, `${shown} should go through the HTTP server`)
  if (took === 1) assert.match(a, /\r\nDate: [A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT\r\n/)
  return a
}

const get = (path: string, headers: string[], version = '1.1'): string =>
  `GET ${path} HTTP/${version}\r\n${headers.map((h) => h + '\r\n').join('')}\r\n`

// ---------------------------------------------------------------------------------------------
// The requests of the redirect rules' own tests

const RULES: Array<[string, Path]> = [
  [get('/a?b=1', ['Host: 127.0.0.1:8443']), 'fast'],
  [get('/a?b=1', ['Host: LocalHost:8443']), 'fast'],
  [get('/p/q?x=%2F&y=a%20b', ['Host: example.test:9999']), 'fast'],
  [get('/', ['Host: example.test']), 'fast'],
  ['HEAD /a?b=1 HTTP/1.1\r\nHost: 127.0.0.1:8443\r\n\r\n', 'fast'],
  ['POST /submit?x=1 HTTP/1.1\r\nHost: localhost:8443\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nhello world', 'server'],
  ['POST /c HTTP/1.1\r\nHost: localhost:8443\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n', 'server'],
  ['PUT /r HTTP/1.1\r\nHost: localhost:8443\r\nContent-Length: 3\r\n\r\nabc', 'server'],
  ['DELETE /m HTTP/1.1\r\nHost: localhost:8443\r\nContent-Length: 0\r\n\r\n', 'fast'],
  ['PATCH /m HTTP/1.1\r\nHost: localhost:8443\r\nContent-Length: 0\r\n\r\n', 'fast'],
  ['OPTIONS /m HTTP/1.1\r\nHost: localhost:8443\r\nContent-Length: 0\r\n\r\n', 'fast'],
  [get('/a?b=1', ['Host: evil.test', 'X-Forwarded-Host: evil2.test']), 'fast'],
  [get('/a?b=1', ['Host: evil.test', 'Host: evil2.test']), 'server'],
  [get('http://evil.test:8080/a?b=1', ['Host: evil2.test']), 'fast'],
  [get('/a?b=1', ['Host: user@evil.test']), 'fast'],
  [get('/a?b=1', ['Host: evil.test:99999']), 'fast'],
  [get('/a?b=1', []), 'server'],
  [get('/a?b=1', ['Host: evil.test', 'Upgrade: websocket', 'Connection: Upgrade']), 'fast'],
  ['GET /a?b=1 HTTP/1.0\r\nHost: evil.test\r\n\r\n', 'fast'],
  ['POST /a?b=1 HTTP/1.1\r\nHost: evil.test\r\nContent-Length: 0\r\n\r\n', 'fast'],
  [get('/s', ['Host: example.test:443']), 'fast'],
  [get('/s', ['Host: [2001:db8::1]:443']), 'fast'],
  [get('/', ['Host: [::1]:8443']), 'fast'],
  [get('/v6?q', ['Host: [2001:DB8::1]']), 'fast'],
  ['GET /a HTTP/1.1\r\n\r\n', 'server'],
  ['GET /a HTTP/1.0\r\n\r\n', 'fast'],
  ['GET /a HTTP/1.0\r\nHost: localhost:8443\r\n\r\n', 'fast'],
  ...['user@localhost', 'user:pw@localhost:8443', 'localhost:0', 'localhost:65536', 'localhost:+1', 'localhost:08a', 'local host',
    'localhost:80 80', '::1', '::1:8443', '[fe80::1%25eth0]', 'ex%61mple.com', '[::1]junk', 'evil.test/path', 'evil.test?x', 'a'.repeat(300), ''
  ].map((h): [string, Path] => [get('/a', [`Host: ${h}`]), 'fast']),
  [get('http://other.test:8080/x?y', ['Host: 127.0.0.1:8443']), 'fast'],
  [get('http://other.test', ['Host: other.test']), 'fast'],
  [get('http://user@evil.test/x', ['Host: fine.test']), 'fast'],
  [get('/caf%C3%A9?q=%C3%A9', ['Host: example.org']), 'fast'],
  ['OPTIONS * HTTP/1.1\r\nHost: example.org\r\n\r\n', 'server'],
  ['CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n', 'server'],
  [get('/socket?room=1', ['Host: 127.0.0.1:8443', 'Upgrade: websocket', 'Connection: Upgrade', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version: 13']), 'fast'],
  [get('/a', ['Host: 127.0.0.1:8443', 'X-Forwarded-Host: evil.test']), 'fast'],
  [get('/a', ['Host: internal', 'X-Forwarded-Host: public.example:8443, proxy.internal']), 'fast'],
  [get('/a', ['Host: internal', 'X-Forwarded-Host: user@evil.test']), 'fast'],
  [get('/one', ['Host: h', 'Connection: keep-alive']) + get('/two', ['Host: h', 'Connection: keep-alive']), 'server'],
  ['POST /upload HTTP/1.1\r\nHost: localhost:8443\r\nContent-Length: 1000000\r\nExpect: 100-continue\r\n\r\n', 'server']
]

/** Requests the fast path must leave to the HTTP server. */
const HOSTILE: string[] = [
  'GET / HTTP/1.1\r\n\r\n', // no Host
  'GET / HTTP/1.1\r\nUser-Agent: x\r\n\r\n',
  'CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n',
  'GET / HTTP/1.1\r\nHost: h\r\nX-Long: a\r\n b\r\n\r\n', // obs-fold
  'GET / HTTP/1.1\r\nHost: h\r\n\tX: folded\r\n\r\n',
  'GET / HTTP/1.1\r\nHost: h\r\nHost: h\r\n\r\n', // duplicate Host, even the same one
  'GET / HTTP/1.1\r\nHost: h\r\nhost: other\r\n\r\n',
  'GET / HTTP/1.0\r\nHost: h\r\nHost: h\r\n\r\n',
  'GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n', // h2c
  'GET / HTTP/1.1\r\nHost: h\r\nUpgrade: foo\r\nConnection: Upgrade\r\n\r\n',
  'GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nUpgrade: websocket\r\n\r\n',
  `GET / HTTP/1.1\r\nHost: h\r\nX-Big: ${'a'.repeat(9000)}\r\n\r\n`, // within Node's 16 KiB, beyond the fast path's
  `GET / HTTP/1.1\r\nHost: h\r\n${Array.from({ length: 70 }, (_, i) => `X-${i}: ${i}\r\n`).join('')}\r\n`,
  'GET / HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n', // pipelined
  'GET / HTTP/1.1\r\nHost: h\r\n\r\nX', // anything after the head
  'POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi',
  'POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 00\r\n\r\n',
  'POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n',
  'POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\t\r\n\r\n', // Node refuses it
  'GET / HTTP/1.1\r\nHost: h \r\n\r\n',
  'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
  'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n',
  'POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n',
  'GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-Host: a\r\nX-Forwarded-Host: b\r\n\r\n',
  'GET / HTTP/1.1\nHost: h\n\n', // bare LF
  'GET / HTTP/1.1\r\nHost : h\r\n\r\n', // whitespace before the colon
  'GET / HTTP/1.1\r\nHost: h\0\r\n\r\n',
  'GET / HTTP/1.1\r\nHost: h\r\nX: a\x01b\r\n\r\n',
  'get / HTTP/1.1\r\nHost: h\r\n\r\n', // Node knows methods in capitals only
  'FOO / HTTP/1.1\r\nHost: h\r\n\r\n',
  'PRI / HTTP/1.1\r\nHost: h\r\n\r\n',
  'GET / HTTP/1.2\r\nHost: h\r\n\r\n',
  'GET * HTTP/1.1\r\nHost: h\r\n\r\n',
  'GET h:80 HTTP/1.1\r\nHost: h\r\n\r\n',
  'GET ftp://h/ HTTP/1.1\r\nHost: h\r\n\r\n'
]

test('the redirect rules\' requests: the same bytes both ways, each by the expected path', T, async (t) => {
  const p = await pair(t)
  for (const [request, path] of RULES) await same(t, p, request, path)
  // Raw UTF-8 in the target: Node's parser refuses it, and so does the fast path.
  await same(t, p, Buffer.concat([Buffer.from('GET /caf', 'latin1'), Buffer.from([0xc3, 0xa9]), Buffer.from(' HTTP/1.1\r\nHost: example.org\r\n\r\n', 'latin1')]), 'server')
})

test('the option variants of the rules: status, fixed host, trusted X-Forwarded-Host, port', T, async (t) => {
  const variants: Array<Omit<MuxOptions, 'tls'>> = [
    { http: { redirect: { status: 302 } } },
    { http: { redirect: { status: 307 } } },
    { http: { redirect: { host: 'example.com', trustForwardedHost: true } } },
    { http: { redirect: { host: 'secure.example:8443' } } },
    { http: { redirect: { port: 443 } } },
    { http: { redirect: { port: 8443 } } },
    { http: { redirect: { trustForwardedHost: true } } }
  ]
  for (const options of variants) {
    const p = await pair(t, options)
    for (const [request, path] of RULES) await same(t, p, request, path)
  }
})

test('every hostile or unusual request goes through the HTTP server, with the same answer', T, async (t) => {
  const p = await pair(t)
  for (const request of HOSTILE) await same(t, p, request, 'server')
  const r = await pair(t, { http: 'reject' })
  for (const request of HOSTILE) await same(t, r, request, 'server')
})

test('a head not complete in the sniffed bytes goes through the HTTP server', T, async (t) => {
  const p = await pair(t)
  for (const port of [p.fast, p.slow]) {
    const server = port === p.fast ? p.servers[0] : p.servers[1]
    const socket = await connect(t, port)
    const all = readAll(socket)
    // The request line alone decides; the rest comes once the decision is made.
    const decided = once(server, 'decision')
    socket.write('GET /split?x HTTP/1.1\r\n')
    await decided
    socket.write('Host: split.test\r\n\r\n')
    const raw = (await all).toString('latin1')
    assert.match(raw, /^HTTP\/1\.1 301 Moved Permanently\r\nlocation: https:\/\/split\.test\/split\?x\r\n/)
  }
  assert.equal(fastCount(p.fast), 0)
})

test('http: "reject": the same 400 both ways', T, async (t) => {
  const p = await pair(t, { http: 'reject' })
  for (const [request, path] of RULES) await same(t, p, request, path)
  const head = await same(t, p, 'HEAD / HTTP/1.1\r\nHost: h\r\n\r\n', 'fast')
  assert.match(head, /^HTTP\/1\.1 400 Bad Request\r\n[^]*\r\n\r\n$/)
})

test('httpPort: redirects to the main port, both ways', T, async (t) => {
  const pems = await testCertificate()
  const ports: Array<{ main: number, http: number }> = []
  for (const off of [false, true]) {
    const server = createServer(() => {}, { tls: pems, httpPort: 0 })
    if (off) (server as unknown as { http: HttpServers }).http.fastPlaintext = false
    const main = await listen(t, server)
    ports.push({ main, http: server.httpAddress?.port ?? 0 })
  }
  const [a, b] = ports
  const before = fastCount(a.http)
  const ra = await exchange(t, a.http, get('/x?y', ['Host: example.test:80']))
  const rb = await exchange(t, b.http, get('/x?y', ['Host: example.test:80']))
  assert.equal(fastCount(a.http), before + 1)
  assert.match(ra, new RegExp(`\r\nlocation: https://example\\.test:${a.main}/x\\?y\r\n`))
  assert.equal(normalise(ra).replaceAll(String(a.main), 'MAIN'), normalise(rb).replaceAll(String(b.main), 'MAIN'))
})

test('fast-path connections are counted, close, and do not hold up close()', T, async (t) => {
  const pems = await testCertificate()
  const server = createServer(() => {}, { tls: pems })
  const port = await listen(t, server)
  const before = fastCount(port)
  for (let i = 0; i < 3; i++) await exchange(t, port, get('/', ['Host: h']))
  assert.equal(fastCount(port), before + 3)
  const stats = server.stats()
  assert.equal(stats.decided.redirect, 3)
  assert.equal(stats.open.redirect, 0)
  // One more, and close() right after it was answered: the callback comes.
  const socket = await connect(t, port)
  const all = readAll(socket)
  socket.write(get('/', ['Host: h']))
  socket.once('data', () => { server.close() })
  assert.match((await all).toString('latin1'), /^HTTP\/1\.1 301 /)
  if (server.listening) await once(server, 'close')
  assert.equal(server.stats().open.redirect, 0)
})

// ---------------------------------------------------------------------------------------------
// Generated requests

const FAST_METHODS = METHODS.filter((m) => m !== 'CONNECT' && m !== 'PRI')
const method = fc.oneof(fc.constantFrom('GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'), fc.constantFrom(...FAST_METHODS))
const port = fc.option(fc.constantFrom(1, 80, 443, 8080, 8443, 65535), { nil: undefined })
const hostName = fc.oneof(
  fc.domain().filter((d) => d.length <= 253),
  fc.ipV4(),
  fc.ipV6().map((ip) => `[${ip}]`),
  fc.constantFrom('localhost', 'LocalHost', 'example.com.', '[::1]', '[2001:DB8::A]')
)
const authority = fc.tuple(hostName, port).map(([h, p]) => p === undefined ? h : `${h}:${p}`)
const badAuthority = fc.constantFrom('user@h', 'h:0', 'h:65536', 'h:x', '::1', '[fe80::1%25eth0]', 'h/p', '')
const pathChar = fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c))
const path = fc.oneof(fc.webPath().map((p) => '/' + p.replace(/^\//, '')), fc.array(pathChar, { maxLength: 40 }).map((a) => '/' + a.join('')))
const target = fc.oneof(
  { weight: 4, arbitrary: path },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom('http://', 'https://', 'HTTP://'), fc.oneof(authority, badAuthority), fc.oneof(path, fc.constant(''), fc.constant('?q=1'))).map(([s, a, p]) => s + a + p) }
)
const nameCase = (name: string): fc.Arbitrary<string> => fc.constantFrom(name, name.toLowerCase(), name.toUpperCase())
const ows = fc.constantFrom('', ' ', '\t', '  ')
/** A field line, and whether whitespace follows its value (the fast path leaves those to the server). */
const line = (name: string, value: fc.Arbitrary<string>): fc.Arbitrary<[string, boolean]> =>
  fc.tuple(nameCase(name), ows, value, fc.oneof({ weight: 4, arbitrary: fc.constant('') }, { weight: 1, arbitrary: ows }))
    .map(([n, a, v, b]) => [`${n}:${a}${v}${b}`, v !== '' && b !== ''])
const extra = fc.oneof(
  line('User-Agent', fc.constantFrom('curl/8.5.0', 'Mozilla/5.0 (X11; Linux x86_64)', 'wrk')),
  line('Accept', fc.constantFrom('*/*', 'text/html,application/xhtml+xml;q=0.9')),
  line('Connection', fc.constantFrom('close', 'keep-alive', 'Upgrade')),
  line('X-Forwarded-Host', fc.oneof(authority, badAuthority, fc.constant('a.test, b.test'))),
  line('Content-Length', fc.constant('0')),
  line('X-Custom', fc.constantFrom('', 'a b', 'caf\xe9', '"quoted"'))
)
const request = fc.record({
  method,
  target,
  version: fc.constantFrom('1.1', '1.1', '1.0'),
  host: fc.option(line('Host', fc.oneof({ weight: 5, arbitrary: authority }, { weight: 1, arbitrary: badAuthority })), { nil: undefined }),
  websocket: fc.boolean(),
  extras: fc.uniqueArray(extra, { maxLength: 4, selector: ([l]) => l.slice(0, l.indexOf(':')).toLowerCase() }),
  at: fc.nat()
}).map((r) => {
  const lines = [...r.extras]
  if (r.websocket) lines.push(['Upgrade: websocket', false], ['Sec-WebSocket-Version: 13', false])
  if (r.host !== undefined) lines.splice(r.at % (lines.length + 1), 0, r.host)
  return {
    text: `${r.method} ${r.target} HTTP/${r.version}\r\n${lines.map(([l]) => l + '\r\n').join('')}\r\n`,
    needsServer: (r.host === undefined && r.version === '1.1') || lines.some(([, padded]) => padded)
  }
})

test('property: generated valid heads are answered from the sniffed bytes, with the bytes the HTTP server writes', T, async (t) => {
  const pairs = [await pair(t), await pair(t, { http: { redirect: { trustForwardedHost: true, status: 303 } } }), await pair(t, { http: 'reject' })]
  await fc.assert(fc.asyncProperty(request, fc.nat({ max: pairs.length - 1 }), async (r, which) => {
    await same(t, pairs[which], r.text, r.needsServer ? 'server' : 'fast')
  }), { numRuns: 150 })
})
