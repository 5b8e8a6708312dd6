/**
 * The limits on connections in their first stage: per source, TLS handshakes counted until
 * they finish, each close counted under its own reason, refusals at accept time reported,
 * and every reported error counted.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import http2 from 'node:http2'
import net from 'node:net'
import { execFileSync } from 'node:child_process'
import https from 'node:https'
import { createServer } from '../../src/node.js'
import { sourceKey } from '../../src/core/sources.js'
import type { PortmuxError } from '../../src/errors.js'
import type { RefusalInfo } from '../../src/types.js'
import { closed, connect, delay, listen, testCertificate, until } from '../helpers.js'

const T = { timeout: 60_000 }

function fdLimit (): number {
  try {
    return Number(execFileSync('sh', ['-c', 'ulimit -n']).toString().trim())
  } catch {
    return 1024
  }
}

test('sourceKey: IPv4 as it is, IPv4-mapped as IPv4, IPv6 by its /64', () => {
  assert.equal(sourceKey('127.0.0.1'), '127.0.0.1')
  assert.equal(sourceKey('::ffff:10.1.2.3'), '10.1.2.3')
  assert.equal(sourceKey('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64')
  assert.equal(sourceKey('2001:db8:1:2:bbbb::9'), sourceKey('2001:0db8:0001:0002::'))
  assert.notEqual(sourceKey('2001:db8:1:3::1'), sourceKey('2001:db8:1:2::1'))
  assert.equal(sourceKey('fe80::1%eth0'), 'fe80:0:0:0::/64')
  assert.equal(sourceKey(undefined), undefined)
  assert.equal(sourceKey('not an address'), undefined)
})

test('one source cannot fill every sniffing slot: its silent flood is capped, another address is served', T, async (t) => {
  const flood = Math.min(600, Math.floor((fdLimit() - 300) / 2))
  if (flood < 300) {
    t.skip('too few file descriptors for a flood')
    return
  }
  const { key, cert } = await testCertificate()
  const server = createServer((_req, res) => { res.end('served') }, { tls: { key, cert }, sniffTimeout: 20_000 })
  const refusals: RefusalInfo[] = []
  server.on('refusal', (info: RefusalInfo) => { refusals.push(info) })
  const port = await listen(t, server)

  const sockets: net.Socket[] = []
  t.after(() => { for (const s of sockets) s.destroy() })
  for (let i = 0; i < flood; i += 100) {
    await Promise.all(Array.from({ length: Math.min(100, flood - i) }, async () => {
      const s = net.connect({ port, host: '127.0.0.1', localAddress: '127.0.0.1' })
      s.on('error', () => {})
      sockets.push(s)
      await once(s, 'connect')
    }))
  }
  await until(() => server.stats().closed['max-pending-per-source'] === flood - 256, 10_000, 'the flood capped at 256')
  assert.equal(server.stats().pending, 256)
  assert.ok(refusals.every((r) => r.reason === 'max-pending-per-source' && r.remoteAddress === '127.0.0.1'))
  assert.equal(refusals.length, flood - 256)

  // Another address gets every request through while the flood holds its share.
  const bodies = await Promise.all(Array.from({ length: 20 }, async () => await new Promise<string>((resolve, reject) => {
    https.get({ host: '127.0.0.1', port, localAddress: '127.0.0.2', rejectUnauthorized: false, agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => { body += d })
      res.on('end', () => { resolve(body) })
    }).on('error', reject)
  })))
  assert.deepEqual(bodies, Array(20).fill('served'))
  assert.equal(server.stats().pending, 256)
})

test('a TLS start and then silence stays counted against maxPending until its handshake is done', T, async (t) => {
  const { key, cert } = await testCertificate()
  const server = createServer(() => {}, { tls: { key, cert, handshakeTimeout: 20_000 }, maxPending: 50, sniffTimeout: 20_000 })
  const port = await listen(t, server)
  const sockets: net.Socket[] = []
  t.after(() => { for (const s of sockets) s.destroy() })
  await Promise.all(Array.from({ length: 300 }, async () => {
    const s = net.connect({ port, host: '127.0.0.1' })
    s.on('error', () => {})
    sockets.push(s)
    await once(s, 'connect')
    s.write(Buffer.from([0x16, 0x03, 0x01]))
  }))
  await until(() => server.stats().closed['max-pending'] === 250, 10_000, '250 closed at accept')
  const s = server.stats()
  assert.equal(s.pending + s.handshakes, 50)
  assert.ok(s.handshakes > 0, 'judged TLS at once, and counted while in the handshake')
})

test('a TLS handshake must finish within handshakeTimeout of the decision, however slowly bytes drip in', T, async (t) => {
  const { key, cert } = await testCertificate()
  const server = createServer(() => {}, { tls: { key, cert, handshakeTimeout: 300 } })
  const port = await listen(t, server)
  const socket = await connect(t, port)
  socket.on('error', () => {})
  // A ClientHello record header announcing 512 bytes, then one byte every 50 ms.
  socket.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]))
  let sent = 0
  const drip = setInterval(() => {
    if (socket.destroyed) return
    socket.write(Buffer.from([0x00]))
    sent++
  }, 50)
  t.after(() => { clearInterval(drip) })
  await closed(socket)
  clearInterval(drip)
  assert.ok(sent < 400, `closed while the hello was still dripping (${sent} bytes sent)`)
  await until(() => server.stats().handshakes === 0, 2000, 'no handshake counted')
  const c = server.stats().closed
  assert.equal(c['sniff-timeout'] + c['max-pending'], 0)
})

test('close reasons are told apart: max-connections, max-pending; refusals at accept are events', T, async (t) => {
  const server = createServer(() => {}, { maxPending: 2, sniffTimeout: 10_000 })
  server.route('one', { match: { prefix: 'ONE' }, maxConnections: 1, handler: () => {} })
  const refusals: RefusalInfo[] = []
  server.on('refusal', (info: RefusalInfo) => { refusals.push(info) })
  const port = await listen(t, server)

  const first = await connect(t, port)
  first.write('ONE')
  await until(() => server.stats().open.routes.one === 1, 5000, 'the first on its route')
  const second = await connect(t, port)
  second.resume()
  second.write('ONE')
  await closed(second)
  assert.equal(server.stats().closed['max-connections'], 1)

  await connect(t, port)
  await connect(t, port)
  await until(() => server.stats().pending === 2, 5000, 'two pending')
  const third = await connect(t, port)
  third.resume()
  await closed(third)
  assert.equal(server.stats().closed['max-pending'], 1)
  assert.deepEqual(refusals.map((r) => r.reason), ['max-connections', 'max-pending'])
  assert.equal(refusals[1].remoteAddress, '127.0.0.1')
  assert.equal(refusals[1].bytes.length, 0)
})

test('every reported error is counted: a throwing handler and a throwing matcher', T, async (t) => {
  const server = createServer(() => {})
  const warnings: PortmuxError[] = []
  server.on('warning', (err: PortmuxError) => { warnings.push(err) })
  server.route('bad-matcher', { match: () => { throw new Error('matcher') }, handler: () => {} })
  server.route('bad-handler', { match: { prefix: 'X' }, handler: () => { throw new Error('handler') } })
  const port = await listen(t, server)
  const socket = await connect(t, port)
  socket.write('X')
  await closed(socket)
  await until(() => warnings.length === 2, 5000, 'two warnings')
  assert.deepEqual(server.stats().errors, { PORTMUX_ERR_MATCHER: 1, PORTMUX_ERR_HANDLER: 1 })
})

test('an idle HTTP/2 session is closed after http2SessionTimeout', T, async (t) => {
  const { key, cert } = await testCertificate()
  const server = createServer((_req, res) => { res.end('ok') }, { tls: { key, cert }, http2SessionTimeout: 200 })
  const port = await listen(t, server)
  const session = http2.connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false })
  t.after(() => { session.destroy() })
  session.on('error', () => {})
  const req = session.request({ ':path': '/' })
  req.resume()
  await once(req, 'end')
  await once(session, 'close')
  await until(() => server.stats().open.https === 0, 2000, 'the connection gone')
  await delay(0)
})

test('an HTTP/2 session that had GOAWAY and then sits idle with a stalled stream is destroyed a timeout later', T, async (t) => {
  const { key, cert } = await testCertificate()
  // The handler never answers: the stream stays open and silent.
  const server = createServer(() => {}, { tls: { key, cert }, http2SessionTimeout: 300 })
  const port = await listen(t, server)
  const session = http2.connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false })
  t.after(() => { session.destroy() })
  session.on('error', () => {})
  const req = session.request({ ':path': '/', ':method': 'POST' })
  req.on('error', () => {})
  req.write('part of a body')
  await until(() => server.stats().open.https === 1, 5000, 'the session open')
  server.closeHttp2Sessions()
  await once(session, 'goaway')
  await once(session, 'close')
  await until(() => server.stats().open.https === 0, 5000, 'the connection gone')
})

/** Open a connection from `localAddress` that sends `first` (if any) and then stays silent. */
async function silent (t: { after: (fn: () => void) => void }, port: number, localAddress: string, first?: string): Promise<net.Socket> {
  const s = net.connect({ port, host: '127.0.0.1', localAddress })
  s.on('error', () => {})
  t.after(() => { s.destroy() })
  await once(s, 'connect')
  if (first !== undefined) s.write(first)
  return s
}

