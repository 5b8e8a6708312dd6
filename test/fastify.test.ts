/**
 * The Fastify adapter over real sockets: `serverFactory` + the plugin, listening on real ports,
 * spoken to by undici, node:http2, ws, and raw TCP/TLS clients. Never `fastify.inject()`:
 * it bypasses the listener, which is what is under test here.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import dns from 'node:dns'
import http2, { type ClientHttp2Session, type IncomingHttpHeaders } from 'node:http2'
import net, { type AddressInfo } from 'node:net'
import tls from 'node:tls'
import { once } from 'node:events'
import { Writable } from 'node:stream'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import websocket from '@fastify/websocket'
import WebSocket from 'ws'
import { Agent, request } from 'undici'
import portmux, { serverFactory } from '../src/index.js'
import type { ConnectionInfo, MuxOptions } from '../src/types.js'
import type { MuxServer } from '../src/server.js'
import { closed, connect, exchange, readAll, testCertificate, until } from './helpers.js'

/** A hang fails the test instead of the run. */
const T = { timeout: 30_000 }

// ---------------------------------------------------------------------------------------------
// Plumbing

/** A Fastify app on portmux's factory, the plugin registered; closed after the test. */
async function makeApp (t: TestContext, mux: MuxOptions, fastifyOptions: FastifyServerOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({ ...fastifyOptions, serverFactory: serverFactory(mux) })
  t.after(async () => {
    // Whatever a failing test left open must not keep the close waiting.
    ;(app.server as unknown as MuxServer).closeAllConnections?.()
    await app.close()
  })
  await app.register(portmux)
  return app
}

/** The routes most tests use. */
function addRoutes (app: FastifyInstance): void {
  app.get('/', async (req) => ({ protocol: req.protocol, version: req.raw.httpVersion }))
  app.get('/some/path', async (req) => ({ url: req.url }))
}

function portOf (app: FastifyInstance): number {
  return (app.server.address() as AddressInfo).port
}

async function listenApp (app: FastifyInstance): Promise<number> {
  await app.listen({ port: 0, host: '127.0.0.1' })
  return portOf(app)
}

/** An undici Agent trusting the test certificate (h2 by ALPN when `allowH2`). */
function agent (t: TestContext, ca: string, allowH2 = false): Agent {
  const a = new Agent({ allowH2, connect: { ca } })
  t.after(() => a.destroy())
  return a
}

async function getJson (url: string, dispatcher?: Agent): Promise<{ status: number, headers: Record<string, string | string[] | undefined>, body: any }> {
  const res = await request(url, dispatcher === undefined ? {} : { dispatcher })
  const text = await res.body.text()
  let body: unknown = text
  try { body = JSON.parse(text) } catch { /* not JSON */ }
  return { status: res.statusCode, headers: res.headers, body }
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

function h2connect (t: TestContext, url: string, ca?: string): ClientHttp2Session {
  const session = http2.connect(url, ca === undefined ? {} : { ca })
  session.on('error', () => {})
  t.after(() => { session.destroy() })
  return session
}

interface H2Response { status: number, headers: IncomingHttpHeaders, body: string }

function h2get (session: ClientHttp2Session, path: string): Promise<H2Response> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':path': path })
    let headers: IncomingHttpHeaders = {}
    const chunks: Buffer[] = []
    stream.on('response', (h) => { headers = h })
    stream.on('data', (c: Buffer) => chunks.push(c))
    stream.on('end', () => resolve({ status: Number(headers[':status']), headers, body: Buffer.concat(chunks).toString() }))
    stream.on('error', reject)
    stream.end()
  })
}

interface RawResponse { status: number, headers: Record<string, string>, body: string }

