/**
 * The served side over real sockets: undici (HTTP/1.1 and HTTP/2 by ALPN), node:http2,
 * node:tls with and without ALPN, a ClientHello dribbled one byte at a time, h2c prior
 * knowledge, garbage, the inner servers' timeouts, closeIdleConnections and stats().
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import http2, { type IncomingHttpHeaders } from 'node:http2'
import net from 'node:net'
import tls from 'node:tls'
import { once } from 'node:events'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { Agent, Client, request } from 'undici'
import { createServer } from '../../src/node.js'
import type { MuxServer } from '../../src/server.js'
import type { MuxOptions } from '../../src/types.js'
import { closed, connect, exchange, listen, readAll, testCertificate, until } from '../helpers.js'

const T = { timeout: 10_000 }

// ---------------------------------------------------------------------------------------------
// Plumbing

interface Seen {
  httpVersion: string
  encrypted: boolean
  alpn: string | false | undefined
  url: string | undefined
  method: string | undefined
}

/** A handler that records what it saw and answers with a small JSON body. */
function recorder (): { seen: Seen[], handler: (req: IncomingMessage, res: ServerResponse) => void } {
  const seen: Seen[] = []
  return {
    seen,
    handler (req, res) {
      const socket = req.socket as net.Socket & { encrypted?: boolean, alpnProtocol?: string | false }
      const s: Seen = { httpVersion: req.httpVersion, encrypted: socket.encrypted === true, alpn: socket.alpnProtocol, url: req.url, method: req.method }
      seen.push(s)
      req.resume()
      req.on('end', () => {
        res.setHeader('content-type', 'application/json')
        res.end(JSON.stringify(s))
      })
    }
  }
}

async function muxWith (t: TestContext, handler: (req: IncomingMessage, res: ServerResponse) => void, options: MuxOptions): Promise<{ server: MuxServer, port: number }> {
  const server = createServer(handler, options)
  const port = await listen(t, server)
  return { server, port }
}

async function tlsMux (t: TestContext, options: Omit<MuxOptions, 'tls'> = {}): Promise<{ server: MuxServer, port: number, seen: Seen[] }> {
  const pems = await testCertificate()
  const r = recorder()
  const { server, port } = await muxWith(t, r.handler, { tls: pems, ...options })
  return { server, port, seen: r.seen }
}

async function plainMux (t: TestContext, options: MuxOptions = {}): Promise<{ server: MuxServer, port: number, seen: Seen[] }> {
  const r = recorder()
  const { server, port } = await muxWith(t, r.handler, options)
  return { server, port, seen: r.seen }
}

/** A TLS client (certificate not checked), destroyed after the test. */
async function tlsConnect (t: TestContext, port: number, ALPNProtocols?: string[]): Promise<tls.TLSSocket> {
  const socket = tls.connect({ port, host: '127.0.0.1', servername: 'localhost', rejectUnauthorized: false, ...(ALPNProtocols === undefined ? {} : { ALPNProtocols }) })
  t.after(() => { socket.destroy() })
  await once(socket, 'secureConnect')
  return socket
}

interface RawResponse { status: number, headers: Record<string, string>, body: string, raw: string }

function parseHead (head: string): { status: number, headers: Record<string, string> } {
  const [statusLine, ...lines] = head.split('\r\n')
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine)
  assert.ok(m !== null, `bad status line ${JSON.stringify(statusLine)}`)
  const headers: Record<string, string> = {}
  for (const line of lines) {
    const colon = line.indexOf(':')
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
  }
  return { status: Number(m[1]), headers }
}

/**
 * Read exactly one HTTP/1.1 response (Content-Length or chunked) from a socket that stays open.
 * Rejects if the socket closes first.
 */
function readResponse (socket: net.Socket): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    let buf = ''
    const done = (): boolean => {
      const end = buf.indexOf('\r\n\r\n')
      if (end === -1) return false
      const { status, headers } = parseHead(buf.slice(0, end))
      const rest = buf.slice(end + 4)
      let body: string
      if (headers['content-length'] !== undefined) {
        const n = Number(headers['content-length'])
        if (Buffer.byteLength(rest, 'latin1') < n) return false
        body = rest.slice(0, n)
      } else if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
        const last = rest.indexOf('0\r\n\r\n')
        if (last === -1) return false
        body = rest.slice(0, last)
      } else {
        return false
      }
      cleanup()
      resolve({ status, headers, body, raw: buf })
      return true
    }
    const onData = (c: Buffer): void => { buf += c.toString('latin1'); done() }
    const onClose = (): void => { cleanup(); reject(new Error(`closed before a complete response: ${JSON.stringify(buf)}`)) }
    const cleanup = (): void => { socket.off('data', onData); socket.off('close', onClose) }
    socket.on('data', onData)
    socket.on('close', onClose)
  })
}