test('per-source counting starts when the pending connections reach the share, counts those already there, and starts again after they are gone', T, async (t) => {
  const server = createServer(() => {}, { maxPendingPerSource: 3, sniffTimeout: 20_000 })
  const refusals: RefusalInfo[] = []
  server.on('refusal', (info: RefusalInfo) => { refusals.push(info) })
  const port = await listen(t, server)

  for (let round = 0; round < 2; round++) {
    // Two from .1 and one from .2: three pending in all, the share. Then .1 may have one more, not two.
    const held = [await silent(t, port, '127.0.0.1'), await silent(t, port, '127.0.0.1'), await silent(t, port, '127.0.0.2')]
    await until(() => server.stats().pending === 3, 5000, 'three pending')
    held.push(await silent(t, port, '127.0.0.1'))
    await until(() => server.stats().pending === 4, 5000, 'a third from .1 is within its share')
    const over = await silent(t, port, '127.0.0.1')
    await closed(over)
    held.push(await silent(t, port, '127.0.0.2'), await silent(t, port, '127.0.0.2'))
    await until(() => server.stats().pending === 6, 5000, '.2 has its own share')
    assert.equal(server.stats().closed['max-pending-per-source'], round + 1)
    for (const s of held) s.destroy()
    await until(() => server.stats().pending === 0, 5000, 'all gone')
  }
  const perSource = refusals.filter((r) => r.reason === 'max-pending-per-source')
  assert.deepEqual(perSource.map((r) => r.remoteAddress), ['127.0.0.1', '127.0.0.1'])
})