/** Read one HTTP/1.1 response with a Content-Length from a raw socket, leaving the socket open. */
function readResponse (socket: net.Socket): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0)
    const cleanup = (): void => {
      socket.removeListener('data', onData)
      socket.removeListener('close', onClose)
    }
    const onData = (chunk: Buffer): void => {
      buf = Buffer.concat([buf, chunk])
      const end = buf.indexOf('\r\n\r\n')
      if (end === -1) return
      const [statusLine, ...lines] = buf.subarray(0, end).toString('latin1').split('\r\n')
      const headers: Record<string, string> = {}
      for (const line of lines) {
        const i = line.indexOf(':')
        headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim()
      }
      const length = Number(headers['content-length'] ?? 0)
      if (buf.length < end + 4 + length) return
      cleanup()
      resolve({ status: Number(statusLine.split(' ')[1]), headers, body: buf.subarray(end + 4, end + 4 + length).toString() })
    }
    const onClose = (): void => {
      cleanup()
      reject(new Error('closed before a complete response: ' + JSON.stringify(buf.toString('latin1'))))
    }
    socket.on('data', onData)
    socket.on('close', onClose)
  })
}

/** A raw TLS client (HTTP/1.1 by ALPN unless told otherwise), destroyed after the test. */
async function tlsConnect (t: TestContext, port: number, ca: string, alpn: string[] = ['http/1.1']): Promise<tls.TLSSocket> {
  const socket = tls.connect({ port, host: '127.0.0.1', ca, ALPNProtocols: alpn })
  socket.on('error', () => {})
  t.after(() => { socket.destroy() })
  await once(socket, 'secureConnect')
  return socket
}

function deferred (): { promise: Promise<void>, resolve: () => void } {
  let resolve!: () => void
  const promise = new Promise<void>((r) => { resolve = r })
  return { promise, resolve }
}

function url (host: string, port: number, scheme = 'https'): string {
  return `${scheme}://${net.isIPv6(host) ? `[${host}]` : host}:${port}/`
}

// ---------------------------------------------------------------------------------------------
// HTTPS, HTTP/2 and plaintext HTTP on one port

test('http: redirect — HTTPS over HTTP/1.1 and HTTP/2, plaintext redirected to https on the same port and path', T, async (t) => {
  const { key, cert } = await testCertificate()
  const app = await makeApp(t, { tls: { key, cert }, http: 'redirect' })
  addRoutes(app)
  const port = await listenApp(app)

  const h1 = await getJson(`https://127.0.0.1:${port}/`, agent(t, cert))
  assert.equal(h1.status, 200)
  assert.deepEqual(h1.body, { protocol: 'https', version: '1.1' })

  const h2 = await getJson(`https://127.0.0.1:${port}/`, agent(t, cert, true))
  assert.equal(h2.status, 200)
  assert.deepEqual(h2.body, { protocol: 'https', version: '2.0' })

  const session = h2connect(t, `https://127.0.0.1:${port}`, cert)
  const viaNode = await h2get(session, '/')
  assert.equal(viaNode.status, 200)
  assert.deepEqual(JSON.parse(viaNode.body), { protocol: 'https', version: '2.0' })

  const plain = await request(`http://127.0.0.1:${port}/some/path?x=1&y=%20z`)
  await plain.body.dump()
  assert.equal(plain.statusCode, 301)
  assert.equal(plain.headers.location, `https://127.0.0.1:${port}/some/path?x=1&y=%20z`)

  // The redirect target works.
  const followed = await getJson(`https://127.0.0.1:${port}/some/path?x=1&y=%20z`, agent(t, cert))
  assert.deepEqual(followed.body, { url: '/some/path?x=1&y=%20z' })
})