/** GET / over node:http2 (TLS or h2c). */
async function h2Get (t: TestContext, authority: string, path = '/', options: http2.SecureClientSessionOptions = {}): Promise<{ headers: IncomingHttpHeaders, body: string, session: http2.ClientHttp2Session }> {
  const session = http2.connect(authority, options)
  t.after(() => { session.destroy() })
  session.on('error', () => {})
  const req = session.request({ ':path': path })
  req.setEncoding('utf8')
  let body = ''
  req.on('data', (c: string) => { body += c })
  const [headers] = await once(req, 'response') as [IncomingHttpHeaders]
  await once(req, 'end')
  return { headers, body, session }
}

// ---------------------------------------------------------------------------------------------
// HTTPS with real clients

test('undici over HTTPS, HTTP/1.1: the handler sees an encrypted HTTP/1.1 request', T, async (t) => {
  const { port, seen } = await tlsMux(t)
  const client = new Client(`https://127.0.0.1:${port}`, { connect: { rejectUnauthorized: false } })
  t.after(() => client.destroy())
  for (const path of ['/a?b=1', '/second']) {
    const res = await client.request({ path, method: 'GET' })
    assert.equal(res.statusCode, 200)
    const body = await res.body.json() as Seen
    assert.equal(body.url, path)
    assert.equal(body.httpVersion, '1.1')
    assert.equal(body.encrypted, true)
  }
  const posted = await request(`https://127.0.0.1:${port}/post`, { method: 'POST', body: 'x'.repeat(100_000), dispatcher: client })
  assert.equal(posted.statusCode, 200)
  assert.equal((await posted.body.json() as Seen).method, 'POST')
  assert.equal(seen.length, 3)
  assert.ok(seen.every((s) => s.httpVersion === '1.1' && s.encrypted))
})

test('undici Agent with allowH2 gets HTTP/2 over TLS', T, async (t) => {
  const { port, seen } = await tlsMux(t)
  const agent = new Agent({ allowH2: true, connect: { rejectUnauthorized: false } })
  t.after(() => agent.destroy())
  const res = await request(`https://127.0.0.1:${port}/h2?x=1`, { dispatcher: agent })
  assert.equal(res.statusCode, 200)
  const body = await res.body.json() as Seen
  assert.equal(body.httpVersion, '2.0')
  assert.equal(body.url, '/h2?x=1')
  assert.equal(seen[0].httpVersion, '2.0')
  assert.equal(seen[0].encrypted, true)
})

test('node:http2 over TLS', T, async (t) => {
  const { port, seen } = await tlsMux(t)
  const r = await h2Get(t, `https://127.0.0.1:${port}`, '/via-h2', { rejectUnauthorized: false, servername: 'localhost' })
  assert.equal(r.headers[':status'], 200)
  const body = JSON.parse(r.body) as Seen
  assert.equal(body.httpVersion, '2.0')
  assert.equal(body.url, '/via-h2')
  assert.equal(r.session.alpnProtocol, 'h2')
  assert.equal(seen.length, 1)
})

test('node:tls with ALPN http/1.1, and with no ALPN at all, both get HTTP/1.1', T, async (t) => {
  const { port, seen } = await tlsMux(t)
  for (const alpn of [['http/1.1'], undefined]) {
    const socket = await tlsConnect(t, port, alpn)
    assert.equal(socket.alpnProtocol, alpn === undefined ? false : 'http/1.1')
    const response = readResponse(socket)
    socket.write('GET /tls HTTP/1.1\r\nHost: localhost\r\n\r\n')
    const r = await response
    assert.match(r.raw, /^HTTP\/1\.1 200 /)
    assert.equal((JSON.parse(r.body) as Seen).httpVersion, '1.1')
    socket.destroy()
  }
  assert.equal(seen.length, 2)
  assert.ok(seen.every((s) => s.encrypted))
})

/**
 * A TCP proxy that forwards client → target one byte per write, with a turn of the event loop
 * between bytes; target → client goes through untouched. Counts the writes.
 */
