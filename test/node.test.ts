/**
 * `createServer(handler, options)` without Fastify: a real Express 5 app and a plain
 * `(req, res)` handler behind the sniffing listener, over real sockets.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import http2 from 'node:http2'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import tls from 'node:tls'
import { once } from 'node:events'
import express from 'express'
import { Agent, request } from 'undici'
import { createServer, MuxServer } from '../src/index.js'
import type { MuxOptions } from '../src/types.js'
import { closed, connect, readAll, testCertificate, until, listen } from './helpers.js'

/** A hang fails the test instead of the run. */
const T = { timeout: 30_000 }

function expressApp (): express.Express {
  const app = express()
  app.get('/', (req, res) => { res.json({ secure: req.secure, protocol: req.protocol, ip: req.ip }) })
  app.get('/some/path', (req, res) => { res.json({ url: req.originalUrl }) })
  return app
}

function agent (t: TestContext, ca: string, allowH2 = false): Agent {
  const a = new Agent({ allowH2, connect: { ca } })
  t.after(() => a.destroy())
  return a
}

async function get (url: string, dispatcher?: Agent): Promise<{ status: number, headers: Record<string, string | string[] | undefined>, text: string }> {
  const res = await request(url, dispatcher === undefined ? {} : { dispatcher })
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() }
}

/** Rejects when `p` has not settled after `ms`: a guard against hanging, not a timing assertion. */
async function within<T> (p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const guard = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)
  })
  try {
    return await Promise.race([p, guard])
  } finally {
    clearTimeout(timer)
  }
}

async function serve (t: TestContext, handler: Parameters<typeof createServer>[0], options: MuxOptions): Promise<[MuxServer, number]> {
  const server = createServer(handler, options)
  return [server, await listen(t, server)]
}

test('Express, http: redirect — HTTPS reaches Express with req.secure; plaintext gets 301 to https', T, async (t) => {
  const { key, cert } = await testCertificate()
  const [server, port] = await serve(t, expressApp(), { tls: { key, cert }, http: 'redirect' })
  assert.ok(server instanceof MuxServer)

  const secure = await get(`https://127.0.0.1:${port}/`, agent(t, cert))
  assert.equal(secure.status, 200)
  assert.deepEqual(JSON.parse(secure.text), { secure: true, protocol: 'https', ip: '127.0.0.1' })

  const plain = await get(`http://127.0.0.1:${port}/some/path?q=1`)
  assert.equal(plain.status, 301)
  assert.equal(plain.headers.location, `https://127.0.0.1:${port}/some/path?q=1`)

  const followed = await get(`https://127.0.0.1:${port}/some/path?q=1`, agent(t, cert))
  assert.deepEqual(JSON.parse(followed.text), { url: '/some/path?q=1' })
})

test('Express, http: serve — Express sees protocol http on plaintext and https over TLS', T, async (t) => {
  const { key, cert } = await testCertificate()
  const [, port] = await serve(t, expressApp(), { tls: { key, cert }, http: 'serve' })

  const plain = await get(`http://127.0.0.1:${port}/`)
  assert.equal(plain.status, 200)
  assert.deepEqual(JSON.parse(plain.text), { secure: false, protocol: 'http', ip: '127.0.0.1' })

  const secure = await get(`https://127.0.0.1:${port}/`, agent(t, cert))
  assert.deepEqual(JSON.parse(secure.text), { secure: true, protocol: 'https', ip: '127.0.0.1' })
})

// Browsers and curl offer h2 by ALPN. Express 5 cannot serve Node's HTTP/2 compat requests
// (its req prototype is http.IncomingMessage's), so an Express app behind the default
// options must still answer such clients — over HTTP/1.1, or at least without crashing.
for (const http2Option of [undefined, false] as const) {
  test(`Express, a client offering h2 and http/1.1 by ALPN is answered (http2: ${String(http2Option)})`, T, async (t) => {
    const { key, cert } = await testCertificate()
    const uncaught: unknown[] = []
    const onUncaught = (err: unknown): void => { uncaught.push(err) }
    process.on('uncaughtException', onUncaught)
    t.after(() => { process.removeListener('uncaughtException', onUncaught) })

    const options: MuxOptions = { tls: { key, cert }, http: 'redirect' }
    if (http2Option !== undefined) options.http2 = http2Option
    const [, port] = await serve(t, expressApp(), options)
    const res = await within(get(`https://127.0.0.1:${port}/`, agent(t, cert, true)), 5000, 'Express over a client offering h2')
      .catch((err: unknown) => ({ status: 0, headers: {}, text: String(err) }))
    assert.deepEqual(uncaught.map(String), [], 'no exception escapes')
    assert.equal(res.status, 200, res.text)
    assert.deepEqual(JSON.parse(res.text), { secure: true, protocol: 'https', ip: '127.0.0.1' })
  })
}

