/**
 * The redirect / reject side: plaintext HTTP sent as raw bytes to a real TLS port, so that
 * every byte of the request is under the test's control. (The Host and request-target
 * parsers it relies on are tested in test/sniff/http-target.test.ts.)
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import http2 from 'node:http2'
import { once } from 'node:events'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { createServer } from '../../src/node.js'
import type { MuxOptions } from '../../src/types.js'
import { closed, connect, exchange, listen, readAll, testCertificate } from '../helpers.js'

const T = { timeout: 10_000 }

// ---------------------------------------------------------------------------------------------
// Raw HTTP/1 plumbing

interface RawResponse {
  raw: string
  statusLine: string
  status: number
  /** Lower-cased names; repeated headers joined with ', '. */
  headers: Record<string, string>
  /** Every header line as sent, for counting repeats. */
  headerLines: string[]
  body: string
}

function parseResponse (raw: string): RawResponse {
  const end = raw.indexOf('\r\n\r\n')
  assert.ok(end !== -1, `no complete response head in ${JSON.stringify(raw)}`)
  const [statusLine, ...headerLines] = raw.slice(0, end).split('\r\n')
  const m = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(statusLine)
  assert.ok(m !== null, `bad status line ${JSON.stringify(statusLine)}`)
  const headers: Record<string, string> = {}
  for (const line of headerLines) {
    const colon = line.indexOf(':')
    const name = line.slice(0, colon).trim().toLowerCase()
    const value = line.slice(colon + 1).trim()
    headers[name] = headers[name] === undefined ? value : headers[name] + ', ' + value
  }
  return { raw, statusLine, status: Number(m[1]), headers, headerLines, body: raw.slice(end + 4) }
}

/** Count the complete responses in `raw` (status lines at the start of a message). */
function statusLines (raw: string): string[] {
  return raw.match(/(?:^|\r\n)HTTP\/1\.[01] \d{3}[^\r\n]*/g) ?? []
}

/** Send `request` (raw bytes) and read everything until the server closes the connection. */
async function send (t: TestContext, port: number, request: string): Promise<RawResponse> {
  return parseResponse(await exchange(t, port, request))
}

function get (path: string, headers: string[]): string {
  return `GET ${path} HTTP/1.1\r\n${headers.map((h) => h + '\r\n').join('')}\r\n`
}

let handled = 0
function appHandler (_req: IncomingMessage, res: ServerResponse): void {
  handled++
  res.end('app')
}

async function mux (t: TestContext, options: Omit<MuxOptions, 'tls'> = {}): Promise<number> {
  const pems = await testCertificate()
  const server = createServer(appHandler, { tls: pems, ...options })
  return await listen(t, server)
}

/** A complete, correctly framed redirect: Connection: close, the server closed, nothing else sent. */
function assertRedirect (r: RawResponse, status: number, location: string): void {
  assert.equal(r.status, status, r.raw)
  assert.equal(r.headers.location, location, r.raw)
  assert.equal(r.headers.connection, 'close', r.raw)
  assert.equal(statusLines(r.raw).length, 1, `exactly one response: ${r.raw}`)
  assert.equal(Buffer.byteLength(r.body, 'latin1'), Number(r.headers['content-length']), r.raw)
}

// ---------------------------------------------------------------------------------------------
// End to end: plaintext HTTP on a TLS port, redirect mode (the default)

test('GET → 301 to https on the host and port of the Host header, path and query unchanged', T, async (t) => {
  const port = await mux(t)
  const r = await send(t, port, get('/a?b=1', [`Host: 127.0.0.1:${port}`]))
  assertRedirect(r, 301, `https://127.0.0.1:${port}/a?b=1`)
  assert.match(r.body, /https:\/\/127\.0\.0\.1/)

  const named = await send(t, port, get('/a?b=1', [`Host: LocalHost:${port}`]))
  assertRedirect(named, 301, `https://localhost:${port}/a?b=1`)

  // The port is the one in Host (the client's view), not the one the server listens on.
  const other = await send(t, port, get('/p/q?x=%2F&y=a%20b', ['Host: example.test:9999']))
  assertRedirect(other, 301, 'https://example.test:9999/p/q?x=%2F&y=a%20b')

  // No port in Host: the client thinks it is on 80; the redirect goes to 443.
  const noPort = await send(t, port, get('/', ['Host: example.test']))
  assertRedirect(noPort, 301, 'https://example.test/')
})

