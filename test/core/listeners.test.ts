/**
 * Every listener of a server — the main one, the other loopback addresses of `localhost`
 * and `httpPort` — is closed, drained, quiesced and counted as one.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { X509Certificate } from 'node:crypto'
import { once } from 'node:events'
import dns from 'node:dns'
import http2 from 'node:http2'
import https from 'node:https'
import net, { type AddressInfo } from 'node:net'
import tls from 'node:tls'
import { createServer } from '../../src/node.js'
import type { MuxServer } from '../../src/server.js'
import { exchange, delay, listen, testCertificate, until } from '../helpers.js'

const T = { timeout: 30_000 }

async function loopbacks (): Promise<string[]> {
  return (await dns.promises.lookup('localhost', { all: true })).map((a) => a.address)
}

function h1 (host: string, port: number, path = '/'): Promise<{ status: number, body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host, port, path, rejectUnauthorized: false, servername: 'localhost', agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => { body += d })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body }) })
      res.on('error', reject)
    })
    req.on('error', reject)
  })
}

function h2 (host: string, port: number, path = '/'): Promise<{ status: number, body: string }> {
  return new Promise((resolve, reject) => {
    const authority = net.isIPv6(host) ? `https://[${host}]:${port}` : `https://${host}:${port}`
    const session = http2.connect(authority, { rejectUnauthorized: false, servername: 'localhost' })
    session.on('error', reject)
    const req = session.request({ ':path': path })
    let status = 0
    let body = ''
    req.setEncoding('utf8')
    req.on('response', (h) => { status = Number(h[':status']) })
    req.on('data', (d: string) => { body += d })
    req.on('end', () => {
      session.close()
      resolve({ status, body })
    })
    req.on('error', reject)
  })
}

function closeServer (server: MuxServer): Promise<void> {
  return new Promise((resolve) => server.close(() => { resolve() }))
}

test('close() on localhost waits for requests in flight on every loopback address, h1 and h2', T, async (t) => {
  const hosts = await loopbacks()
  if (hosts.length < 2) {
    t.skip(`localhost resolves to ${hosts.join(', ')} only`)
    return
  }
  const { key, cert } = await testCertificate()
  let arrived = 0
  const server = createServer((req, res) => {
    arrived++
    // Those on the main listener finish first: the others are still in flight when it is drained.
    const slow = req.url === '/a' || req.url === '/b'
    setTimeout(() => { res.end(`done ${req.url ?? ''}`) }, slow ? 800 : 100)
  }, { tls: { key, cert } })
  server.listen(0, 'localhost')
  await once(server, 'listening')
  t.after(() => { server.closeAllConnections() })
  const port = (server.address() as AddressInfo).port

  // Requests only on the address that is not the main listener's, and on both.
  const main = (server.address() as AddressInfo).address
  const other = hosts.find((h) => h !== main) as string
  const replies = [h1(other, port, '/a'), h2(other, port, '/b'), h1(main, port, '/c'), h2(main, port, '/d')]
  await until(() => arrived === 4, 5000, 'four requests in flight')
  assert.equal(server.stats().open.https, 4)

  let closedAt = 0
  const finished: number[] = []
  const all = Promise.all(replies.map(async (r) => { const v = await r; finished.push(Date.now()); return v }))
  await closeServer(server)
  closedAt = Date.now()
  const results = await all
  assert.deepEqual(results.map((r) => r.status), [200, 200, 200, 200])
  assert.deepEqual(results.map((r) => r.body), ['done /a', 'done /b', 'done /c', 'done /d'])
  for (const at of finished) assert.ok(at <= closedAt, 'the close callback came after every response')
  // Sockets report 'close' a moment after the server's own 'close'.
  await until(() => server.stats().open.https === 0, 2000, 'no connection open')
})

test('httpPort: plaintext there is redirected to the main port; TLS and routes work there too', T, async (t) => {
  const { key, cert } = await testCertificate()
  const server = createServer((req, res) => { res.end(`app ${req.url ?? ''}`) }, { tls: { key, cert }, httpPort: 0 })
  server.route('echo', { match: { prefix: 'ECHO ' }, handler: (s) => { s.pipe(s) } })
  const port = await listen(t, server)
  const httpPort = server.httpAddress?.port as number
  assert.ok(httpPort > 0 && httpPort !== port)

  const redirect = await exchange(t, httpPort, 'GET /a?b=1 HTTP/1.1\r\nHost: example.com\r\n\r\n')
  assert.match(redirect, /^HTTP\/1\.1 301 /)
  assert.match(redirect, new RegExp(`\r\nlocation: https://example.com:${port}/a\\?b=1\r\n`, 'i'))
  // On the main port the client's own port stays.
  const same = await exchange(t, port, `GET /a HTTP/1.1\r\nHost: example.com:${port}\r\n\r\n`)
  assert.match(same, new RegExp(`\r\nlocation: https://example.com:${port}/a\r\n`, 'i'))
  // h2c prior knowledge on httpPort: redirected to the main port too.
  const session = http2.connect(`http://127.0.0.1:${httpPort}`)
  t.after(() => { session.destroy() })
  const req = session.request({ ':path': '/h2c', ':authority': 'example.com' })
  const [headers] = await once(req, 'response') as [http2.IncomingHttpHeaders]
  req.resume()
  assert.equal(headers[':status'], 301)
  assert.equal(headers.location, `https://example.com:${port}/h2c`)

  assert.deepEqual(await h1('127.0.0.1', httpPort, '/tls'), { status: 200, body: 'app /tls' })
  assert.equal(await exchange(t, httpPort, 'ECHO hi\n', { end: true }), 'ECHO hi\n')
  const s = server.stats()
  assert.equal(s.decided.redirect, 3)
  assert.equal(s.decided.https, 1)
  assert.equal(s.decided.routes.echo, 1)
})

test('httpPort on 443\'s twin: a redirect to port 443 leaves the port out', T, async () => {
  // Port 443 cannot be bound in a test; `redirect.port` says where the main port is.
  const { key, cert } = await testCertificate()
  const server = createServer(() => {}, { tls: { key, cert }, httpPort: 0, http: { redirect: { port: 443 } } })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  try {
    const socket = net.connect(server.httpAddress?.port as number, '127.0.0.1')
    socket.end('GET /x HTTP/1.1\r\nHost: example.com\r\n\r\n')
    let reply = ''
    socket.setEncoding('latin1')
    socket.on('data', (d: string) => { reply += d })
    await once(socket, 'close')
    assert.match(reply, /\r\nlocation: https:\/\/example\.com\/x\r\n/i)
  } finally {
    await closeServer(server)
  }
})

test('httpPort: close() waits for its requests in flight; quiesce() stops it accepting', T, async (t) => {
  const server = createServer((_req, res) => { setTimeout(() => { res.end('late') }, 500) }, { http: 'serve', httpPort: 0 })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.after(() => { server.closeAllConnections() })
  const httpPort = server.httpAddress?.port as number
  const mainPort = (server.address() as AddressInfo).port
  const socket = net.connect(httpPort, '127.0.0.1')
  socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
  let reply = ''
  socket.setEncoding('latin1')
  socket.on('data', (d: string) => { reply += d })
  await until(() => server.stats().open.http === 1, 5000, 'the request on httpPort')
  await server.quiesce()
  // Neither port accepts any more.
  for (const p of [httpPort, mainPort]) {
    const refused = net.connect(p, '127.0.0.1')
    const [err] = await once(refused, 'error') as [NodeJS.ErrnoException]
    assert.equal(err.code, 'ECONNREFUSED')
  }
  await closeServer(server)
  // The close callback came only after the request on httpPort was answered.
  assert.match(reply, /\r\n\r\nlate$/)
})

test('httpPort already in use: listen fails with its error and the main port is released', T, async (t) => {
  const blocker = net.createServer()
  blocker.listen(0, '127.0.0.1')
  await once(blocker, 'listening')
  t.after(() => { blocker.close() })
  const taken = (blocker.address() as AddressInfo).port
  const server = createServer(() => {}, { httpPort: taken })
  server.listen(0, '127.0.0.1')
  const [err] = await once(server, 'error') as [NodeJS.ErrnoException]
  assert.equal(err.code, 'EADDRINUSE')
  await until(() => !server.listening, 2000, 'the main listener to close')
})

test('setSecureContext: new connections get the new certificate, open ones keep theirs, HTTPS and terminating routes', T, async (t) => {
  const { devCertificate } = await import('../../src/dev-certificate.js')
  const first = await testCertificate()
  const second = await devCertificate({ hosts: ['second.test'] })
  const server = createServer((_req, res) => { res.end('ok') }, { tls: { key: first.key, cert: first.cert } })
  server.route('term', { match: { tls: { alpn: 'x-echo' } }, terminateTls: true, handler: (s) => { s.pipe(s) } })
  const port = await listen(t, server)

  const peerCert = async (alpn: string): Promise<[tls.TLSSocket, string]> => {
    const socket = tls.connect({ port, host: '127.0.0.1', servername: 'localhost', rejectUnauthorized: false, ALPNProtocols: [alpn] })
    t.after(() => { socket.destroy() })
    await once(socket, 'secureConnect')
    return [socket, socket.getPeerX509Certificate()?.fingerprint256 ?? '']
  }
  const fp = (pem: string): string => new X509Certificate(pem).fingerprint256
  const [openH1, before] = await peerCert('http/1.1')
  const [openRaw, beforeRaw] = await peerCert('x-echo')
  assert.equal(before, fp(first.cert))
  assert.equal(beforeRaw, fp(first.cert))

  assert.throws(() => { server.setSecureContext({ key: 'not a key', cert: second.cert }) }, /key|PEM|asn1|decoder/i)
  server.setSecureContext({ key: second.key, cert: second.cert })
  const [, after] = await peerCert('http/1.1')
  const [, afterRaw] = await peerCert('x-echo')
  assert.equal(after, fp(second.cert))
  assert.equal(afterRaw, fp(second.cert))

  // The connections opened before still work.
  openRaw.write('still here')
  const [echo] = await once(openRaw, 'data') as [Buffer]
  assert.equal(echo.toString(), 'still here')
  openH1.write('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n')
  const [reply] = await once(openH1, 'data') as [Buffer]
  assert.match(reply.toString(), /^HTTP\/1\.1 200 /)
  await delay(0)
})

test('setSecureContext on a plaintext server is an option error', () => {
  const server = createServer(() => {})
  assert.throws(() => { server.setSecureContext({}) }, { code: 'PORTMUX_ERR_INVALID_OPTION' })
})

test('Fastify: app.close() waits for a request in flight on the second loopback address', T, async (t) => {
  const hosts = await loopbacks()
  if (hosts.length < 2) {
    t.skip(`localhost resolves to ${hosts.join(', ')} only`)
    return
  }
  const { default: Fastify } = await import('fastify')
  const { portmux, serverFactory } = await import('../../src/fastify.js')
  const { key, cert } = await testCertificate()
  const app = Fastify({ serverFactory: serverFactory({ tls: { key, cert } }) })
  await app.register(portmux)
  let arrived = false
  app.get('/', async () => {
    arrived = true
    await delay(500)
    return 'late'
  })
  await app.listen({ port: 0, host: 'localhost' })
  t.after(() => { app.server.closeAllConnections() })
  const main = (app.server.address() as AddressInfo)
  const other = hosts.find((h) => h !== main.address) as string
  const reply = h1(other, main.port)
  await until(() => arrived, 5000, 'the request in flight')
  let replied = false
  void reply.then(() => { replied = true })
  await app.close()
  assert.equal(replied, true, 'answered before close() resolved')
  assert.deepEqual(await reply, { status: 200, body: 'late' })
})