test('a raw route added with server.route() works next to Express on the same port', T, async (t) => {
  const { key, cert } = await testCertificate()
  const server = createServer(expressApp(), { tls: { key, cert }, http: 'redirect' })
  const returned = server.route('echo', { match: { prefix: 'ECHO ' }, handler: (socket) => socket.pipe(socket) })
  assert.equal(returned, server, 'route() returns the server')
  const port = await listen(t, server)

  const client = await connect(t, port)
  const reply = readAll(client)
  client.end('ECHO hello\n')
  assert.equal((await reply).toString(), 'ECHO hello\n')

  const secure = await get(`https://127.0.0.1:${port}/`, agent(t, cert))
  assert.deepEqual(JSON.parse(secure.text), { secure: true, protocol: 'https', ip: '127.0.0.1' })

  // Routes given as an option work the same way.
  const [, port2] = await serve(t, expressApp(), {
    tls: { key, cert },
    routes: { shout: { match: /^SHOUT /, handler: (socket) => { socket.once('data', (d: Buffer) => socket.end(d.toString().toUpperCase())) } } }
  })
  const c2 = await connect(t, port2)
  const r2 = readAll(c2)
  c2.write('SHOUT hey')
  assert.equal((await r2).toString(), 'SHOUT HEY')
})

test('server.close(cb) calls back with an idle keep-alive connection open, and that connection is closed', T, async (t) => {
  const { key, cert } = await testCertificate()
  const server = createServer(expressApp(), { tls: { key, cert }, http: 'redirect' })
  const port = await listen(t, server)

  // An idle HTTP/1.1 keep-alive connection after one request.
  const socket = tls.connect({ port, host: '127.0.0.1', ca: cert, ALPNProtocols: ['http/1.1'] })
  socket.on('error', () => {})
  t.after(() => { socket.destroy() })
  await once(socket, 'secureConnect')
  let received = ''
  socket.on('data', (d: Buffer) => { received += d.toString('latin1') })
  socket.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')
  await until(() => received.includes('"ip":"127.0.0.1"}'), 5000, 'the first response')
  assert.match(received, /^HTTP\/1\.1 200 /)
  assert.doesNotMatch(received, /\r\nConnection: close\r\n/i)

  let closeEvent = false
  server.on('close', () => { closeEvent = true })
  const called = new Promise<unknown[]>((resolve) => server.close((...args: unknown[]) => resolve(args)))
  const args = await within(called, 5000, 'server.close callback')
  assert.equal(args[0] ?? undefined, undefined, 'no error')
  assert.ok(closeEvent)
  assert.equal(server.listening, false)
  await within(closed(socket), 5000, 'the idle connection closed')
})

test('server.stats() counts accepted connections, decisions by destination and route, and open sockets', T, async (t) => {
  const { key, cert } = await testCertificate()
  const server = createServer(expressApp(), { tls: { key, cert }, http: 'redirect' })
  const seen: string[] = []
  server.route('echo', { match: { prefix: 'ECHO ' }, handler: (socket) => { seen.push('echo'); socket.pipe(socket) } })
  const port = await listen(t, server)

  const fresh = server.stats()
  assert.equal(fresh.accepted, 0)
  assert.equal(fresh.pending, 0)

  // One HTTPS connection (one request on a fresh agent), one plaintext redirect, one raw route.
  const a = agent(t, cert)
  assert.equal((await get(`https://127.0.0.1:${port}/`, a)).status, 200)
  assert.equal((await get(`http://127.0.0.1:${port}/`)).status, 301)
  const echo = await connect(t, port)
  const reply = readAll(echo)
  echo.end('ECHO x')
  assert.equal((await reply).toString(), 'ECHO x')

  // The redirect connection closes after its response; the HTTPS one stays in undici's pool.
  await until(() => server.stats().open.redirect === 0 && server.stats().open.routes.echo === 0, 5000, 'redirect and echo sockets to close')
  const s = server.stats()
  assert.equal(s.accepted, 3)
  assert.equal(s.pending, 0)
  assert.equal(s.decided.https, 1)
  assert.equal(s.decided.redirect, 1)
  assert.equal(s.decided.http, 0)
  assert.equal(s.decided.reject, 0)
  assert.deepEqual(s.decided.routes, { echo: 1 })
  assert.equal(s.open.https, 1)
  assert.deepEqual(s.open.routes, { echo: 0 })
  assert.deepEqual(Object.values(s.closed).filter((n) => n !== 0), [], `closed: ${JSON.stringify(s.closed)}`)
  assert.deepEqual(s.errors, {})

  // A client that connects and goes away silently is counted as such.
  const gone = await connect(t, port)
  await until(() => server.stats().pending === 1, 5000, 'the silent client to be pending')
  gone.destroy()
  await until(() => server.stats().pending === 0, 5000, 'the silent client to be dropped')
  assert.equal(server.stats().closed['client-closed'], 1)
  assert.equal(server.stats().accepted, 4)
  assert.deepEqual(seen, ['echo'])
})