test('the default mode is redirect, and the app never sees plaintext requests', T, async (t) => {
  const before = handled
  const port = await mux(t)
  const r = await send(t, port, get('/x', [`Host: 127.0.0.1:${port}`]))
  assertRedirect(r, 301, `https://127.0.0.1:${port}/x`)
  const explicit = await mux(t, { http: 'redirect' })
  assertRedirect(await send(t, explicit, get('/x', ['Host: h'])), 301, 'https://h/x')
  assert.equal(handled, before)
})

test('HEAD → 301 with no body', T, async (t) => {
  const port = await mux(t)
  const r = await send(t, port, `HEAD /a?b=1 HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`)
  assert.equal(r.status, 301)
  assert.equal(r.headers.location, `https://127.0.0.1:${port}/a?b=1`)
  assert.equal(r.headers.connection, 'close')
  assert.equal(r.body, '')
})

test('HEAD → the Content-Length, if sent, is the one GET would get (RFC 9110 §8.6)', T, async (t) => {
  const port = await mux(t)
  const g = await send(t, port, `GET /a?b=1 HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`)
  const h = await send(t, port, `HEAD /a?b=1 HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`)
  assert.equal(h.body, '')
  if (h.headers['content-length'] !== undefined) assert.equal(h.headers['content-length'], g.headers['content-length'], h.raw)
})

test('POST with a body → 308; PUT → 308; DELETE, PATCH, OPTIONS → 308', T, async (t) => {
  const port = await mux(t)
  const post = await send(t, port, `POST /submit?x=1 HTTP/1.1\r\nHost: localhost:${port}\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nhello world`)
  assertRedirect(post, 308, `https://localhost:${port}/submit?x=1`)

  const chunked = await send(t, port, `POST /c HTTP/1.1\r\nHost: localhost:${port}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`)
  assertRedirect(chunked, 308, `https://localhost:${port}/c`)

  const put = await send(t, port, `PUT /r HTTP/1.1\r\nHost: localhost:${port}\r\nContent-Length: 3\r\n\r\nabc`)
  assertRedirect(put, 308, `https://localhost:${port}/r`)

  for (const method of ['DELETE', 'PATCH', 'OPTIONS']) {
    const r = await send(t, port, `${method} /m HTTP/1.1\r\nHost: localhost:${port}\r\nContent-Length: 0\r\n\r\n`)
    assertRedirect(r, 308, `https://localhost:${port}/m`)
  }
})

test('a large POST body still gets its complete 308', T, async (t) => {
  const port = await mux(t)
  const body = 'x'.repeat(256 * 1024)
  const r = await send(t, port, `POST /big HTTP/1.1\r\nHost: localhost:${port}\r\nContent-Length: ${body.length}\r\n\r\n${body}`)
  assertRedirect(r, 308, `https://localhost:${port}/big`)
})

test('{ redirect: { status: 302 } } overrides the status for every method', T, async (t) => {
  const port = await mux(t, { http: { redirect: { status: 302 } } })
  assertRedirect(await send(t, port, get('/g', [`Host: h:${port}`])), 302, `https://h:${port}/g`)
  assertRedirect(await send(t, port, `POST /p HTTP/1.1\r\nHost: h:${port}\r\nContent-Length: 2\r\n\r\nhi`), 302, `https://h:${port}/p`)
  const p307 = await mux(t, { http: { redirect: { status: 307 } } })
  assertRedirect(await send(t, p307, get('/g', ['Host: h'])), 307, 'https://h/g')
})