async function byteProxy (t: TestContext, target: number): Promise<{ port: number, writes: () => number }> {
  let writes = 0
  const sockets = new Set<net.Socket>()
  const proxy = net.createServer((client) => {
    const upstream = net.connect(target, '127.0.0.1')
    sockets.add(client)
    sockets.add(upstream)
    const end = (): void => { client.destroy(); upstream.destroy() }
    client.on('error', end)
    upstream.on('error', end)
    client.on('close', end)
    upstream.on('close', end)
    upstream.pipe(client)
    client.on('data', (chunk: Buffer) => {
      client.pause()
      void (async () => {
        for (const byte of chunk) {
          if (upstream.destroyed) return
          upstream.write(Buffer.from([byte]))
          writes++
          await new Promise((resolve) => setImmediate(resolve))
        }
        client.resume()
      })()
    })
  })
  proxy.listen(0, '127.0.0.1')
  await once(proxy, 'listening')
  t.after(async () => {
    for (const s of sockets) s.destroy()
    await new Promise<void>((resolve) => proxy.close(() => resolve()))
  })
  return { port: (proxy.address() as net.AddressInfo).port, writes: () => writes }
}

test('a ClientHello written one byte at a time still gets HTTPS (HTTP/1.1 and h2)', T, async (t) => {
  const { server, port, seen } = await tlsMux(t)
  const proxy = await byteProxy(t, port)

  const socket = await tlsConnect(t, proxy.port, ['http/1.1'])
  // A ClientHello is a few hundred bytes: that many single-byte writes went through.
  assert.ok(proxy.writes() > 200, `only ${proxy.writes()} writes`)
  const response = readResponse(socket)
  socket.write('GET /dribble HTTP/1.1\r\nHost: localhost\r\n\r\n')
  const r = await response
  assert.equal(r.status, 200)
  assert.equal((JSON.parse(r.body) as Seen).url, '/dribble')

  const h2 = await h2Get(t, `https://127.0.0.1:${proxy.port}`, '/dribble-h2', { rejectUnauthorized: false, servername: 'localhost' })
  assert.equal(h2.headers[':status'], 200)
  assert.equal((JSON.parse(h2.body) as Seen).httpVersion, '2.0')

  assert.equal(seen.length, 2)
  assert.ok(seen.every((s) => s.encrypted))
  const stats = server.stats()
  assert.equal(stats.decided.https, 2)
  assert.equal(stats.decided.redirect, 0)
  assert.equal(stats.closed['sniff-timeout'], 0)
})

test('http2: false → a client offering only h2 is refused; http/1.1 and no-ALPN clients are served', T, async (t) => {
  const { port, seen } = await tlsMux(t, { http2: false })
  const socket = tls.connect({ port, host: '127.0.0.1', servername: 'localhost', rejectUnauthorized: false, ALPNProtocols: ['h2'] })
  t.after(() => { socket.destroy() })
  const outcome = await new Promise<string>((resolve) => {
    socket.once('secureConnect', () => resolve(`connected with ALPN ${String(socket.alpnProtocol)}`))
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(`${err.code ?? ''} ${err.message}`))
  })
  assert.match(outcome, /no.application.protocol/i)

  const h1 = await tlsConnect(t, port, ['h2', 'http/1.1'])
  assert.equal(h1.alpnProtocol, 'http/1.1')
  const response = readResponse(h1)
  h1.write('GET /h1 HTTP/1.1\r\nHost: localhost\r\n\r\n')
  assert.equal((await response).status, 200)

  const none = await tlsConnect(t, port)
  const r2 = readResponse(none)
  none.write('GET /none HTTP/1.1\r\nHost: localhost\r\n\r\n')
  assert.equal((await r2).status, 200)

  // undici with allowH2 falls back to HTTP/1.1.
  const agent = new Agent({ allowH2: true, connect: { rejectUnauthorized: false } })
  t.after(() => agent.destroy())
  const res = await request(`https://127.0.0.1:${port}/undici`, { dispatcher: agent })
  assert.equal((await res.body.json() as Seen).httpVersion, '1.1')
  assert.deepEqual(seen.map((s) => s.httpVersion), ['1.1', '1.1', '1.1'])
})

test('http2: false → h2c prior knowledge is not served as HTTP/2', T, async (t) => {
  const { port, seen } = await plainMux(t, { http2: false })
  const session = http2.connect(`http://127.0.0.1:${port}`)
  t.after(() => { session.destroy() })
  const failed = await new Promise<boolean>((resolve) => {
    session.on('error', () => resolve(true))
    session.on('close', () => resolve(true))
    const req = session.request({ ':path': '/' })
    req.on('error', () => resolve(true))
    req.on('response', () => resolve(false))
  })
  assert.equal(failed, true)
  assert.equal(seen.length, 0)
})