test('behind a trusted PROXY peer, the client each header names is the source counted', T, async (t) => {
  const server = createServer(() => {}, { maxPendingPerSource: 2, sniffTimeout: 20_000, proxyProtocol: { trusted: ['127.0.0.1'] } })
  const refusals: RefusalInfo[] = []
  server.on('refusal', (info: RefusalInfo) => { refusals.push(info) })
  const port = await listen(t, server)
  const header = (client: string): string => `PROXY TCP4 ${client} 127.0.0.1 40000 443\r\n`

  // The peer itself is never counted: a header that names nobody, and one not sent yet.
  await silent(t, port, '127.0.0.1', 'PROXY UNKNOWN\r\n')
  await silent(t, port, '127.0.0.1')
  await silent(t, port, '127.0.0.1', header('10.0.0.1'))
  await silent(t, port, '127.0.0.1', header('10.0.0.1'))
  await until(() => server.stats().pending === 4 && server.stats().proxyHeaders === 3, 5000, 'four pending, three headers read')
  const over = await silent(t, port, '127.0.0.1', header('10.0.0.1'))
  await closed(over)
  await silent(t, port, '127.0.0.1', header('10.0.0.2'))
  await until(() => server.stats().pending === 5, 5000, 'another client has its own share')
  assert.deepEqual(refusals.filter((r) => r.reason === 'max-pending-per-source').map((r) => r.remoteAddress), ['10.0.0.1'])
})