test('{ redirect: { host } }: no other host is ever used', T, async (t) => {
  const port = await mux(t, { http: { redirect: { host: 'example.com', trustForwardedHost: true } } })
  const requests = [
    get('/a?b=1', [`Host: 127.0.0.1:${port}`]),
    get('/a?b=1', ['Host: evil.test']),
    get('/a?b=1', ['Host: evil.test:8443']),
    get('/a?b=1', ['Host: [::1]:8443']),
    get('/a?b=1', ['Host: evil.test', 'X-Forwarded-Host: evil2.test']),
    get('/a?b=1', ['Host: evil.test', 'Host: evil2.test']),
    get('http://evil.test:8080/a?b=1', ['Host: evil2.test']),
    get('/a?b=1', ['Host: user@evil.test']),
    get('/a?b=1', ['Host: evil.test:99999']),
    get('/a?b=1', []),
    get('/a?b=1', ['Host: evil.test', 'Upgrade: websocket', 'Connection: Upgrade']),
    `GET /a?b=1 HTTP/1.0\r\nHost: evil.test\r\n\r\n`,
    `POST /a?b=1 HTTP/1.1\r\nHost: evil.test\r\nContent-Length: 0\r\n\r\n`
  ]
  for (const request of requests) {
    const r = await send(t, port, request)
    assert.equal(r.headers.connection, 'close', r.raw)
    if (r.status === 400) {
      assert.equal(r.headers.location, undefined, r.raw)
      continue
    }
    assert.ok([301, 308].includes(r.status), r.raw)
    const location = new URL(r.headers.location)
    assert.equal(location.hostname, 'example.com', `${JSON.stringify(request)} → ${r.headers.location}`)
    assert.doesNotMatch(r.raw, /evil/, 'the client-sent host appears nowhere in the response')
  }
  // The common case, fully: the configured host, the client's port.
  assertRedirect(await send(t, port, get('/a?b=1', ['Host: evil.test:8443'])), 301, 'https://example.com:8443/a?b=1')
  assertRedirect(await send(t, port, get('/a?b=1', ['Host: evil.test'])), 301, 'https://example.com/a?b=1')
})

test('{ redirect: { host: "name:port" } } fixes both', T, async (t) => {
  const port = await mux(t, { http: { redirect: { host: 'secure.example:8443' } } })
  assertRedirect(await send(t, port, get('/x', [`Host: 127.0.0.1:${port}`])), 301, 'https://secure.example:8443/x')
  assertRedirect(await send(t, port, get('/x', ['Host: other:1234'])), 301, 'https://secure.example:8443/x')
})

test('{ redirect: { port } }: the configured port, and 443 is left out', T, async (t) => {
  const p443 = await mux(t, { http: { redirect: { port: 443 } } })
  assertRedirect(await send(t, p443, get('/a?b=1', [`Host: 127.0.0.1:${p443}`])), 301, 'https://127.0.0.1/a?b=1')
  assertRedirect(await send(t, p443, get('/a?b=1', ['Host: [::1]:8080'])), 301, 'https://[::1]/a?b=1')
  const p8443 = await mux(t, { http: { redirect: { port: 8443 } } })
  assertRedirect(await send(t, p8443, get('/', [`Host: localhost:${p8443}`])), 301, 'https://localhost:8443/')
  assertRedirect(await send(t, p8443, get('/', ['Host: localhost'])), 301, 'https://localhost:8443/')
})

test('Host with port 443 → no port in the Location', T, async (t) => {
  const port = await mux(t)
  assertRedirect(await send(t, port, get('/s', ['Host: example.test:443'])), 301, 'https://example.test/s')
  assertRedirect(await send(t, port, get('/s', ['Host: [2001:db8::1]:443'])), 301, 'https://[2001:db8::1]/s')
})

test('missing Host on HTTP/1.1 → 400 and close', T, async (t) => {
  const port = await mux(t)
  const r = await send(t, port, 'GET /a HTTP/1.1\r\n\r\n')
  assert.equal(r.status, 400, r.raw)
  assert.equal(r.headers.location, undefined)
  assert.equal(r.headers.connection, 'close')
  assert.equal(statusLines(r.raw).length, 1)
})

test('HTTP/1.0 without Host → 400 and close; with Host → 301', T, async (t) => {
  const port = await mux(t)
  const r = await send(t, port, 'GET /a HTTP/1.0\r\n\r\n')
  assert.equal(r.status, 400, r.raw)
  assert.equal(r.headers.location, undefined)
  assert.equal(r.headers.connection, 'close')
  const ok = await send(t, port, `GET /a HTTP/1.0\r\nHost: localhost:${port}\r\n\r\n`)
  assert.equal(ok.status, 301, ok.raw)
  assert.equal(ok.headers.location, `https://localhost:${port}/a`)
})