function plainHandler (req: IncomingMessage, res: ServerResponse): void {
  res.setHeader('content-type', 'application/json')
  res.end(JSON.stringify({ url: req.url, version: req.httpVersion, encrypted: (req.socket as tls.TLSSocket).encrypted === true }))
}

test('a plain (req, res) handler over HTTPS (HTTP/1.1 and HTTP/2) and plaintext', T, async (t) => {
  const { key, cert } = await testCertificate()
  const [, port] = await serve(t, plainHandler, { tls: { key, cert }, http: 'serve' })

  const h1 = await get(`https://127.0.0.1:${port}/a?b=c`, agent(t, cert))
  assert.deepEqual(JSON.parse(h1.text), { url: '/a?b=c', version: '1.1', encrypted: true })
  const h2 = await get(`https://127.0.0.1:${port}/a`, agent(t, cert, true))
  assert.deepEqual(JSON.parse(h2.text), { url: '/a', version: '2.0', encrypted: true })
  const plain = await get(`http://127.0.0.1:${port}/p`)
  assert.deepEqual(JSON.parse(plain.text), { url: '/p', version: '1.1', encrypted: false })
})

test('without tls the port speaks plaintext HTTP/1.1 and h2c to the handler', T, async (t) => {
  const [, port] = await serve(t, plainHandler, {})

  const plain = await get(`http://127.0.0.1:${port}/x`)
  assert.equal(plain.status, 200)
  assert.deepEqual(JSON.parse(plain.text), { url: '/x', version: '1.1', encrypted: false })

  const session = http2.connect(`http://127.0.0.1:${port}`)
  session.on('error', () => {})
  t.after(() => { session.destroy() })
  const stream = session.request({ ':path': '/y' })
  stream.end()
  const [headers] = await once(stream, 'response') as [http2.IncomingHttpHeaders]
  assert.equal(headers[':status'], 200)
  const body = (await readAll(stream as unknown as import('node:net').Socket)).toString()
  assert.deepEqual(JSON.parse(body), { url: '/y', version: '2.0', encrypted: false })
})

test('createServer with tls: dev listens once the certificate is made and warns through process warnings', T, async (t) => {
  const warnings: Array<Error & { code?: string }> = []
  const onWarning = (w: Error): void => { warnings.push(w) }
  process.on('warning', onWarning)
  t.after(() => { process.removeListener('warning', onWarning) })

  const server = createServer(plainHandler, { tls: 'dev' })
  let called = false
  server.listen(0, '127.0.0.1', () => { called = true })
  t.after(async () => {
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })
  await within(once(server, 'listening'), 10_000, 'listening')
  const port = (server.address() as AddressInfo).port

  const socket = tls.connect({ port, host: '127.0.0.1', servername: 'localhost', rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] })
  socket.on('error', () => {})
  t.after(() => { socket.destroy() })
  await once(socket, 'secureConnect')
  assert.ok(socket.getPeerX509Certificate()?.checkHost('localhost') !== undefined)
  const reply = readAll(socket)
  socket.end('GET /dev HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')
  assert.match((await reply).toString('latin1'), /^HTTP\/1\.1 200 [^]*"url":"\/dev"/)

  assert.ok(called, 'the listen callback was called')
  await until(() => warnings.some((w) => w.code === 'PORTMUX_DEV_CERTIFICATE'), 5000, 'the development certificate warning')
})

test('server.tlsOptions gives the development certificate once it is made', T, async (t) => {
  const server = createServer(plainHandler, { tls: 'dev' })
  server.on('warning', () => {})
  server.listen(0, '127.0.0.1')
  t.after(async () => {
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })
  await within(once(server, 'listening'), 10_000, 'listening')
  const options = server.tlsOptions
  assert.ok(options !== null, 'tlsOptions is null after the development certificate was made')
  assert.match(String(options.cert), /BEGIN CERTIFICATE/)
  assert.match(String(options.key), /PRIVATE KEY/)
})

test('tls: \'dev\': a close() before the certificate is made cancels the listen waiting for it', T, async (t) => {
  const server = createServer(plainHandler, { tls: 'dev' })
  server.on('warning', () => {})
  t.after(() => { if (server.listening) server.close() })
  // The certificate the listen waits for; the server's own continuation runs before ours.
  const certificate = (server as unknown as { ready: Promise<void> | null }).ready
  assert.ok(certificate !== null)
  server.listen(0, '127.0.0.1')
  const closeErr = await new Promise<Error | undefined>((resolve) => server.close(resolve))
  assert.equal((closeErr as { code?: string } | undefined)?.code, 'ERR_SERVER_NOT_RUNNING')
  await certificate
  await new Promise((resolve) => setImmediate(resolve))
  assert.equal(server.listening, false, 'the server listened after close()')
})