test('http: serve — request.protocol is http on plaintext (HTTP/1.1 and h2c), https over TLS', T, async (t) => {
  const { key, cert } = await testCertificate()
  const app = await makeApp(t, { tls: { key, cert }, http: 'serve' })
  addRoutes(app)
  const port = await listenApp(app)

  const plain = await getJson(`http://127.0.0.1:${port}/`)
  assert.equal(plain.status, 200)
  assert.deepEqual(plain.body, { protocol: 'http', version: '1.1' })

  const h2c = await h2get(h2connect(t, `http://127.0.0.1:${port}`), '/')
  assert.equal(h2c.status, 200)
  assert.deepEqual(JSON.parse(h2c.body), { protocol: 'http', version: '2.0' })

  const secure = await getJson(`https://127.0.0.1:${port}/`, agent(t, cert))
  assert.equal(secure.status, 200)
  assert.deepEqual(secure.body, { protocol: 'https', version: '1.1' })

  const secure2 = await getJson(`https://127.0.0.1:${port}/`, agent(t, cert, true))
  assert.deepEqual(secure2.body, { protocol: 'https', version: '2.0' })
})

// ---------------------------------------------------------------------------------------------
// The plugin's decorations

test('fastify.portmux is the server; fastify.tcp() is chainable and its route works next to HTTPS', T, async (t) => {
  const { key, cert } = await testCertificate()
  const app = await makeApp(t, { tls: { key, cert }, http: 'redirect' })
  addRoutes(app)
  assert.equal(app.portmux as unknown, app.server as unknown)
  assert.equal(typeof app.portmux.route, 'function')

  const infos: ConnectionInfo[] = []
  const returned = app.tcp('echo', {
    match: { prefix: 'ECHO ' },
    handler: (socket, info) => {
      infos.push(info)
      socket.pipe(socket)
    }
  })
  assert.equal(returned, app, 'tcp() returns the instance')
  const port = await listenApp(app)

  const client = await connect(t, port)
  const clientPort = client.localPort
  const reply = readAll(client)
  client.end('ECHO hi\n')
  assert.equal((await reply).toString(), 'ECHO hi\n')

  assert.equal(infos.length, 1)
  const info = infos[0]
  assert.equal(info.route, 'echo')
  assert.equal(info.protocol, 'custom')
  assert.equal(info.remoteAddress, '127.0.0.1')
  assert.equal(info.remotePort, clientPort)
  assert.ok(info.bytes.length > 0)
  const sniffed = Buffer.from(info.bytes).toString()
  assert.ok(sniffed.startsWith('ECHO ') && 'ECHO hi\n'.startsWith(sniffed), `sniffed bytes: ${JSON.stringify(sniffed)}`)

  // HTTPS on the same port, after and alongside the raw route.
  const res = await getJson(`https://127.0.0.1:${port}/`, agent(t, cert))
  assert.deepEqual(res.body, { protocol: 'https', version: '1.1' })
  assert.equal(app.portmux.stats().decided.routes.echo, 1)
})

test('registering the plugin on a Fastify without the factory fails with PORTMUX_ERR_NO_FACTORY', T, async (t) => {
  const app = Fastify()
  t.after(() => app.close())
  await assert.rejects(async () => { await app.register(portmux) }, (err: any) => {
    assert.equal(err.code, 'PORTMUX_ERR_NO_FACTORY')
    assert.match(err.message, /serverFactory/)
    return true
  })

  const other = Fastify()
  t.after(() => other.close())
  other.register(portmux)
  await assert.rejects(async () => { await other.ready() }, { code: 'PORTMUX_ERR_NO_FACTORY' })
})

// ---------------------------------------------------------------------------------------------
// tls: 'dev'