test('a malformed Host → 400 and close, never a Location', T, async (t) => {
  const port = await mux(t)
  const hosts = [
    'user@localhost',
    `user:pw@localhost:${port}`,
    'localhost:0',
    'localhost:65536',
    'localhost:+1',
    'localhost:08a',
    'local host',
    'localhost:80 80',
    '::1',
    `::1:${port}`,
    '[fe80::1%25eth0]',
    'ex%61mple.com',
    '[::1]junk',
    'evil.test/path',
    'evil.test?x',
    'a'.repeat(300),
    ''
  ]
  for (const host of hosts) {
    const r = await send(t, port, get('/a', [`Host: ${host}`]))
    assert.equal(r.status, 400, `Host: ${JSON.stringify(host)} → ${r.raw}`)
    assert.equal(r.headers.location, undefined, r.raw)
    assert.equal(r.headers.connection, 'close', r.raw)
  }
})

test('two different Host headers → 400 (never a redirect to either)', T, async (t) => {
  const port = await mux(t)
  const r = await send(t, port, get('/a', ['Host: one.test', 'Host: two.test']))
  assert.equal(r.status, 400, r.raw)
  assert.equal(r.headers.location, undefined, r.raw)
})

test('IPv6 literal Host [::1]:PORT → https://[::1]:PORT/', T, async (t) => {
  const port = await mux(t)
  assertRedirect(await send(t, port, get('/', [`Host: [::1]:${port}`])), 301, `https://[::1]:${port}/`)
  assertRedirect(await send(t, port, get('/v6?q', ['Host: [2001:DB8::1]'])), 301, 'https://[2001:db8::1]/v6?q')
})

test('absolute-form request target: its authority wins over Host', T, async (t) => {
  const port = await mux(t)
  assertRedirect(await send(t, port, get('http://other.test:8080/x?y', [`Host: 127.0.0.1:${port}`])), 301, 'https://other.test:8080/x?y')
  assertRedirect(await send(t, port, get('http://other.test', ['Host: other.test'])), 301, 'https://other.test/')
  const bad = await send(t, port, get('http://user@evil.test/x', ['Host: fine.test']))
  assert.equal(bad.status, 400, bad.raw)
  assert.equal(bad.headers.location, undefined)
})