// ---------------------------------------------------------------------------------------------
// A plaintext port (no tls)

test('a plaintext port serves HTTP/1.1 and h2c prior knowledge', T, async (t) => {
  const { server, port, seen } = await plainMux(t)
  const res = await request(`http://127.0.0.1:${port}/plain?x=1`)
  assert.equal(res.statusCode, 200)
  const body = await res.body.json() as Seen
  assert.equal(body.httpVersion, '1.1')
  assert.equal(body.encrypted, false)
  assert.equal(body.url, '/plain?x=1')

  const h2c = await h2Get(t, `http://127.0.0.1:${port}`, '/h2c')
  assert.equal(h2c.headers[':status'], 200)
  assert.equal((JSON.parse(h2c.body) as Seen).httpVersion, '2.0')

  assert.equal(seen.length, 2)
  const stats = server.stats()
  assert.equal(stats.decided.http, 2)
  assert.equal(stats.decided.https, 0)
})

test('a plaintext port does not redirect, even with a Host', T, async (t) => {
  const { port } = await plainMux(t, { http: 'redirect' })
  const raw = await exchange(t, port, `GET /x HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`)
  assert.match(raw, /^HTTP\/1\.1 200 /)
})

// ---------------------------------------------------------------------------------------------
// Garbage and clientError

const GARBAGE = [Buffer.from([0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x0d, 0x0a, 0x0d, 0x0a]), Buffer.from('HELLO\r\n\r\n', 'latin1')]

test('garbage on the port gets HTTP/1.1 400 from the inner server (plaintext port and TLS port)', T, async (t) => {
  const plain = await plainMux(t)
  const secure = await tlsMux(t)
  for (const port of [plain.port, secure.port]) {
    for (const bytes of GARBAGE) {
      const raw = await exchange(t, port, bytes)
      assert.match(raw, /^HTTP\/1\.1 400 /, `${JSON.stringify(bytes.toString('latin1'))} → ${JSON.stringify(raw)}`)
    }
  }
  assert.equal(plain.seen.length + secure.seen.length, 0)
})

test('garbage inside TLS gets HTTP/1.1 400', T, async (t) => {
  const { port } = await tlsMux(t)
  const socket = await tlsConnect(t, port, ['http/1.1'])
  const all = readAll(socket)
  socket.write('HELLO\r\n\r\n')
  assert.match((await all).toString('latin1'), /^HTTP\/1\.1 400 /)
})

test('a clientError listener on the outer server is called instead, with the whole raw packet', T, async (t) => {
  for (const tlsPort of [false, true]) {
    const { server, port } = tlsPort ? await tlsMux(t) : await plainMux(t)
    const errors: Array<Error & { code?: string, rawPacket?: Buffer }> = []
    server.on('clientError', (err: Error & { code?: string, rawPacket?: Buffer }, socket: net.Socket) => {
      errors.push(err)
      socket.end('HTTP/1.1 418 I\'m a teapot\r\nConnection: close\r\nContent-Length: 6\r\n\r\nteapot')
    })
    for (const bytes of GARBAGE) {
      const raw = await exchange(t, port, bytes)
      assert.equal(raw, 'HTTP/1.1 418 I\'m a teapot\r\nConnection: close\r\nContent-Length: 6\r\n\r\nteapot', `tls port: ${String(tlsPort)}`)
    }
    assert.equal(errors.length, GARBAGE.length)
    for (let i = 0; i < GARBAGE.length; i++) {
      assert.match(errors[i].code ?? '', /^HPE_/)
      // Nothing of what the client sent was lost to the sniffing (no one-byte peek).
      assert.ok(errors[i].rawPacket !== undefined)
      assert.equal(errors[i].rawPacket?.subarray(0, GARBAGE[i].length).toString('latin1'), GARBAGE[i].toString('latin1'))
    }
  }
})

test('a clientError listener also reaches HTTP/1.1 inside TLS', T, async (t) => {
  const { server, port } = await tlsMux(t)
  let called = 0
  server.on('clientError', (_err: Error, socket: net.Socket) => {
    called++
    socket.end('HTTP/1.1 418 I\'m a teapot\r\nConnection: close\r\nContent-Length: 0\r\n\r\n')
  })
  const socket = await tlsConnect(t, port, ['http/1.1'])
  const all = readAll(socket)
  socket.write('HELLO\r\n\r\n')
  assert.match((await all).toString('latin1'), /^HTTP\/1\.1 418 /)
  assert.equal(called, 1)
})