test('tls: dev — listen waits for the certificate, HTTPS works, the warning goes through fastify.log', T, async (t) => {
  const lines: Array<Record<string, unknown>> = []
  const stream = new Writable({
    write (chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) if (line.trim() !== '') lines.push(JSON.parse(line))
      cb()
    }
  })
  const processWarnings: Error[] = []
  const onWarning = (w: Error): void => { processWarnings.push(w) }
  process.on('warning', onWarning)
  t.after(() => { process.removeListener('warning', onWarning) })

  const app = await makeApp(t, { tls: 'dev', http: 'redirect' }, { logger: { level: 'warn', stream } })
  addRoutes(app)
  const port = await listenApp(app)

  // Right after listen resolves: the certificate is in place.
  const socket = tls.connect({ port, host: '127.0.0.1', servername: 'localhost', rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] })
  socket.on('error', () => {})
  t.after(() => { socket.destroy() })
  await once(socket, 'secureConnect')
  const peer = socket.getPeerX509Certificate()
  assert.ok(peer !== undefined)
  assert.ok(peer.checkHost('localhost') !== undefined, 'the development certificate names localhost')
  assert.ok(peer.checkIP('127.0.0.1') !== undefined)
  socket.write('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n')
  const res = await readResponse(socket)
  assert.equal(res.status, 200)
  assert.deepEqual(JSON.parse(res.body), { protocol: 'https', version: '1.1' })

  const devWarnings = lines.filter((l) => typeof l.msg === 'string' && /development certificate/i.test(l.msg))
  assert.equal(devWarnings.length, 1, `log lines: ${JSON.stringify(lines)}`)
  assert.equal(devWarnings[0].level, 40)
  assert.deepEqual(processWarnings.filter((w) => (w as { code?: string }).code === 'PORTMUX_DEV_CERTIFICATE'), [],
    'with the plugin, the warning goes to the Fastify logger, not process warnings')
})

// ---------------------------------------------------------------------------------------------
// listen() with Fastify's default host

test('listen({ port: 0 }) binds every address localhost resolves to, at least what plain Fastify binds', T, async (t) => {
  const plain = Fastify()
  await plain.listen({ port: 0 })
  const plainAddresses = plain.addresses().map((a) => (a as AddressInfo).address)
  await plain.close()

  const resolved = (await dns.promises.lookup('localhost', { all: true })).map((a) => a.address)
  const expected = [...new Set([...resolved, ...plainAddresses])]

  const { key, cert } = await testCertificate()
  const app = await makeApp(t, { tls: { key, cert }, http: 'redirect' })
  addRoutes(app)
  await app.listen({ port: 0 })
  const port = portOf(app)

  for (const host of expected) {
    // The certificate is checked against the name localhost: which address answered is what this test is about
    // (undici on Node 22 sends an IPv6 literal as the name to check, which Node then refuses).
    const byName = new Agent({ connect: { ca: cert, servername: 'localhost' } })
    t.after(() => byName.destroy())
    const res = await within(getJson(url(host, port), byName), 5000, `HTTPS to ${host}`)
      .catch((err: unknown) => { throw new Error(`HTTPS to ${host}:${port} failed (plain Fastify binds ${plainAddresses.join(', ')}): ${String(err)}`) })
    assert.equal(res.status, 200, host)
    assert.deepEqual(res.body, { protocol: 'https', version: '1.1' }, host)
  }

  await app.close()
  // Every binding is gone after close.
  for (const host of expected) {
    const socket = net.connect({ port, host })
    const event = await new Promise<string>((resolve) => {
      socket.once('connect', () => resolve('connect'))
      socket.once('error', () => resolve('error'))
    })
    socket.destroy()
    assert.equal(event, 'error', `${host}:${port} still accepts connections after close`)
  }
})

// ---------------------------------------------------------------------------------------------
// Fastify's server options reach the inner servers

test('keepAliveTimeout from Fastify options: Keep-Alive: timeout=2 over HTTPS and plaintext', T, async (t) => {
  const { key, cert } = await testCertificate()
  const app = await makeApp(t, { tls: { key, cert }, http: 'serve' }, { keepAliveTimeout: 2000 })
  addRoutes(app)
  const port = await listenApp(app)

  const secure = await getJson(`https://127.0.0.1:${port}/`, agent(t, cert))
  assert.equal(secure.headers['keep-alive'], 'timeout=2')
  const plain = await getJson(`http://127.0.0.1:${port}/`)
  assert.equal(plain.headers['keep-alive'], 'timeout=2')
})

