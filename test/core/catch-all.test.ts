/** A catch-all route (`match: 'unknown'`): what no route and no built-in destination claims. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import tls from 'node:tls'
import { createServer } from '../../src/node.js'
import type { ConnectionInfo } from '../../src/types.js'
import { closed, connect, delay, exchange, listen, readAll, testCertificate } from '../helpers.js'

const T = { timeout: 20_000 }
const echo = (socket: import('node:net').Socket): void => { socket.pipe(socket) }

test('bytes nothing claims go to the catch-all route; HTTP, TLS and other routes keep theirs, whatever the order', T, async (t) => {
  const { key, cert } = await testCertificate()
  const server = createServer((_req, res) => { res.end('app') }, { tls: { key, cert } })
  // Added first: still consulted only after every route and the built-ins.
  server.route('fallback', { match: 'unknown', handler: echo })
  server.route('ssh', { match: 'ssh', handler: (s) => { s.end('ssh route\n') } })
  const decisions: ConnectionInfo[] = []
  server.on('decision', (info: ConnectionInfo) => { decisions.push(info) })
  const port = await listen(t, server)

  assert.equal(await exchange(t, port, '\x00\x01 custom binary', { end: true }), '\x00\x01 custom binary')
  assert.equal(await exchange(t, port, 'SSH-2.0-OpenSSH_9.2\r\n', { end: true }), 'ssh route\n')
  assert.match(await exchange(t, port, 'GET /x HTTP/1.1\r\nHost: example.com\r\n\r\n'), /^HTTP\/1\.1 301 /)
  const secure = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false, servername: 'localhost' })
  t.after(() => { secure.destroy() })
  await once(secure, 'secureConnect')
  secure.end('GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')
  assert.match((await readAll(secure)).toString(), /\r\n\r\napp$/)

  assert.deepEqual(decisions.map((d) => [d.route, d.protocol]), [['fallback', 'unknown'], ['ssh', 'ssh'], ['redirect', 'http'], ['https', 'tls']])
  assert.equal(server.stats().decided.routes.fallback, 1)
})

test('an HTTP request line arriving slowly is still HTTP when a catch-all route waits', T, async (t) => {
  const server = createServer((_req, res) => { res.end('app') }, { http: 'serve' })
  server.route('fallback', { match: 'unknown', handler: (s) => { s.end('fallback') } })
  const port = await listen(t, server)
  const socket = await connect(t, port)
  const reply = readAll(socket)
  socket.write('GE')
  await delay(100)
  socket.write('T / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
  assert.match((await reply).toString(), /\r\n\r\napp$/)
})

test('without a catch-all, bytes nothing claims are named unknown and get the HTTP parser\'s 400', T, async (t) => {
  const { key, cert } = await testCertificate()
  const server = createServer(() => {}, { tls: { key, cert } })
  const decisions: ConnectionInfo[] = []
  server.on('decision', (info: ConnectionInfo) => { decisions.push(info) })
  const port = await listen(t, server)
  assert.match(await exchange(t, port, '\x00\x01 custom binary\r\n\r\n'), /^HTTP\/1\.1 400 /)
  assert.deepEqual(decisions.map((d) => [d.route, d.protocol]), [['redirect', 'unknown']])
})

test('on a port without tls, TLS goes to the catch-all route (passthrough) instead of being closed', T, async (t) => {
  const server = createServer(() => {})
  const seen: ConnectionInfo[] = []
  server.route('fallback', { match: 'unknown', handler: (s, info) => { seen.push(info); s.destroy() } })
  const port = await listen(t, server)
  const socket = tls.connect({ port, host: '127.0.0.1', servername: 'example.com', rejectUnauthorized: false })
  socket.on('error', () => {})
  await closed(socket)
  assert.equal(seen.length, 1)
  assert.equal(seen[0].protocol, 'tls')
  assert.equal(server.stats().closed['no-route'], 0)
})