// ---------------------------------------------------------------------------------------------
// Events reaching the inner servers

test('server.on("request", extra) on the outer server reaches every inner server; off() removes it', T, async (t) => {
  const pems = await testCertificate()
  const r = recorder()
  const server = createServer(r.handler, { tls: pems, http: 'serve' })
  const extra: string[] = []
  const listener = (req: IncomingMessage): void => { extra.push(`${req.httpVersion} ${req.url ?? ''}`) }
  server.on('request', listener)
  const port = await listen(t, server)

  const h1 = new Client(`https://127.0.0.1:${port}`, { connect: { rejectUnauthorized: false } })
  t.after(() => h1.destroy())
  await (await h1.request({ path: '/tls-h1', method: 'GET' })).body.text()
  const agent = new Agent({ allowH2: true, connect: { rejectUnauthorized: false } })
  t.after(() => agent.destroy())
  await (await request(`https://127.0.0.1:${port}/tls-h2`, { dispatcher: agent })).body.text()
  await (await request(`http://127.0.0.1:${port}/plain-h1`)).body.text()
  await h2Get(t, `http://127.0.0.1:${port}`, '/h2c')

  assert.deepEqual(extra.sort(), ['1.1 /plain-h1', '1.1 /tls-h1', '2.0 /h2c', '2.0 /tls-h2'])
  assert.equal(r.seen.length, 4)

  server.off('request', listener)
  await (await h1.request({ path: '/after', method: 'GET' })).body.text()
  await (await request(`http://127.0.0.1:${port}/after`)).body.text()
  assert.equal(extra.length, 4)
  assert.equal(r.seen.length, 6)
})

test('server.once("request", fn) on the outer server fires once, whichever inner server got the request', T, async (t) => {
  const { server, port, seen } = await tlsMux(t, { http: 'serve' })
  const calls: string[] = []
  server.once('request', (req: IncomingMessage) => { calls.push(req.url ?? '') })
  await (await request(`http://127.0.0.1:${port}/first`)).body.text()
  const client = new Client(`https://127.0.0.1:${port}`, { connect: { rejectUnauthorized: false } })
  t.after(() => client.destroy())
  await (await client.request({ path: '/second', method: 'GET' })).body.text()
  await (await request(`http://127.0.0.1:${port}/third`)).body.text()
  assert.deepEqual(calls, ['/first'])
  assert.equal(seen.length, 3)
})

// ---------------------------------------------------------------------------------------------
// The inner servers' timeouts

for (const secure of [false, true]) {
  test(`headersTimeout is enforced on injected sockets (${secure ? 'TLS' : 'plaintext'})`, T, async (t) => {
    const { port, seen } = await tlsMux(t, { http: 'serve', headersTimeout: 300, requestTimeout: 600, connectionsCheckingInterval: 50 })
    const socket = secure ? await tlsConnect(t, port, ['http/1.1']) : await connect(t, port)
    socket.on('error', () => {})
    const all = readAll(socket)
    socket.write('GET / HTTP/1.1\r\nHost: x\r\n')
    // Never finished: the server must answer 408 or close (the test timeout catches a hang).
    const raw = (await all).toString('latin1')
    assert.ok(raw === '' || /^HTTP\/1\.1 408 /.test(raw), JSON.stringify(raw))
    assert.equal(seen.length, 0)
  })
}

test('requestTimeout is enforced on a request whose body never finishes (plaintext)', T, async (t) => {
  const { port } = await tlsMux(t, { http: 'serve', headersTimeout: 300, requestTimeout: 600, connectionsCheckingInterval: 50 })
  const socket = await connect(t, port)
  socket.on('error', () => {})
  const all = readAll(socket)
  socket.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc')
  const raw = (await all).toString('latin1')
  assert.ok(raw === '' || /^HTTP\/1\.1 408 /.test(raw), JSON.stringify(raw))
})

test('keepAliveTimeout shows in the Keep-Alive header (plaintext and TLS HTTP/1.1)', T, async (t) => {
  const { port } = await tlsMux(t, { http: 'serve', keepAliveTimeout: 1234 })
  const plain = await connect(t, port)
  const r1 = readResponse(plain)
  plain.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
  assert.equal((await r1).headers['keep-alive'], 'timeout=1')

  const secure = await tlsConnect(t, port, ['http/1.1'])
  const r2 = readResponse(secure)
  secure.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
  assert.equal((await r2).headers['keep-alive'], 'timeout=1')

  const { port: other } = await tlsMux(t, { http: 'serve', keepAliveTimeout: 7000 })
  const s3 = await connect(t, other)
  const r3 = readResponse(s3)
  s3.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
  assert.equal((await r3).headers['keep-alive'], 'timeout=7')
})