test('maxRequestsPerSocket from Fastify options: the first response closes the connection', T, async (t) => {
  const { key, cert } = await testCertificate()
  const app = await makeApp(t, { tls: { key, cert }, http: 'serve' }, { maxRequestsPerSocket: 1 })
  addRoutes(app)
  const port = await listenApp(app)

  const secure = await getJson(`https://127.0.0.1:${port}/`, agent(t, cert))
  assert.equal(secure.headers.connection, 'close')
  const plain = await getJson(`http://127.0.0.1:${port}/`)
  assert.equal(plain.headers.connection, 'close')
})

const UNFINISHED_BODY = 'POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\nabc'

/** An app whose requestTimeout (300 ms) comes from Fastify's options; checked every 50 ms. */
async function requestTimeoutApp (t: TestContext, http2: boolean): Promise<number> {
  const { key, cert } = await testCertificate()
  const app = await makeApp(t, { tls: { key, cert }, http: 'serve', http2, connectionsCheckingInterval: 50 }, { requestTimeout: 300 })
  app.post('/upload', async (req) => ({ got: req.body }))
  return await listenApp(app)
}

function assert408 (text: string, where: string): void {
  assert.match(text, /^HTTP\/1\.1 408 /, `${where}: ${JSON.stringify(text)}`)
  assert.match(text, /"message":"Client Timeout"/, `${where}: ${JSON.stringify(text)}`)
}

test('requestTimeout from Fastify options: an unfinished plaintext request body gets Fastify\'s 408', T, async (t) => {
  const port = await requestTimeoutApp(t, true)
  const plain = await connect(t, port)
  plain.on('error', () => {})
  const reply = readAll(plain)
  plain.write(UNFINISHED_BODY)
  // Without the option (Fastify's default 0) nothing would ever answer.
  assert408((await within(reply, 5000, 'plaintext 408')).toString('latin1'), 'plaintext')
})

for (const http2 of [true, false]) {
  test(`requestTimeout from Fastify options: an unfinished HTTPS/1.1 request body gets Fastify's 408 (http2: ${String(http2)})`, T, async (t) => {
    const port = await requestTimeoutApp(t, http2)
    const { cert } = await testCertificate()
    const secure = await tlsConnect(t, port, cert)
    const reply = readAll(secure)
    secure.write(UNFINISHED_BODY)
    assert408((await within(reply, 5000, 'HTTPS/1.1 408')).toString('latin1'), 'TLS')
  })
}

test('connectionTimeout from Fastify options: a silent half-sent request is closed by the server', T, async (t) => {
  const { key, cert } = await testCertificate()
  const app = await makeApp(t, { tls: { key, cert }, http: 'serve' }, { connectionTimeout: 300 })
  addRoutes(app)
  const port = await listenApp(app)

  const plain = await connect(t, port)
  plain.on('error', () => {})
  plain.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n')
  const secure = await tlsConnect(t, port, cert)
  secure.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n')

  // Node's own default (no timeout) and headersTimeout (60 s) would keep both open far longer.
  await within(closed(plain), 5000, 'plaintext connection closed by connectionTimeout')
  await within(closed(secure), 5000, 'TLS connection closed by connectionTimeout')
})

test('http2SessionTimeout from Fastify options: an idle HTTP/2 session is closed by the server', T, async (t) => {
  const { key, cert } = await testCertificate()
  const app = await makeApp(t, { tls: { key, cert }, http: 'serve' }, { http2SessionTimeout: 300 } as FastifyServerOptions)
  addRoutes(app)
  const port = await listenApp(app)

  const session = h2connect(t, `https://127.0.0.1:${port}`, cert)
  const res = await h2get(session, '/')
  assert.equal(res.status, 200)
  let goaway = false
  session.on('goaway', () => { goaway = true })
  // Fastify's default is 72 s.
  await within(once(session, 'close'), 5000, 'idle HTTP/2 session closed')
  assert.ok(goaway, 'the server sent GOAWAY')
})

