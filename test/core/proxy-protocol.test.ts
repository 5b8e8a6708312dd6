/**
 * PROXY protocol in: headers from trusted peers are read, removed before sniffing, and
 * their client address becomes what everything above sees; nobody else is believed.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import tls from 'node:tls'
import Fastify from 'fastify'
import express from 'express'
import { createServer } from '../../src/node.js'
import { portmux, serverFactory } from '../../src/fastify.js'
import { encodeProxyV1 } from '../../src/sniff/proxy-v1.js'
import { encodeProxyV2 } from '../../src/sniff/proxy-v2.js'
import type { ConnectionInfo } from '../../src/types.js'
import { closed, connect, delay, exchange, listen, readAll, testCertificate, until } from '../helpers.js'

const client = { address: '203.0.113.7', port: 51234 }
const server6 = { address: '2001:db8::1', port: 443 }
const v1 = encodeProxyV1({ source: client, destination: { address: '192.0.2.1', port: 443 } })
const v2 = encodeProxyV2({ source: client, destination: { address: '192.0.2.1', port: 443 } })
const GET = 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'

const whoami = (req: { socket: { remoteAddress?: string, remotePort?: number } }, res: { end: (s: string) => void }): void => {
  res.end(`${req.socket.remoteAddress ?? '?'} ${String(req.socket.remotePort)}`)
}

for (const [name, header] of [['v1', v1], ['v2', v2]] as const) {
  test(`${name} header from a trusted peer: plaintext HTTP sees the client it names`, async (t) => {
    const server = createServer(whoami, { proxyProtocol: { trusted: ['127.0.0.0/8', '::1'] } })
    const port = await listen(t, server)
    const reply = await exchange(t, port, Buffer.concat([header, Buffer.from(GET)]))
    assert.match(reply, /\r\n\r\n203\.0\.113\.7 51234$/)
    assert.equal(server.stats().proxyHeaders, 1)
  })

  test(`${name} header, then TLS: HTTPS sees the client it names`, async (t) => {
    const { key, cert } = await testCertificate()
    const server = createServer(whoami, { tls: { key, cert }, proxyProtocol: { trusted: ['127.0.0.1'] } })
    const port = await listen(t, server)
    const raw = await connect(t, port)
    raw.write(header)
    const socket = tls.connect({ socket: raw, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] })
    await once(socket, 'secureConnect')
    const reply = readAll(socket)
    socket.write(GET)
    assert.match((await reply).toString(), /\r\n\r\n203\.0\.113\.7 51234$/)
  })
}

test('the header split over many writes, IPv6 addresses, and a raw route\'s info', async (t) => {
  const infos: ConnectionInfo[] = []
  const server = createServer(undefined, { proxyProtocol: { trusted: ['127.0.0.1'] } })
  server.route('echo', { match: { prefix: 'ECHO ' }, handler: (s, info) => { infos.push(info); s.pipe(s) } })
  const port = await listen(t, server)
  const header = encodeProxyV2({ source: { address: '2001:db8::7', port: 4000 }, destination: server6 })
  const socket = await connect(t, port)
  const reply = readAll(socket)
  for (const b of header) {
    socket.write(Buffer.of(b))
    await delay(1)
  }
  socket.end('ECHO six\n')
  assert.equal((await reply).toString(), 'ECHO six\n')
  assert.equal(infos[0].remoteAddress, '2001:db8::7')
  assert.equal(infos[0].remotePort, 4000)
  assert.equal(infos[0].bytes.toString(), 'ECHO six\n', 'the sniffed bytes, without the header')
})

test('a v2 LOCAL header keeps the real address', async (t) => {
  const server = createServer(whoami, { proxyProtocol: { trusted: ['127.0.0.1'], required: true } })
  const port = await listen(t, server)
  const reply = await exchange(t, port, Buffer.concat([encodeProxyV2({ command: 'local' }), Buffer.from(GET)]))
  assert.match(reply, /\r\n\r\n127\.0\.0\.1 \d+$/)
})

test('an untrusted peer\'s header is never believed', async (t) => {
  const server = createServer(whoami, { proxyProtocol: { trusted: ['10.0.0.0/8', 'fd00::/8'] } })
  const port = await listen(t, server)
  const reply = await exchange(t, port, Buffer.concat([v1, Buffer.from(GET)]))
  assert.doesNotMatch(reply, /203\.0\.113\.7/)
  assert.match(reply, /^HTTP\/1\.1 400/)
  assert.equal(server.stats().proxyHeaders, 0)
})

test('required: no header or a broken one closes the connection, counted', async (t) => {
  const server = createServer(whoami, { proxyProtocol: { trusted: ['127.0.0.1'], required: true } })
  const port = await listen(t, server)
  assert.equal(await exchange(t, port, GET), '')
  assert.equal(await exchange(t, port, 'PROXY TCP4 not-an-address 192.0.2.1 1 2\r\n' + GET), '')
  assert.equal(await exchange(t, port, Buffer.concat([v2.subarray(0, 12), Buffer.from([0x99, 0, 0, 0])])), '')
  await until(() => server.stats().closed['proxy-header'] === 3, 5000, 'proxy-header count')
})

test('not required: a trusted peer may also connect without a header; a broken header still closes', async (t) => {
  const server = createServer(whoami, { proxyProtocol: { trusted: ['127.0.0.1'] } })
  const port = await listen(t, server)
  assert.match(await exchange(t, port, GET), /\r\n\r\n127\.0\.0\.1 \d+$/)
  assert.equal(await exchange(t, port, 'PROXY TCP4 1.2.3.4\r\n' + GET), '')
})

test('Fastify request.ip and Express req.ip are the client from the header', async (t) => {
  const app = Fastify({ serverFactory: serverFactory({ proxyProtocol: { trusted: ['127.0.0.1'] } }) })
  await app.register(portmux)
  app.get('/', async (request) => request.ip)
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.after(() => app.close())
  const fport = (app.server.address() as { port: number }).port
  assert.match(await exchange(t, fport, Buffer.concat([v1, Buffer.from(GET)])), /\r\n\r\n203\.0\.113\.7$/)

  const e = express()
  e.get('/', (req, res) => { res.send(req.ip) })
  const server = createServer(e, { proxyProtocol: { trusted: ['127.0.0.1'] } })
  const eport = await listen(t, server)
  assert.match(await exchange(t, eport, Buffer.concat([v2, Buffer.from(GET)])), /\r\n\r\n203\.0\.113\.7$/)
})

test('maxPending: beyond it new connections are closed at once, counted', async (t) => {
  const server = createServer(undefined, { maxPending: 2, sniffTimeout: 60_000 })
  const port = await listen(t, server)
  await connect(t, port)
  await connect(t, port)
  await until(() => server.stats().pending === 2, 5000, 'two pending')
  const third = await connect(t, port)
  await closed(third)
  assert.equal(server.stats().closed['max-pending'], 1)
  assert.equal(server.stats().pending, 2)
})

test('proxyProtocol options are checked', () => {
  for (const trusted of [[], ['nonsense'], ['10.0.0.0/33'], ['::1/129'], ['1.2.3.4/x']]) {
    assert.throws(() => createServer(undefined, { proxyProtocol: { trusted } }), { code: 'PORTMUX_ERR_INVALID_OPTION' })
  }
})