// ---------------------------------------------------------------------------------------------
// closeIdleConnections

// keepAliveTimeout is long so that only closeIdleConnections() can close the connection in time.
test('closeIdleConnections() closes an idle keep-alive HTTP/1.1 connection (plaintext)', T, async (t) => {
  const { server, port } = await tlsMux(t, { http: 'serve', keepAliveTimeout: 60_000 })
  const socket = await connect(t, port)
  const response = readResponse(socket)
  socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
  assert.equal((await response).status, 200)
  assert.equal(socket.destroyed, false)
  server.closeIdleConnections()
  await closed(socket)
})

test('closeIdleConnections() closes an idle keep-alive HTTP/1.1 connection (TLS)', T, async (t) => {
  const { server, port } = await tlsMux(t, { keepAliveTimeout: 60_000 })
  const socket = await tlsConnect(t, port, ['http/1.1'])
  const response = readResponse(socket)
  socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
  assert.equal((await response).status, 200)
  assert.equal(socket.destroyed, false)
  server.closeIdleConnections()
  await closed(socket)
})

test('closeIdleConnections() leaves a connection with a request in flight alone', T, async (t) => {
  let release: () => void = () => {}
  let started: () => void = () => {}
  const inFlight = new Promise<void>((resolve) => { started = resolve })
  const server = createServer((_req, res) => {
    release = () => res.end('late')
    started()
  })
  const port = await listen(t, server)
  const socket = await connect(t, port)
  const response = readResponse(socket)
  socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
  await inFlight
  server.closeIdleConnections()
  release()
  const r = await response
  assert.equal(r.status, 200)
  assert.equal(r.body, 'late')
})

// ---------------------------------------------------------------------------------------------
// stats()

test('stats(): decisions are counted and open counts return to 0 when clients close', T, async (t) => {
  const { server, port } = await tlsMux(t)
  const before = server.stats()
  assert.equal(before.accepted, 0)
  assert.equal(before.pending, 0)

  // One HTTPS connection, held open.
  const secure = await tlsConnect(t, port, ['http/1.1'])
  const response = readResponse(secure)
  secure.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
  assert.equal((await response).status, 200)
  assert.equal(server.stats().open.https, 1)

  // Two redirected plaintext connections (each closed by the server).
  await exchange(t, port, `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`)
  await exchange(t, port, `GET /b HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`)

  // One h2 session over TLS, held open.
  const h2 = await h2Get(t, `https://127.0.0.1:${port}`, '/', { rejectUnauthorized: false, servername: 'localhost' })
  assert.equal(h2.headers[':status'], 200)

  const mid = server.stats()
  assert.equal(mid.accepted, 4)
  assert.equal(mid.decided.https, 2)
  assert.equal(mid.decided.redirect, 2)
  assert.equal(mid.decided.http, 0)
  assert.equal(mid.decided.reject, 0)
  assert.equal(mid.open.https, 2)

  secure.end()
  h2.session.close()
  await until(() => {
    const s = server.stats()
    return s.open.https === 0 && s.open.redirect === 0 && s.open.http === 0 && s.open.reject === 0 && s.pending === 0
  }, 5000, 'open counts back to 0')
  const after = server.stats()
  assert.equal(after.decided.https, 2)
  assert.equal(after.decided.redirect, 2)
  assert.deepEqual(after.errors, {})
})

test('stats(): served and rejected plaintext are counted apart', T, async (t) => {
  const served = await tlsMux(t, { http: 'serve' })
  const raw = await exchange(t, served.port, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
  assert.match(raw, /^HTTP\/1\.1 200 /)
  const rejected = await tlsMux(t, { http: 'reject' })
  assert.match(await exchange(t, rejected.port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n'), /^HTTP\/1\.1 400 /)
  await until(() => served.server.stats().open.http === 0 && rejected.server.stats().open.reject === 0, 5000, 'closed')
  assert.equal(served.server.stats().decided.http, 1)
  assert.equal(rejected.server.stats().decided.reject, 1)
  assert.equal(served.server.stats().decided.redirect, 0)
})