// ---------------------------------------------------------------------------------------------
// WebSockets through @fastify/websocket

async function wsEcho (t: TestContext, address: string, options: WebSocket.ClientOptions = {}): Promise<string> {
  const ws = new WebSocket(address, options)
  t.after(() => { ws.terminate() })
  await once(ws, 'open')
  ws.send('hello over ' + address.split(':')[0])
  const [data] = await once(ws, 'message') as [WebSocket.RawData]
  ws.close()
  return data.toString()
}

async function wsApp (t: TestContext, http: MuxOptions['http']): Promise<[FastifyInstance, number]> {
  const { key, cert } = await testCertificate()
  const app = await makeApp(t, { tls: { key, cert }, http })
  await app.register(websocket)
  app.get('/ws', { websocket: true }, (socket) => {
    socket.on('message', (m: Buffer, isBinary: boolean) => socket.send(m, { binary: isBinary }))
  })
  return [app, await listenApp(app)]
}

test('WebSockets: wss:// and ws:// both reach @fastify/websocket on one port with http: serve', T, async (t) => {
  const [, port] = await wsApp(t, 'serve')
  const { cert } = await testCertificate()
  assert.equal(await within(wsEcho(t, `wss://127.0.0.1:${port}/ws`, { ca: cert }), 5000, 'wss echo'), 'hello over wss')
  assert.equal(await within(wsEcho(t, `ws://127.0.0.1:${port}/ws`), 5000, 'ws echo'), 'hello over ws')
})

test('WebSockets: with http: redirect, ws:// gets a 301 to wss://, and wss:// works', T, async (t) => {
  const [, port] = await wsApp(t, 'redirect')
  const { cert } = await testCertificate()

  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws?room=1`)
  t.after(() => { ws.terminate() })
  ws.on('error', () => {})
  const [, res] = await within(once(ws, 'unexpected-response'), 5000, 'ws:// response') as [unknown, { statusCode: number, headers: Record<string, string> }]
  assert.equal(res.statusCode, 301)
  assert.equal(res.headers.location, `wss://127.0.0.1:${port}/ws?room=1`)

  // The same over a raw socket, to see the whole response.
  const raw = await exchange(t, port, 'GET /ws HTTP/1.1\r\nHost: 127.0.0.1:' + String(port) + '\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
    'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n')
  assert.match(raw, /^HTTP\/1\.1 301 /)
  assert.match(raw, new RegExp(`\r\nlocation: wss://127\\.0\\.0\\.1:${port}/ws\r\n`, 'i'))

  assert.equal(await within(wsEcho(t, `wss://127.0.0.1:${port}/ws`, { ca: cert }), 5000, 'wss echo'), 'hello over wss')
})

// ---------------------------------------------------------------------------------------------
// Fastify's clientError handler reaches the inner servers

const GARBAGE = 'GARBAGE\r\n\r\n'

function assertFastify400 (reply: string, where: string): void {
  assert.match(reply, /^HTTP\/1\.1 400 Bad Request\r\n/, `${where}: ${JSON.stringify(reply)}`)
  assert.match(reply, /\r\nContent-Type: application\/json\r\n/i, `${where}: not Fastify's reply: ${JSON.stringify(reply)}`)
  const body = JSON.parse(reply.slice(reply.indexOf('\r\n\r\n') + 4))
  assert.equal(body.statusCode, 400)
  assert.equal(body.message, 'Client Error')
}