test('odd targets: raw UTF-8 gets Node\'s 400, asterisk- and authority-form get 400', T, async (t) => {
  const port = await mux(t)
  // Node's parser refuses raw non-ASCII in the target (clientError → 400); the server keeps going.
  const request = Buffer.concat([Buffer.from('GET /caf', 'latin1'), Buffer.from([0xc3, 0xa9]), Buffer.from('?q=%C3%A9 HTTP/1.1\r\nHost: example.org\r\n\r\n', 'latin1')])
  const r = parseResponse(await exchange(t, port, request))
  assert.equal(r.status, 400, r.raw)
  assert.equal(r.headers.location, undefined)
  assertRedirect(await send(t, port, get('/caf%C3%A9?q=%C3%A9', ['Host: example.org'])), 301, 'https://example.org/caf%C3%A9?q=%C3%A9')
  const asterisk = await send(t, port, 'OPTIONS * HTTP/1.1\r\nHost: example.org\r\n\r\n')
  assert.equal(asterisk.status, 400, asterisk.raw)
  assert.equal(asterisk.headers.location, undefined, asterisk.raw)
  // CONNECT (authority-form): Node closes it when nobody listens for 'connect'; a 400 would do too.
  // Either way it is neither redirected nor served.
  const connect = await exchange(t, port, 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n')
  if (connect !== '') assert.equal(parseResponse(connect).status, 400, connect)
})

test('Upgrade: websocket GET → wss:// Location', T, async (t) => {
  const port = await mux(t)
  const r = await send(t, port, get('/socket?room=1', [
    `Host: 127.0.0.1:${port}`,
    'Upgrade: websocket',
    'Connection: Upgrade',
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
    'Sec-WebSocket-Version: 13'
  ]))
  assertRedirect(r, 301, `wss://127.0.0.1:${port}/socket?room=1`)
  // Plain requests on the same server still go to https://.
  assertRedirect(await send(t, port, get('/socket', [`Host: 127.0.0.1:${port}`])), 301, `https://127.0.0.1:${port}/socket`)
})

test('X-Forwarded-Host is ignored by default', T, async (t) => {
  const port = await mux(t)
  const r = await send(t, port, get('/a', [`Host: 127.0.0.1:${port}`, 'X-Forwarded-Host: evil.test']))
  assertRedirect(r, 301, `https://127.0.0.1:${port}/a`)
  assert.doesNotMatch(r.raw, /evil/)
})

test('X-Forwarded-Host is honoured with trustForwardedHost: true', T, async (t) => {
  const port = await mux(t, { http: { redirect: { trustForwardedHost: true } } })
  assertRedirect(await send(t, port, get('/a?b=1', [`Host: 127.0.0.1:${port}`, 'X-Forwarded-Host: public.example'])), 301, 'https://public.example/a?b=1')
  assertRedirect(await send(t, port, get('/a', ['Host: internal', 'X-Forwarded-Host: public.example:8443, proxy.internal'])), 301, 'https://public.example:8443/a')
  // Without the header, the Host is used.
  assertRedirect(await send(t, port, get('/a', ['Host: internal:81'])), 301, 'https://internal:81/a')
  // A malformed forwarded host is refused, not replaced by Host.
  const bad = await send(t, port, get('/a', ['Host: internal', 'X-Forwarded-Host: user@evil.test']))
  assert.equal(bad.status, 400, bad.raw)
})

test('every redirect closes the connection, even when the client asks for keep-alive', T, async (t) => {
  const port = await mux(t)
  const socket = await connect(t, port)
  const all = readAll(socket)
  // Two pipelined requests: only the first is answered, then the server closes.
  socket.write(get('/one', ['Host: h', 'Connection: keep-alive']) + get('/two', ['Host: h', 'Connection: keep-alive']))
  const raw = (await all).toString('latin1')
  const lines = statusLines(raw)
  assert.equal(lines.length, 1, raw)
  const r = parseResponse(raw)
  assertRedirect(r, 301, 'https://h/one')
})

test('the server closes the socket after a redirect without the client ending its side', T, async (t) => {
  const port = await mux(t)
  const socket = await connect(t, port)
  const chunks: Buffer[] = []
  socket.on('data', (c: Buffer) => chunks.push(c))
  const ended = once(socket, 'end')
  socket.write(get('/', ['Host: h']))
  await ended // the server's FIN; the client has not ended its side
  assertRedirect(parseResponse(Buffer.concat(chunks).toString('latin1')), 301, 'https://h/')
  await closed(socket)
})

test('Expect: 100-continue POST gets the 308 directly, without 100 Continue', T, async (t) => {
  const port = await mux(t)
  const socket = await connect(t, port)
  const all = readAll(socket)
  // The body is never sent: the answer must come without it.
  socket.write(`POST /upload HTTP/1.1\r\nHost: localhost:${port}\r\nContent-Length: 1000000\r\nExpect: 100-continue\r\n\r\n`)
  const raw = (await all).toString('latin1')
  assert.doesNotMatch(raw, /^HTTP\/1\.1 100/)
  assert.doesNotMatch(raw, /100 Continue/i)
  assertRedirect(parseResponse(raw), 308, `https://localhost:${port}/upload`)
})

test('http: "reject" → 400 and close, no Location', T, async (t) => {
  const before = handled
  const port = await mux(t, { http: 'reject' })
  for (const request of [get('/a?b=1', [`Host: 127.0.0.1:${port}`]), 'POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc', 'GET / HTTP/1.0\r\n\r\n']) {
    const r = await send(t, port, request)
    assert.equal(r.status, 400, r.raw)
    assert.equal(r.headers.location, undefined)
    assert.equal(r.headers.connection, 'close')
    assert.equal(statusLines(r.raw).length, 1)
    assert.equal(Buffer.byteLength(r.body, 'latin1'), Number(r.headers['content-length']))
  }
  const head = await send(t, port, 'HEAD / HTTP/1.1\r\nHost: h\r\n\r\n')
  assert.equal(head.status, 400)
  assert.equal(head.body, '')
  assert.equal(handled, before)
})

// ---------------------------------------------------------------------------------------------
// h2c prior knowledge on a TLS port

async function h2cGet (t: TestContext, port: number, path: string, authority?: string): Promise<{ headers: http2.IncomingHttpHeaders, body: string, sessionClosed: Promise<void> }> {
  const session = http2.connect(`http://127.0.0.1:${port}`)
  t.after(() => { session.destroy() })
  session.on('error', () => {})
  const sessionClosed = new Promise<void>((resolve) => session.once('close', () => resolve()))
  const req = session.request({ ':path': path, ...(authority === undefined ? {} : { ':authority': authority }) })
  req.setEncoding('utf8')
  let body = ''
  req.on('data', (c: string) => { body += c })
  const [headers] = await once(req, 'response') as [http2.IncomingHttpHeaders]
  await once(req, 'end')
  return { headers, body, sessionClosed }
}

test('h2c prior knowledge on a TLS port (redirect mode) → :status 301 with the https Location', T, async (t) => {
  const before = handled
  const port = await mux(t)
  const r = await h2cGet(t, port, '/a?b=1')
  assert.equal(r.headers[':status'], 301)
  assert.equal(r.headers.location, `https://127.0.0.1:${port}/a?b=1`)
  // The session ends after the redirect.
  await r.sessionClosed
  const other = await h2cGet(t, port, '/x', 'example.test:8443')
  assert.equal(other.headers[':status'], 301)
  assert.equal(other.headers.location, 'https://example.test:8443/x')
  assert.equal(handled, before)
})

test('h2c prior knowledge: a POST gets 308, a malformed :authority gets 400', T, async (t) => {
  const port = await mux(t)
  const session = http2.connect(`http://127.0.0.1:${port}`)
  t.after(() => { session.destroy() })
  session.on('error', () => {})
  const req = session.request({ ':method': 'POST', ':path': '/form' })
  req.end('payload')
  req.resume()
  const [headers] = await once(req, 'response') as [http2.IncomingHttpHeaders]
  assert.equal(headers[':status'], 308)
  assert.equal(headers.location, `https://127.0.0.1:${port}/form`)

  // Userinfo in :authority: a 400 from portmux, or (newer nghttp2, Node ≥ 22) the stream
  // refused by the HTTP/2 layer before any handler runs. Never a redirect.
  try {
    const bad = await h2cGet(t, port, '/x', 'user@evil.test')
    assert.equal(bad.headers[':status'], 400)
    assert.equal(bad.headers.location, undefined)
  } catch (err) {
    assert.match(String(err), /NGHTTP2_PROTOCOL_ERROR/)
  }
})

test('h2c prior knowledge: Expect: 100-continue gets the 308 directly, without 100 (as HTTP/1.1 does)', T, async (t) => {
  const port = await mux(t)
  const session = http2.connect(`http://127.0.0.1:${port}`)
  t.after(() => { session.destroy() })
  session.on('error', () => {})
  // The body is never sent: the answer must come without it, and without a 100 first.
  const req = session.request({ ':method': 'POST', ':path': '/upload', expect: '100-continue', 'content-length': '1000000' })
  req.on('error', () => {})
  let continued = false
  req.on('continue', () => { continued = true })
  const [headers] = await once(req, 'response') as [http2.IncomingHttpHeaders]
  assert.equal(headers[':status'], 308)
  assert.equal(headers.location, `https://127.0.0.1:${port}/upload`)
  assert.equal(continued, false, 'a 100 Continue was sent before the redirect')
})

test('h2c prior knowledge with http: "reject" → :status 400', T, async (t) => {
  const port = await mux(t, { http: 'reject' })
  const r = await h2cGet(t, port, '/')
  assert.equal(r.headers[':status'], 400)
  assert.equal(r.headers.location, undefined)
})

// ---------------------------------------------------------------------------------------------
// http: 'serve'

test('http: "serve" → the handler runs for plaintext and sees an unencrypted socket', T, async (t) => {
  const seen: Array<{ encrypted: unknown, url: string | undefined, version: string }> = []
  const pems = await testCertificate()
  const server = createServer((req, res) => {
    seen.push({ encrypted: (req.socket as { encrypted?: unknown }).encrypted, url: req.url, version: req.httpVersion })
    res.end(`served ${req.url}`)
  }, { tls: pems, http: 'serve' })
  const port = await listen(t, server)

  const r = await send(t, port, `GET /a?b=1 HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`)
  assert.equal(r.status, 200, r.raw)
  assert.equal(r.headers.location, undefined)
  assert.match(r.body, /served \/a\?b=1/)
  assert.equal(seen.length, 1)
  assert.ok(!seen[0].encrypted, 'plaintext requests are not encrypted')
  assert.equal(seen[0].version, '1.1')

  // h2c prior knowledge is served too.
  const h2 = await h2cGet(t, port, '/h2c')
  assert.equal(h2.headers[':status'], 200)
  assert.equal(h2.body, 'served /h2c')
  assert.equal(seen.length, 2)
  assert.ok(!seen[1].encrypted)
  assert.equal(seen[1].version, '2.0')
})
