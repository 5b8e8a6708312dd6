/**
 * The pipeline over real sockets: sniffing, holding, limits, timers, early closes and
 * hand-off with the sniffed bytes replayed.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import net from 'node:net'
import tls from 'node:tls'
import { createServer } from '../../src/node.js'
import type { ConnectionInfo, MuxOptions, TcpRoute } from '../../src/types.js'
import type { MuxServer } from '../../src/server.js'
import { closed, connect, delay, exchange, listen, readAll, testCertificate, until } from '../helpers.js'

async function muxWith (t: Parameters<typeof listen>[0], options: MuxOptions = {}, handler?: Parameters<typeof createServer>[0]): Promise<{ server: MuxServer, port: number }> {
  const server = createServer(handler ?? ((_req, res) => { res.end('http') }), options)
  const port = await listen(t, server)
  return { server, port }
}

const echo = (socket: net.Socket): void => { socket.pipe(socket) }

test('a prefix route decides only on the whole prefix, and replays every sniffed byte', async (t) => {
  const seen: ConnectionInfo[] = []
  const { server, port } = await muxWith(t)
  server.route('echo', { match: { prefix: 'ECHO ' }, handler: (s, info) => { seen.push(info); echo(s) } })
  const socket = await connect(t, port)
  const clientPort = socket.localPort
  const reply = readAll(socket)
  for (const ch of 'ECHO one byte at a time') {
    socket.write(ch)
    await delay(2)
  }
  socket.end('\n')
  assert.equal((await reply).toString(), 'ECHO one byte at a time\n')
  assert.equal(seen.length, 1)
  assert.equal(seen[0].route, 'echo')
  assert.equal(seen[0].protocol, 'custom')
  assert.equal(seen[0].bytes.toString(), 'ECHO ')
  assert.equal(seen[0].remoteAddress, '127.0.0.1')
  assert.equal(seen[0].remotePort, clientPort)
  assert.equal(seen[0].localPort, port)
})

test('a route answering "more" holds the decision against later routes', async (t) => {
  const { server, port } = await muxWith(t)
  let calls = 0
  server.route('slow', {
    match: (bytes) => { calls++; return bytes.length < 8 ? 'more' : bytes[7] === 0x21 ? 'match' : 'no' },
    handler: (s) => { s.end('slow\n') }
  })
  server.route('fast', { match: { prefix: 'AB' }, handler: (s) => { s.end('fast\n') } })
  const a = await connect(t, port)
  const replyA = readAll(a)
  a.write('ABCD')
  await delay(30)
  a.write('EFG!')
  assert.equal((await replyA).toString(), 'slow\n')
  assert.ok(calls >= 2)
  // The same start, but the holding route then says no: the next route takes it.
  assert.equal(await exchange(t, port, 'ABCDEFGH'), 'fast\n')
})

test('routes come before the built-in HTTP handling; "no" from every route falls through to HTTP', async (t) => {
  const { server, port } = await muxWith(t)
  server.route('ssh-like', { match: /^SSH-/, handler: (s) => { s.end('ssh\n') } })
  assert.equal(await exchange(t, port, 'SSH-2.0-test\r\n'), 'ssh\n')
  const http = await exchange(t, port, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
  assert.match(http, /^HTTP\/1\.1 200 OK/)
  assert.match(http, /\r\n\r\nhttp$/)
})

test('a silent client is closed at sniffTimeout, counted, while others are served', async (t) => {
  const { server, port } = await muxWith(t, { sniffTimeout: 150 })
  server.route('echo', { match: { prefix: 'ECHO ' }, handler: echo })
  const silent = await connect(t, port)
  const silentClosed = closed(silent)
  assert.equal(await exchange(t, port, 'ECHO x\n', { end: true }), 'ECHO x\n')
  await silentClosed
  await until(() => server.stats().closed['sniff-timeout'] === 1, 5000, 'sniff-timeout count')
  assert.equal(server.stats().pending, 0)
})

test('the sniff timer is cleared at the decision: a decided connection outlives sniffTimeout', async (t) => {
  const { server, port } = await muxWith(t, { sniffTimeout: 100 })
  server.route('echo', { match: { prefix: 'ECHO ' }, handler: echo })
  const socket = await connect(t, port)
  const reply = readAll(socket)
  socket.write('ECHO a\n')
  await delay(350)
  assert.equal(socket.destroyed, false)
  socket.end('ECHO b\n')
  assert.equal((await reply).toString(), 'ECHO a\nECHO b\n')
  assert.equal(server.stats().closed['sniff-timeout'], 0)
})

test('the sniff timer is cleared for HTTPS: keep-alive requests after sniffTimeout still work', async (t) => {
  const { key, cert } = await testCertificate()
  const { server, port } = await muxWith(t, { sniffTimeout: 100, tls: { key, cert } })
  const socket = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] })
  t.after(() => socket.destroy())
  await once(socket, 'secureConnect')
  let data = ''
  socket.setEncoding('utf8')
  socket.on('data', (d: string) => { data += d })
  socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
  await until(() => data.endsWith('http'), 5000, 'first response')
  await delay(300)
  socket.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
  await closed(socket)
  assert.equal(data.match(/HTTP\/1\.1 200 OK/g)?.length, 2)
  assert.equal(server.stats().closed['sniff-timeout'], 0)
})

test('maxSniffBytes: an undecided route stops holding and the bytes are judged as they are', async (t) => {
  const { server, port } = await muxWith(t, { maxSniffBytes: 64, sniffTimeout: 10_000 })
  server.route('never', { match: () => 'more', handler: (s) => { s.end('never\n') } })
  const reply = await exchange(t, port, 'A'.repeat(100) + '\r\n\r\n')
  assert.match(reply, /^HTTP\/1\.1 400 Bad Request/)
})

test('client FIN while undecided: judged on what arrived, or closed as client-closed', async (t) => {
  const { server, port } = await muxWith(t)
  server.route('echo', { match: { prefix: 'ECHO ' }, handler: echo })
  // "EC" can no longer become "ECHO ": the route lets go, and HTTP answers the garbage.
  assert.match(await exchange(t, port, 'EC', { end: true }), /^HTTP\/1\.1 400/)
  // Half a TLS record header stays undecided: closed.
  assert.equal(await exchange(t, port, Buffer.from([0x16]), { end: true }), '')
  // Nothing at all.
  assert.equal(await exchange(t, port, '', { end: true }), '')
  await until(() => server.stats().closed['client-closed'] === 2, 5000, 'client-closed count')
})

test('data and FIN together: the route still gets every byte and then the end', async (t) => {
  const { server, port } = await muxWith(t)
  server.route('echo', { match: { prefix: 'ECHO ' }, handler: echo })
  assert.equal(await exchange(t, port, 'ECHO fin\n', { end: true }), 'ECHO fin\n')
})

test('half-close: a reply written after the client FIN arrives', async (t) => {
  const { server, port } = await muxWith(t)
  server.route('late', {
    match: { prefix: 'LATE' },
    handler: (s) => {
      s.resume()
      s.on('end', () => { setTimeout(() => s.end('after your FIN\n'), 20) })
    }
  })
  assert.equal(await exchange(t, port, 'LATE', { end: true }), 'after your FIN\n')
})

test('a reset while sniffing is counted and cleaned up', async (t) => {
  const { server, port } = await muxWith(t)
  const socket = await connect(t, port)
  socket.write(Buffer.from([0x16]))
  await until(() => server.stats().pending === 1, 5000, 'pending')
  socket.resetAndDestroy()
  await until(() => server.stats().pending === 0, 5000, 'pending back to 0')
  const { closed: c } = server.stats()
  assert.equal(c['client-error'] + c['client-closed'], 1)
})

test('TLS on a port without TLS options is closed as no-route', async (t) => {
  const { server, port } = await muxWith(t)
  const socket = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false })
  socket.on('error', () => {})
  await closed(socket)
  await until(() => server.stats().closed['no-route'] === 1, 5000, 'no-route count')
})

test('a matcher that throws counts as "no" and is reported; a handler that throws destroys its socket', async (t) => {
  const { server, port } = await muxWith(t)
  const warnings: Error[] = []
  server.on('warning', (err: Error) => warnings.push(err))
  server.route('broken', { match: () => { throw new Error('boom') }, handler: echo })
  server.route('bad-handler', { match: { prefix: 'BAD' }, handler: () => { throw new Error('handler boom') } })
  server.route('echo', { match: { prefix: 'ECHO ' }, handler: echo })
  assert.equal(await exchange(t, port, 'ECHO y\n', { end: true }), 'ECHO y\n')
  assert.equal(await exchange(t, port, 'BAD'), '')
  const codes = warnings.map((w) => (w as Error & { code: string }).code)
  assert.ok(codes.includes('PORTMUX_ERR_MATCHER'))
  assert.ok(codes.includes('PORTMUX_ERR_HANDLER'))
  assert.ok((server.stats().errors.PORTMUX_ERR_MATCHER ?? 0) >= 1)
})

test('routes added while listening are seen by new connections', async (t) => {
  const { server, port } = await muxWith(t)
  const before = await exchange(t, port, 'PING\r\n\r\n')
  assert.match(before, /^HTTP\/1\.1 400/)
  server.route('ping', { match: { prefix: 'PING' }, handler: (s) => { s.end('PONG') } })
  assert.equal(await exchange(t, port, 'PING\r\n\r\n'), 'PONG')
})

test('route() validates: duplicate names, bad matches, missing handler', async () => {
  const server = createServer()
  server.route('a', { match: 'ssh', handler: echo })
  assert.throws(() => server.route('a', { match: 'ssh', handler: echo }), { code: 'PORTMUX_ERR_DUPLICATE_ROUTE' })
  assert.throws(() => server.route('b', { match: 'gopher' as 'ssh', handler: echo }), { code: 'PORTMUX_ERR_INVALID_ROUTE' })
  assert.throws(() => server.route('c', { match: [], handler: echo }), { code: 'PORTMUX_ERR_INVALID_ROUTE' })
  assert.throws(() => server.route('d', { match: { prefix: '' }, handler: echo }), { code: 'PORTMUX_ERR_INVALID_ROUTE' })
  // @ts-expect-error neither handler nor proxy: a type error, and refused at run time too
  assert.throws(() => server.route('e', { match: 'ssh' }), { code: 'PORTMUX_ERR_INVALID_ROUTE' })
  assert.throws(() => server.route('', { match: 'ssh', handler: echo }), { code: 'PORTMUX_ERR_INVALID_ROUTE' })
  assert.throws(() => server.route('f', { match: { tls: { sni: [] } }, handler: echo }), { code: 'PORTMUX_ERR_INVALID_ROUTE' })
})

test('route() validates each route kind\'s fields where the kind is defined, and a refused route leaves nothing behind', () => {
  const server = createServer()
  const bad: Array<[string, unknown, RegExp]> = [
    ['both', { match: 'ssh', handler: echo, proxy: { port: 22 } }, /exactly one of handler or proxy/],
    ['handler', { match: 'ssh', handler: 'echo' }, /handler must be a function/],
    ['proxy', { match: 'ssh', proxy: 22 }, /proxy must be \{ host\?, port/],
    ['port', { match: 'ssh', proxy: { port: 70000 } }, /proxy\.port must be an integer from 1 to 65535/],
    ['host', { match: 'ssh', proxy: { host: '', port: 22 } }, /proxy\.host must be a non-empty string/],
    ['version', { match: 'ssh', proxy: { port: 22, proxyProtocol: 3 } }, /proxy\.proxyProtocol must be 1 or 2/],
    ['connect', { match: 'ssh', proxy: { port: 22, connectTimeout: 0 } }, /proxy\.connectTimeout must be an integer/],
    ['idle', { match: 'ssh', handler: echo, idleTimeout: 1.5 }, /idleTimeout must be an integer/],
    ['max', { match: 'ssh', handler: echo, maxConnections: -1 }, /maxConnections must be an integer/],
    ['terminate', { match: 'tls', handler: echo, terminateTls: 'yes' }, /terminateTls must be a boolean/],
    ['tls', { match: 'tls', handler: echo, terminateTls: true }, /terminateTls needs the mux's tls option/]
  ]
  for (const [name, route, message] of bad) {
    assert.throws(() => server.route(name, route as TcpRoute), (err: Error & { code?: string }) => err.code === 'PORTMUX_ERR_INVALID_ROUTE' && message.test(err.message), name)
  }
  // None of them was added: each name is free for a valid route.
  for (const [name] of bad) server.route(name, { match: { prefix: name }, handler: echo })
  assert.deepEqual(Object.keys(server.stats().open.routes).sort(), bad.map(([n]) => n).sort())
})

test('a "timeout" route takes clients that stay silent', async (t) => {
  const { server, port } = await muxWith(t, { sniffTimeout: 80 })
  const infos: ConnectionInfo[] = []
  server.route('banner', { match: 'timeout', handler: (s, info) => { infos.push(info); s.end('220 hello\r\n') } })
  const socket = await connect(t, port)
  assert.equal((await readAll(socket)).toString(), '220 hello\r\n')
  assert.equal(infos[0].protocol, 'timeout')
  assert.equal(infos[0].bytes.length, 0)
})

test('close(): sniffing clients are closed at once; raw-route sockets get closeGrace, then are destroyed', async (t) => {
  const { server, port } = await muxWith(t, { sniffTimeout: 60_000, closeGrace: 100 })
  server.route('hold', { match: { prefix: 'HOLD' }, handler: () => { /* never reads, never ends */ } })
  const silent = await connect(t, port)
  const held = await connect(t, port)
  held.write('HOLD')
  await until(() => server.stats().open.routes.hold === 1, 5000, 'routed')
  const silentClosed = closed(silent)
  const heldClosed = closed(held)
  const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()))
  await silentClosed
  assert.equal(held.destroyed, false, 'the raw route keeps its grace period')
  await heldClosed
  await serverClosed
  assert.equal(server.stats().closed['server-closing'], 1)
})

test('stats: open counts return to zero when clients leave', async (t) => {
  const { server, port } = await muxWith(t)
  server.route('echo', { match: { prefix: 'ECHO ' }, handler: echo })
  await exchange(t, port, 'ECHO z\n', { end: true })
  await exchange(t, port, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
  await until(() => server.stats().open.routes.echo === 0 && server.stats().open.http === 0, 5000, 'open counts at zero')
  const s = server.stats()
  assert.equal(s.accepted, 2)
  assert.equal(s.decided.routes.echo, 1)
  assert.equal(s.decided.http, 1)
  assert.equal(s.pending, 0)
})