for (const http of ['redirect', 'serve', 'reject'] as const) {
  test(`clientError: garbage gets Fastify's JSON 400 (http: ${http}, plaintext and TLS)`, T, async (t) => {
    const { key, cert } = await testCertificate()
    const app = await makeApp(t, { tls: { key, cert }, http })
    addRoutes(app)
    const port = await listenApp(app)

    assertFastify400(await exchange(t, port, GARBAGE), 'plaintext')

    const secure = await tlsConnect(t, port, cert)
    const reply = readAll(secure)
    secure.write(GARBAGE)
    assertFastify400((await reply).toString('latin1'), 'TLS')
  })
}

test('clientError: a custom clientErrorHandler gets the error and the socket, with every byte sent', T, async (t) => {
  const { key, cert } = await testCertificate()
  const seen: Array<{ code: string | undefined, raw: string, encrypted: boolean, self: unknown }> = []
  let app!: FastifyInstance
  app = await makeApp(t, { tls: { key, cert }, http: 'redirect' }, {
    clientErrorHandler (this: FastifyInstance, err: Error & { code?: string }, socket: net.Socket) {
      const rawPacket = (err as unknown as { rawPacket?: Buffer }).rawPacket
      seen.push({ code: err.code, raw: rawPacket?.toString('latin1') ?? '', encrypted: (socket as tls.TLSSocket).encrypted === true, self: this })
      socket.end('HTTP/1.1 418 I\'m a Teapot\r\nContent-Length: 0\r\nConnection: close\r\n\r\n')
    }
  })
  addRoutes(app)
  const port = await listenApp(app)

  assert.match(await exchange(t, port, GARBAGE), /^HTTP\/1\.1 418 /)
  const secure = await tlsConnect(t, port, cert)
  const reply = readAll(secure)
  secure.write(GARBAGE)
  assert.match((await reply).toString('latin1'), /^HTTP\/1\.1 418 /)

  assert.equal(seen.length, 2)
  for (const [i, s] of seen.entries()) {
    assert.match(s.code ?? '', /^HPE_/)
    // No byte lost to sniffing: the parser saw the request from its first byte.
    assert.ok(s.raw.startsWith('GARBAGE'), `rawPacket: ${JSON.stringify(s.raw)}`)
    assert.equal(s.encrypted, i === 1)
    assert.equal(s.self, app)
  }
})

// ---------------------------------------------------------------------------------------------
// close()

test('app.close() closes an idle keep-alive connection, an HTTP/2 session, a silent client and a raw-route socket, and lets a request in flight finish', T, async (t) => {
  const { key, cert } = await testCertificate()
  const app = await makeApp(t, { tls: { key, cert }, http: 'redirect', closeGrace: 200 })
  addRoutes(app)
  const entered = deferred()
  const gate = deferred()
  app.get('/slow', async () => {
    entered.resolve()
    await gate.promise
    return { slow: true }
  })
  const held = deferred()
  app.tcp('hold', { match: { prefix: 'HOLD' }, handler: () => { held.resolve() } })
  const port = await listenApp(app)
  const mux = app.portmux

  // 1. An idle HTTP/1.1 keep-alive connection, after one request.
  const idle = await tlsConnect(t, port, cert)
  idle.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')
  const first = await readResponse(idle)
  assert.equal(first.status, 200)
  assert.notEqual(first.headers.connection, 'close')
  const idleClosed = closed(idle)

  // 2. An HTTP/2 session after one request, left open.
  const session = h2connect(t, `https://127.0.0.1:${port}`, cert)
  assert.equal((await h2get(session, '/')).status, 200)
  const sessionClosed = once(session, 'close')

  // 3. A raw-route socket whose handler never reads or ends.
  const routed = await connect(t, port)
  routed.on('error', () => {})
  routed.write('HOLD please\n')
  await within(held.promise, 5000, 'raw route handler')
  const routedClosed = closed(routed)

  // 4. A request in flight.
  const busy = await tlsConnect(t, port, cert)
  busy.write('GET /slow HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')
  const busyResponse = readResponse(busy)
  busyResponse.catch(() => {})
  await within(entered.promise, 5000, 'slow handler entered')
  const busyClosed = closed(busy)

  // 5. A silent client, still being sniffed.
  const silent = await connect(t, port)
  silent.on('error', () => {})
  await until(() => mux.stats().pending === 1, 5000, 'the silent client to be accepted')
  const silentClosed = closed(silent)

  const closing = app.close()
  let done = false
  closing.then(() => { done = true }, () => { done = true })

  // The server is closing (the silent client is dropped at once), the slow request is still running.
  await within(silentClosed, 5000, 'silent client closed')
  assert.equal(done, false, 'close waits for the request in flight')
  gate.resolve()

  const res = await within(busyResponse, 5000, 'response to the request in flight')
  assert.equal(res.status, 200)
  assert.deepEqual(JSON.parse(res.body), { slow: true })

  let timer: NodeJS.Timeout | undefined
  const winner = await Promise.race([
    closing.then(() => 'close'),
    new Promise<string>((resolve) => { timer = setTimeout(() => resolve('timeout'), 5000) })
  ])
  clearTimeout(timer)
  assert.equal(winner, 'close', 'app.close() did not finish while connections were open')

  // Every client was closed by the server (none of them closed itself).
  await within(Promise.all([idleClosed, sessionClosed, routedClosed, busyClosed, silentClosed]), 5000, 'client sockets closed')
  assert.equal(mux.listening, false)
})

test('forceCloseConnections: true — app.close() destroys everything at once, raw routes without waiting for closeGrace', T, async (t) => {
  const { key, cert } = await testCertificate()
  // closeGrace far longer than the guard below: only closeAllConnections() can end the raw route in time.
  const app = await makeApp(t, { tls: { key, cert }, http: 'redirect', closeGrace: 60_000 }, { forceCloseConnections: true })
  addRoutes(app)
  const held = deferred()
  app.tcp('hold', { match: { prefix: 'HOLD' }, handler: () => { held.resolve() } })
  const port = await listenApp(app)

  const idle = await tlsConnect(t, port, cert)
  idle.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')
  assert.equal((await readResponse(idle)).status, 200)
  const session = h2connect(t, `https://127.0.0.1:${port}`, cert)
  assert.equal((await h2get(session, '/')).status, 200)
  const routed = await connect(t, port)
  routed.on('error', () => {})
  routed.write('HOLD\n')
  await within(held.promise, 5000, 'raw route handler')
  const silent = await connect(t, port)
  silent.on('error', () => {})
  await until(() => app.portmux.stats().pending === 1, 5000, 'the silent client to be accepted')

  const all = Promise.all([closed(idle), once(session, 'close'), closed(routed), closed(silent)])
  await within(app.close(), 5000, 'app.close() with forceCloseConnections')
  await within(all, 5000, 'client sockets closed')
})

test('app.close() lets an HTTP/2 stream in flight finish, then the session closes', T, async (t) => {
  const { key, cert } = await testCertificate()
  const app = await makeApp(t, { tls: { key, cert }, http: 'redirect' })
  const entered = deferred()
  const gate = deferred()
  app.get('/slow', async () => {
    entered.resolve()
    await gate.promise
    return { slow: true }
  })
  const port = await listenApp(app)

  const session = h2connect(t, `https://127.0.0.1:${port}`, cert)
  const response = h2get(session, '/slow')
  response.catch(() => {})
  await within(entered.promise, 5000, 'slow handler entered')
  const sessionClosed = once(session, 'close')

  const closing = app.close()
  await until(() => !app.server.listening, 5000, 'the server to stop listening')
  gate.resolve()

  const res = await within(response, 5000, 'HTTP/2 response in flight')
  assert.equal(res.status, 200)
  assert.deepEqual(JSON.parse(res.body), { slow: true })
  await within(closing, 5000, 'app.close()')
  await within(sessionClosed, 5000, 'HTTP/2 session closed')
})
