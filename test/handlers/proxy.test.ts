/**
 * Proxy routes over real loopback sockets: the exact byte stream the upstream receives
 * (PROXY header, sniffed bytes, the rest), half-close both ways, every failure outcome
 * counted in `stats().proxy`, idle and connect timeouts, `maxConnections`, and 1 GiB each
 * way hashed end to end.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { createCipheriv, createHash } from 'node:crypto'
import net, { type AddressInfo } from 'node:net'
import { readFile } from 'node:fs/promises'
import { Worker } from 'node:worker_threads'
import { createServer } from '../../src/node.js'
import type { MuxServer } from '../../src/server.js'
import type { MuxOptions, ProxyTarget, TcpRoute } from '../../src/types.js'
import { parseProxyHeader } from '../../src/sniff/proxy-header.js'
import { closed, connect, delay, listen, readAll, until } from '../helpers.js'

// ---------------------------------------------------------------------------------------------
// Plumbing

async function muxWith (t: TestContext, options: MuxOptions = {}): Promise<{ server: MuxServer, port: number }> {
  const server = createServer((_req, res) => { res.end('http') }, options)
  const port = await listen(t, server)
  return { server, port }
}

/** One connection as the upstream saw it. */
interface UpstreamConn {
  socket: net.Socket
  /** Every byte received, in order. */
  received: () => Buffer
  /** Set when the mux's FIN arrived. */
  ended: boolean
  /** Resolves when the socket is closed. */
  closed: Promise<void>
}

interface Upstream {
  port: number
  conns: UpstreamConn[]
  /** Resolves with the n-th connection (0-based) once it is accepted. */
  conn: (n: number) => Promise<UpstreamConn>
}

/**
 * A loopback `net` server standing in for the upstream (half-open allowed, like a real
 * daemon that answers after the client's FIN). `onConnection` runs for every accepted socket.
 */
async function upstream (t: TestContext, onConnection: (c: UpstreamConn) => void = () => {}): Promise<Upstream> {
  const conns: UpstreamConn[] = []
  const waiters: Array<() => void> = []
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    const chunks: Buffer[] = []
    const c: UpstreamConn = {
      socket,
      received: () => Buffer.concat(chunks),
      ended: false,
      closed: closed(socket)
    }
    socket.on('error', () => {})
    socket.on('data', (d: Buffer) => { chunks.push(d) })
    socket.on('end', () => { c.ended = true })
    conns.push(c)
    onConnection(c)
    for (const w of waiters.splice(0)) w()
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.after(async () => {
    for (const c of conns) c.socket.destroy()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return {
    port: (server.address() as AddressInfo).port,
    conns,
    conn: async (n) => {
      while (conns.length <= n) await new Promise<void>((resolve) => waiters.push(resolve))
      return conns[n]
    }
  }
}

/** A half-open-capable client (it can keep sending after the other side's FIN), destroyed after the test. */
async function connectHalfOpen (t: TestContext, port: number): Promise<net.Socket> {
  const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true })
  t.after(() => { socket.destroy() })
  await once(socket, 'connect')
  return socket
}

/** A port nothing listens on (bound, then released). */
async function closedPort (): Promise<number> {
  const s = net.createServer().listen(0, '127.0.0.1')
  await once(s, 'listening')
  const port = (s.address() as AddressInfo).port
  await new Promise<void>((resolve) => s.close(() => resolve()))
  return port
}

/** The mux has nothing left open: no sniffing, no routed sockets. */
function allClosed (server: MuxServer, route: string): () => boolean {
  return () => {
    const s = server.stats()
    return s.pending === 0 && (s.open.routes[route] ?? 0) === 0
  }
}

/** No test here should take long; a hang fails at this bound rather than stalling the run. */
const T = { timeout: 20_000 }

const PMX = 'PMX '
function proxyRoute (target: ProxyTarget, extra: Partial<Omit<TcpRoute, 'handler' | 'proxy'>> = {}): TcpRoute {
  return { match: { prefix: PMX }, proxy: target, ...extra }
}

/**
 * An upstream that never accepts: a listener with backlog 1 in a worker whose event loop is
 * blocked (so nothing calls accept()), its accept queue filled by connections that the kernel
 * completed. Further SYNs are dropped, so a connect to it hangs until the caller gives up —
 * a connect timeout without leaving loopback.
 */
async function unresponsivePort (t: TestContext): Promise<number> {
  const flag = new Int32Array(new SharedArrayBuffer(4))
  const worker = new Worker(`
    const { workerData, parentPort } = require('node:worker_threads')
    const net = require('node:net')
    const server = net.createServer().listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {
      parentPort.postMessage(server.address().port)
      Atomics.wait(workerData, 0, 0)
    })
  `, { eval: true, workerData: flag })
  const fillers: net.Socket[] = []
  t.after(async () => {
    for (const s of fillers) s.destroy()
    Atomics.store(flag, 0, 1)
    Atomics.notify(flag, 0)
    await worker.terminate()
  })
  const [port] = await once(worker, 'message') as [number]
  // Fill the accept queue: connect until one connection stays unanswered. A connection
  // that completes late (this process was busy) was in the queue after all: keep filling.
  for (let i = 0; i < 64; i++) {
    const s = net.connect({ port, host: '127.0.0.1' })
    let connected = false
    s.on('error', () => {})
    s.once('connect', () => { connected = true })
    fillers.push(s)
    await Promise.race([once(s, 'connect'), delay(300)])
    if (!connected) await delay(300)
    if (!connected) return port
  }
  throw new Error('could not fill the accept queue of the blocked listener')
}

// ---------------------------------------------------------------------------------------------
// Bulk data: a seeded keystream (AES-128-CTR over zeros), written with backpressure.

const MiB = 1024 * 1024
const GiB = 1024 * MiB
const CHUNK = 256 * 1024

function keystream (seed: string): (n: number) => Buffer {
  const key = createHash('sha256').update(seed).digest().subarray(0, 16)
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16))
  const zeros = Buffer.alloc(CHUNK)
  return (n) => cipher.update(n === CHUNK ? zeros : zeros.subarray(0, n))
}

/** Resolves on 'drain'; rejects if the socket closes first. */
function drained (socket: net.Socket): Promise<void> {
  return new Promise((resolve, reject) => {
    const onDrain = (): void => { socket.off('close', onClose); resolve() }
    const onClose = (): void => { socket.off('drain', onDrain); reject(new Error('socket closed while writing')) }
    socket.once('drain', onDrain)
    socket.once('close', onClose)
  })
}

/** Write `total` seeded pseudo-random bytes in 256 KiB chunks, then half-close; resolves with their sha256. */
async function sendRandom (socket: net.Socket, seed: string, total: number): Promise<string> {
  const next = keystream(seed)
  const hash = createHash('sha256')
  for (let sent = 0; sent < total; sent += CHUNK) {
    const chunk = next(Math.min(CHUNK, total - sent))
    hash.update(chunk)
    if (!socket.write(chunk)) await drained(socket)
  }
  socket.end()
  return hash.digest('hex')
}

/** Hash everything the socket delivers until its end (or close). */
function hashIncoming (socket: net.Socket): Promise<{ bytes: number, sha256: string }> {
  const hash = createHash('sha256')
  let bytes = 0
  socket.on('data', (d: Buffer) => { bytes += d.length; hash.update(d) })
  return new Promise((resolve) => {
    let done = false
    const finish = (): void => {
      if (done) return
      done = true
      resolve({ bytes, sha256: hash.digest('hex') })
    }
    socket.once('end', finish)
    socket.once('close', finish)
  })
}

// ---------------------------------------------------------------------------------------------
// The byte stream

test('the upstream receives the sniffed bytes, then the rest, exactly; replies come back', T, async (t) => {
  const up = await upstream(t, (c) => {
    c.socket.on('end', () => { c.socket.end(`got ${c.received().length} bytes\n`) })
  })
  const { server, port } = await muxWith(t)
  server.route('pmx', proxyRoute({ port: up.port }))
  const client = await connect(t, port)
  const reply = readAll(client)
  // The prefix arrives in pieces: the route decides on the whole of it.
  client.write('PM')
  await delay(20)
  client.write('X hel')
  const conn = await up.conn(0)
  await until(() => conn.received().length === 7, 5000, 'the sniffed bytes upstream')
  client.write('lo ')
  client.end('world\n')
  assert.equal((await reply).toString(), 'got 16 bytes\n')
  assert.equal(conn.received().toString(), 'PMX hello world\n')
  assert.equal(conn.ended, true)
  await until(allClosed(server, 'pmx'), 5000, 'open counts at zero')
  const s = server.stats()
  assert.equal(s.decided.routes.pmx, 1)
  assert.equal(s.proxy.connected, 1)
  assert.deepEqual(
    Object.entries(s.proxy).filter(([k, v]) => k !== 'connected' && v !== 0),
    [],
    'no failure outcome'
  )
})

test('data and FIN in one go: the upstream gets every byte, then the FIN; its answer still arrives', T, async (t) => {
  const up = await upstream(t, (c) => {
    c.socket.on('end', () => { c.socket.end(c.received().toString().toUpperCase()) })
  })
  const { server, port } = await muxWith(t)
  server.route('pmx', proxyRoute({ port: up.port }))
  const client = await connectHalfOpen(t, port)
  const reply = readAll(client)
  client.end('PMX all at once\n')
  assert.equal((await reply).toString(), 'PMX ALL AT ONCE\n')
  await until(allClosed(server, 'pmx'), 5000, 'open counts at zero')
})

test('proxy.host defaults to 127.0.0.1 and an explicit host works too', T, async (t) => {
  const up = await upstream(t, (c) => { c.socket.end('hi\n') })
  const { server, port } = await muxWith(t)
  server.route('implicit', { match: { prefix: 'A' }, proxy: { port: up.port } })
  server.route('explicit', { match: { prefix: 'B' }, proxy: { host: '127.0.0.1', port: up.port } })
  for (const first of ['A', 'B']) {
    const client = await connect(t, port)
    const reply = readAll(client)
    client.end(first)
    assert.equal((await reply).toString(), 'hi\n')
  }
  assert.equal(server.stats().proxy.connected, 2)
})

for (const version of [1, 2] as const) {
  test(`PROXY v${version}: the header reaches a server-speaks-first upstream at once, before any client byte`, T, async (t) => {
    // The upstream speaks first (an SMTP/FTP-like banner) and only listens afterwards.
    const up = await upstream(t, (c) => {
      c.socket.write('220 banner\r\n')
      c.socket.on('end', () => c.socket.end())
    })
    const { server, port } = await muxWith(t, { sniffTimeout: 100 })
    server.route('banner', { match: 'timeout', proxy: { port: up.port, proxyProtocol: version } })
    const client = await connect(t, port)
    let fromUpstream = ''
    client.setEncoding('latin1')
    client.on('data', (d: string) => { fromUpstream += d })
    const conn = await up.conn(0)
    // The client has sent nothing: the header must arrive by itself, complete.
    await until(() => parseProxyHeader(conn.received()).verdict === 'match', 5000, 'a complete PROXY header with no client byte')
    await until(() => fromUpstream === '220 banner\r\n', 5000, 'the banner')
    const parsed = parseProxyHeader(conn.received())
    assert.equal(parsed.verdict, 'match')
    if (parsed.verdict !== 'match') return
    assert.equal(conn.received().length, parsed.length, 'nothing but the header yet')
    const h = parsed.header
    assert.equal(h.version, version)
    assert.equal(h.command, 'proxy')
    assert.equal(h.family, 'tcp4')
    assert.deepEqual(h.source, { address: client.localAddress, port: client.localPort })
    assert.deepEqual(h.destination, { address: '127.0.0.1', port })
    // Now the client talks: its bytes follow the header, unchanged.
    client.write('EHLO client\r\n')
    await until(() => conn.received().length === parsed.length + 13, 5000, 'the client line upstream')
    assert.equal(conn.received().subarray(parsed.length).toString(), 'EHLO client\r\n')
    client.end()
    await until(allClosed(server, 'banner'), 5000, 'open counts at zero')
  })

  test(`PROXY v${version}: header first, then the sniffed bytes, then the rest`, T, async (t) => {
    const up = await upstream(t, (c) => { c.socket.on('end', () => c.socket.end()) })
    const { server, port } = await muxWith(t)
    server.route('pmx', proxyRoute({ port: up.port, proxyProtocol: version }))
    const client = await connect(t, port)
    const me = { address: client.localAddress, port: client.localPort }
    const done = readAll(client)
    client.write('PMX sniffed')
    const conn = await up.conn(0)
    await until(() => conn.received().includes('PMX sniffed'), 5000, 'the sniffed bytes upstream')
    client.end(' and the rest')
    await done
    await conn.closed
    const all = conn.received()
    const parsed = parseProxyHeader(all)
    assert.equal(parsed.verdict, 'match')
    if (parsed.verdict !== 'match') return
    assert.equal(parsed.header.version, version)
    assert.deepEqual(parsed.header.source, me)
    assert.deepEqual(parsed.header.destination, { address: '127.0.0.1', port })
    assert.equal(all.subarray(parsed.length).toString(), 'PMX sniffed and the rest')
  })
}

// ---------------------------------------------------------------------------------------------
// Half-close

test('half-close, client first: the upstream sees the end, and its later reply reaches the client', T, async (t) => {
  const up = await upstream(t, (c) => {
    c.socket.on('end', () => {
      setTimeout(() => { c.socket.end(`after your FIN: ${c.received().toString()}`) }, 50)
    })
  })
  const { server, port } = await muxWith(t)
  server.route('pmx', proxyRoute({ port: up.port }))
  const client = await connectHalfOpen(t, port)
  const reply = readAll(client)
  client.write('PMX question')
  const conn = await up.conn(0)
  await until(() => conn.received().length === 12, 5000, 'the request upstream')
  client.end()
  await until(() => conn.ended, 5000, 'the FIN upstream')
  assert.equal(conn.socket.destroyed, false, 'the upstream can still answer')
  assert.equal((await reply).toString(), 'after your FIN: PMX question')
  await until(allClosed(server, 'pmx'), 5000, 'open counts at zero')
})

test('half-close, upstream first: the client sees the end and can still send', T, async (t) => {
  const up = await upstream(t, (c) => {
    c.socket.end('bye, but I am listening\n')
    c.socket.on('end', () => { c.socket.destroy() })
  })
  const { server, port } = await muxWith(t)
  server.route('pmx', proxyRoute({ port: up.port }))
  const client = await connectHalfOpen(t, port)
  let got = ''
  client.setEncoding('utf8')
  client.on('data', (d: string) => { got += d })
  client.write('PMX hello')
  await once(client, 'end')
  assert.equal(got, 'bye, but I am listening\n')
  client.write(' and more after your FIN')
  const conn = await up.conn(0)
  await until(() => conn.received().length === 33, 5000, 'the late bytes upstream')
  assert.equal(conn.received().toString(), 'PMX hello and more after your FIN')
  client.end()
  await conn.closed
  assert.equal(conn.ended, true)
  await closed(client)
  await until(allClosed(server, 'pmx'), 5000, 'open counts at zero')
})

// ---------------------------------------------------------------------------------------------
// Failures, each counted once

test('connectTimeout: an upstream that never completes the handshake closes the client, counted', T, async (t) => {
  const dead = await unresponsivePort(t)
  const { server, port } = await muxWith(t)
  server.route('pmx', proxyRoute({ port: dead, connectTimeout: 200 }))
  const client = await connect(t, port)
  client.on('error', () => {})
  const reply = readAll(client)
  client.write('PMX anyone?')
  assert.equal((await reply).length, 0)
  await until(allClosed(server, 'pmx'), 5000, 'open counts at zero')
  const p = server.stats().proxy
  assert.equal(p['connect-timeout'], 1)
  assert.equal(p.connected, 0)
  assert.equal(p['upstream-refused'], 0)
})

test('upstream refused (closed port): the client is closed, counted as upstream-refused', T, async (t) => {
  const { server, port } = await muxWith(t)
  server.route('pmx', proxyRoute({ port: await closedPort() }))
  const client = await connect(t, port)
  client.on('error', () => {})
  const reply = readAll(client)
  client.write('PMX hello?')
  assert.equal((await reply).length, 0)
  await until(allClosed(server, 'pmx'), 5000, 'open counts at zero')
  const p = server.stats().proxy
  assert.equal(p['upstream-refused'], 1)
  assert.equal(p.connected, 0)
  assert.equal(p['connect-timeout'], 0)
})

test('the upstream resets mid-transfer: the client is closed, counted as upstream-error', T, async (t) => {
  const up = await upstream(t, (c) => {
    c.socket.once('data', () => {
      c.socket.write('partial answer')
      setTimeout(() => { c.socket.resetAndDestroy() }, 30)
    })
  })
  const { server, port } = await muxWith(t)
  server.route('pmx', proxyRoute({ port: up.port }))
  const client = await connect(t, port)
  client.on('error', () => {})
  const reply = readAll(client)
  client.write('PMX go')
  assert.equal((await reply).toString(), 'partial answer')
  await until(allClosed(server, 'pmx'), 5000, 'open counts at zero')
  const p = server.stats().proxy
  assert.equal(p['upstream-error'], 1)
  assert.equal(p.connected, 1)
  assert.equal(p['client-error'], 0)
})

test('the client resets: the upstream is closed, counted as client-error', T, async (t) => {
  // The upstream closes its side when the mux's side ends, as a daemon would.
  const up = await upstream(t, (c) => { c.socket.on('end', () => c.socket.end()) })
  const { server, port } = await muxWith(t)
  server.route('pmx', proxyRoute({ port: up.port }))
  const client = await connect(t, port)
  client.write('PMX going away')
  const conn = await up.conn(0)
  await until(() => conn.received().length === 14, 5000, 'the bytes upstream')
  client.resetAndDestroy()
  await conn.closed
  await until(allClosed(server, 'pmx'), 5000, 'open counts at zero')
  const p = server.stats().proxy
  assert.equal(p['client-error'], 1)
  assert.equal(p['upstream-error'], 0)
})

// An abort must stay an abort: a clean FIN in its place tells the other side that a
// truncated stream was complete (an EOF-delimited download, an upload cut short).

test('an upstream reset reaches the client as a reset, not as a clean end', T, async (t) => {
  const up = await upstream(t, (c) => {
    c.socket.once('data', () => {
      c.socket.write('partial')
      setTimeout(() => { c.socket.resetAndDestroy() }, 30)
    })
  })
  const { server, port } = await muxWith(t)
  server.route('pmx', proxyRoute({ port: up.port }))
  const client = await connect(t, port)
  let error: NodeJS.ErrnoException | undefined
  let cleanEnd = false
  client.on('error', (err) => { error = err })
  client.on('end', () => { cleanEnd = true })
  const reply = readAll(client)
  client.write('PMX go')
  assert.equal((await reply).toString(), 'partial')
  assert.equal(cleanEnd, false, 'the client was told the stream ended cleanly')
  assert.equal(error?.code, 'ECONNRESET')
})

test('a client reset reaches the upstream as a reset, not as a clean end', T, async (t) => {
  let error: NodeJS.ErrnoException | undefined
  let cleanEnd = false
  const up = await upstream(t, (c) => {
    c.socket.on('error', (err) => { error = err })
    c.socket.on('end', () => { cleanEnd = true; c.socket.end() })
  })
  const { server, port } = await muxWith(t)
  server.route('pmx', proxyRoute({ port: up.port }))
  const client = await connect(t, port)
  client.write('PMX upload, cut short')
  const conn = await up.conn(0)
  await until(() => conn.received().length === 21, 5000, 'the bytes upstream')
  client.resetAndDestroy()
  await conn.closed
  assert.equal(cleanEnd, false, 'the upstream was told the upload ended cleanly')
  assert.equal(error?.code, 'ECONNRESET')
})

test('idleTimeout closes a silent spliced pair, counted; traffic in either direction keeps it open', T, async (t) => {
  const up = await upstream(t, (c) => {
    c.socket.on('end', () => c.socket.end())
    // The second connection gets a trickle from upstream only.
    if (up.conns.length === 2) {
      const timer = setInterval(() => { c.socket.write('.') }, 50)
      c.socket.on('close', () => clearInterval(timer))
    }
  })
  const { server, port } = await muxWith(t)
  server.route('pmx', proxyRoute({ port: up.port }, { idleTimeout: 1000 }))

  const silent = await connect(t, port)
  silent.on('error', () => {})
  const silentDone = readAll(silent)
  silent.write('PMX hush')
  const silentConn = await up.conn(0)
  await Promise.all([silentDone, silentConn.closed])
  assert.equal(server.stats().proxy['idle-timeout'], 1)

  const busy = await connect(t, port)
  busy.on('error', () => {})
  let dots = 0
  busy.on('data', (d: Buffer) => { dots += d.length })
  busy.write('PMX chatter')
  await up.conn(1)
  // Two and a half idle periods with the upstream talking all along.
  await until(() => dots >= 50, 10_000, 'a steady trickle')
  assert.equal(busy.destroyed, false)
  assert.equal(server.stats().proxy['idle-timeout'], 1)
  busy.end()
  await until(allClosed(server, 'pmx'), 5000, 'open counts at zero')
})

test('maxConnections: 1 — a second concurrent connection is closed at once and counted', T, async (t) => {
  const up = await upstream(t, (c) => { c.socket.on('end', () => c.socket.end()) })
  const { server, port } = await muxWith(t)
  server.route('pmx', proxyRoute({ port: up.port }, { maxConnections: 1 }))
  const first = await connect(t, port)
  const firstDone = readAll(first)
  first.write('PMX one')
  const conn = await up.conn(0)
  await until(() => conn.received().length === 7, 5000, 'the first connection upstream')

  const second = await connect(t, port)
  second.on('error', () => {})
  const secondReply = readAll(second)
  second.write('PMX two')
  assert.equal((await secondReply).length, 0)
  assert.equal(server.stats().closed['max-connections'], 1)
  assert.equal(up.conns.length, 1, 'the second never reached the upstream')
  assert.equal(first.destroyed, false)

  first.end()
  await firstDone
  await until(allClosed(server, 'pmx'), 5000, 'the first is gone')
  // The slot is free again.
  const third = await connect(t, port)
  const thirdDone = readAll(third)
  third.end('PMX three')
  await thirdDone
  assert.equal((await up.conn(1)).received().toString(), 'PMX three')
  await until(allClosed(server, 'pmx'), 5000, 'open counts at zero')
  const s = server.stats()
  assert.equal(s.closed['max-connections'], 1)
  assert.equal(s.decided.routes.pmx, 2)
  assert.equal(s.proxy.connected, 2)
})

test('stats: after a mix of outcomes every open count is back to 0', T, async (t) => {
  const up = await upstream(t, (c) => { c.socket.on('end', () => c.socket.end('ok')) })
  const { server, port } = await muxWith(t)
  server.route('good', { match: { prefix: 'G' }, proxy: { port: up.port } })
  server.route('refused', { match: { prefix: 'R' }, proxy: { port: await closedPort() } })
  const sockets = await Promise.all([0, 1, 2, 3].map(async () => await connect(t, port)))
  const done = sockets.map((s) => { s.on('error', () => {}); return readAll(s) })
  sockets[0].end('G1')
  sockets[1].end('R1')
  sockets[2].write('G2')
  sockets[3].write('R2')
  await until(() => up.conns.length === 2, 5000, 'two upstream connections')
  sockets[2].resetAndDestroy()
  await Promise.all([done[0], done[1], done[3]])
  await until(() => {
    const s = server.stats()
    return s.pending === 0 && s.open.routes.good === 0 && s.open.routes.refused === 0
  }, 5000, 'open counts at zero')
  const p = server.stats().proxy
  assert.equal(p.connected, 2)
  assert.equal(p['upstream-refused'], 2)
  assert.equal(p['client-error'], 1)
})

// ---------------------------------------------------------------------------------------------
// Bulk: 1 GiB each way, hashed on both ends

test('1 GiB client → upstream through a proxy route arrives intact', { timeout: 120_000 }, async (t) => {
  let upstreamResult: Promise<{ bytes: number, sha256: string }> | undefined
  const up = await upstream(t, (c) => {
    // Hash what arrives (the recorder's copy is dropped: no need to keep 1 GiB).
    c.socket.removeAllListeners('data')
    upstreamResult = hashIncoming(c.socket)
    c.socket.on('end', () => c.socket.end())
  })
  const { server, port } = await muxWith(t)
  server.route('bulk', { match: { prefix: Buffer.from(keystream('up')(4)) }, proxy: { port: up.port } })
  const client = await connectHalfOpen(t, port)
  const clientClosed = closed(client)
  client.resume()
  const started = process.hrtime.bigint()
  const sent = await sendRandom(client, 'up', GiB)
  await clientClosed
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  t.diagnostic(`1 GiB client → upstream in ${seconds.toFixed(2)} s (${(1024 / seconds).toFixed(0)} MiB/s incl. generation and hashing)`)
  assert.ok(upstreamResult !== undefined)
  const got = await upstreamResult
  assert.equal(got.bytes, GiB)
  assert.equal(got.sha256, sent)
  await until(allClosed(server, 'bulk'), 5000, 'open counts at zero')
})

test('1 GiB upstream → client through a proxy route arrives intact', { timeout: 120_000 }, async (t) => {
  let upstreamSent: Promise<string> | undefined
  const up = await upstream(t, (c) => {
    c.socket.removeAllListeners('data')
    c.socket.resume()
    upstreamSent = sendRandom(c.socket, 'down', GiB)
    upstreamSent.catch(() => {})
  })
  const { server, port } = await muxWith(t)
  server.route('bulk', { match: { prefix: 'GET ' }, proxy: { port: up.port } })
  const client = await connectHalfOpen(t, port)
  const received = hashIncoming(client)
  const started = process.hrtime.bigint()
  client.write('GET 1GiB\n')
  const got = await received
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  t.diagnostic(`1 GiB upstream → client in ${seconds.toFixed(2)} s (${(1024 / seconds).toFixed(0)} MiB/s incl. generation and hashing)`)
  client.end()
  assert.ok(upstreamSent !== undefined)
  const sent = await upstreamSent
  assert.equal(got.bytes, GiB)
  assert.equal(got.sha256, sent)
  await until(allClosed(server, 'bulk'), 5000, 'open counts at zero')
})

test('a download after the client half-closed its request arrives whole, to a slow reader (16 MiB)', T, async (t) => {
  // `nc -q`/`curl --data` style: the request and the client's FIN first, then a large answer
  // and the upstream's FIN. The reader is slow, so the mux still holds unsent bytes for it
  // when the upstream's side closes: they must be flushed before the client is closed.
  let upstreamSent: Promise<string> | undefined
  const up = await upstream(t, (c) => {
    c.socket.on('end', () => {
      upstreamSent = sendRandom(c.socket, 'after-fin', 16 * MiB)
      upstreamSent.catch(() => {})
    })
  })
  const { server, port } = await muxWith(t)
  server.route('bulk', { match: { prefix: 'GET ' }, proxy: { port: up.port } })
  const client = await connectHalfOpen(t, port)
  const received = hashIncoming(client)
  client.on('data', () => {
    client.pause()
    setTimeout(() => client.resume(), 1)
  })
  client.end('GET 16MiB\n')
  const got = await received
  await until(() => upstreamSent !== undefined, 5000, 'the upstream to start')
  const sent = await (upstreamSent as Promise<string>)
  assert.equal(got.bytes, 16 * MiB)
  assert.equal(got.sha256, sent)
  await until(allClosed(server, 'bulk'), 5000, 'open counts at zero')
})

// ---------------------------------------------------------------------------------------------
// Resets under backpressure: the side that resets is not being read (the other side stopped
// reading, so its data has nowhere to go), and nothing is being written to it.
//
// What the far end received is read from the kernel, not from Node: a reset that arrives
// behind unread bytes is reported by libuv as a clean end once those are read (it takes the
// hang-up flag after a short read for EOF), so only the kernel tells a RST from a FIN here: a
// socket that received a FIN stays in /proc/net/tcp in CLOSE_WAIT, one that was reset leaves
// the table although its descriptor is still open.

/** Write 64 KiB chunks until writes stop draining: every buffer on the way is full. */
async function fillUntilStalled (socket: net.Socket): Promise<void> {
  const chunk = Buffer.alloc(64 * 1024, 0x61)
  for (;;) {
    if (socket.write(chunk)) continue
    const drainedInTime = await Promise.race([once(socket, 'drain').then(() => true), delay(300).then(() => false)])
    if (!drainedInTime) return
  }
}

const TCP_STATES: Record<string, string> = { '01': 'ESTABLISHED', '08': 'CLOSE_WAIT' }

/** The kernel's TCP state of this open IPv4 socket (from /proc/net/tcp); `reset` once it left the table. */
async function tcpState (socket: net.Socket): Promise<string> {
  const hex = (port: number | undefined): string => (port ?? 0).toString(16).toUpperCase().padStart(4, '0')
  const local = `0100007F:${hex(socket.localPort)}`
  const remote = `0100007F:${hex(socket.remotePort)}`
  const table = await readFile('/proc/net/tcp', 'latin1')
  for (const line of table.split('\n')) {
    const cols = line.trim().split(/\s+/)
    if (cols[1] === local && cols[2] === remote) return TCP_STATES[cols[3]] ?? cols[3]
  }
  return 'reset'
}

const STALLED = 5

test('a client that resets while its upstream is not reading is noticed: the reset is passed on, counted', T, async (t) => {
  const up = await upstream(t, (c) => {
    c.socket.removeAllListeners('data')
    c.socket.pause()
  })
  const { server, port } = await muxWith(t)
  server.route('pmx', proxyRoute({ port: up.port }))
  const clients = await Promise.all(Array.from({ length: STALLED }, async () => await connect(t, port)))
  for (const client of clients) client.write('PMX ')
  await Promise.all(clients.map(fillUntilStalled))
  assert.equal(up.conns.length, STALLED)
  for (const client of clients) client.resetAndDestroy()
  await until(allClosed(server, 'pmx'), 10_000, 'open counts at zero')
  const states = await Promise.all(up.conns.map(async (c) => await tcpState(c.socket)))
  assert.deepEqual(states, Array(STALLED).fill('reset'), 'each upstream was reset (CLOSE_WAIT would be a FIN)')
  const p = server.stats().proxy
  assert.equal(p['client-error'], STALLED)
  assert.equal(p['upstream-error'], 0)
})

test('an upstream that resets while the client is not reading is noticed: the reset is passed on, counted', T, async (t) => {
  const up = await upstream(t, (c) => {
    c.socket.removeAllListeners('data')
    c.socket.resume()
  })
  const { server, port } = await muxWith(t)
  server.route('pmx', proxyRoute({ port: up.port }))
  const clients = await Promise.all(Array.from({ length: STALLED }, async () => await connect(t, port)))
  for (const client of clients) {
    client.pause()
    client.on('error', () => {})
    client.write('PMX ')
  }
  await until(() => up.conns.length === STALLED, 5000, 'every upstream connection')
  await Promise.all(up.conns.map(async (c) => { await fillUntilStalled(c.socket) }))
  for (const c of up.conns) c.socket.resetAndDestroy()
  await until(allClosed(server, 'pmx'), 10_000, 'open counts at zero')
  const states = await Promise.all(clients.map(tcpState))
  assert.deepEqual(states, Array(STALLED).fill('reset'), 'each client was reset (CLOSE_WAIT would be a FIN)')
  const p = server.stats().proxy
  assert.equal(p['upstream-error'], STALLED)
  assert.equal(p['client-error'], 0)
})

// ---------------------------------------------------------------------------------------------
// Resets that end a finished conversation: the side that resets had been given everything the
// other side sent, its FIN included. PostgreSQL over TLS ends this way (the server reads the
// client's Terminate, answers close_notify and closes with the client's own close_notify
// still unread: a RST, in place of its FIN).

test('a server that resets after its client\'s FIN ends the session normally: not counted as an error', T, async (t) => {
  const up = await upstream(t, (c) => {
    c.socket.on('end', () => {
      c.socket.write('BYE\n', () => { setTimeout(() => { c.socket.resetAndDestroy() }, 30) })
    })
  })
  const { server, port } = await muxWith(t)
  server.route('pmx', proxyRoute({ port: up.port }))
  const client = await connectHalfOpen(t, port)
  client.on('error', () => {})
  const reply = readAll(client)
  client.end('PMX QUIT\n')
  assert.equal((await reply).toString(), 'BYE\n')
  assert.equal((await up.conn(0)).received().toString(), 'PMX QUIT\n')
  await until(allClosed(server, 'pmx'), 5000, 'open counts at zero')
  const p = server.stats().proxy
  assert.equal(p.connected, 1)
  assert.equal(p['upstream-error'], 0)
  assert.equal(p['client-error'], 0)
})

test('a client that resets after the upstream\'s FIN reached it ends the session normally: not counted as an error', T, async (t) => {
  const up = await upstream(t, (c) => { c.socket.once('data', () => { c.socket.end('done\n') }) })
  const { server, port } = await muxWith(t)
  server.route('pmx', proxyRoute({ port: up.port }))
  const client = await connectHalfOpen(t, port)
  let got = ''
  client.setEncoding('latin1')
  client.on('data', (d: string) => { got += d })
  client.write('PMX hello\n')
  await once(client, 'end')
  assert.equal(got, 'done\n')
  await delay(30)
  client.resetAndDestroy()
  const conn = await up.conn(0)
  await conn.closed
  await until(allClosed(server, 'pmx'), 5000, 'open counts at zero')
  const p = server.stats().proxy
  assert.equal(p.connected, 1)
  assert.equal(p['client-error'], 0)
  assert.equal(p['upstream-error'], 0)
})

test('bytes and a reset back to back from the upstream reach the client as a reset, never as a clean end', T, async (t) => {
  // libuv reports a hang-up that follows a short read as EOF: the mux must not take the reset
  // right behind the last bytes for a FIN. The clients read nothing until the mux is done, so
  // that what they were sent is read from the kernel (see tcpState).
  const up = await upstream(t, (c) => {
    c.socket.once('data', () => {
      c.socket.write('partial answer')
      c.socket.resetAndDestroy()
    })
  })
  const { server, port } = await muxWith(t)
  server.route('pmx', proxyRoute({ port: up.port }))
  const N = 10
  const clients: net.Socket[] = []
  for (let i = 0; i < N; i++) {
    const client = await connect(t, port)
    client.pause()
    client.on('error', () => {})
    client.write('PMX go')
    clients.push(client)
  }
  await until(allClosed(server, 'pmx'), 5000, 'open counts at zero')
  const states = await Promise.all(clients.map(tcpState))
  assert.deepEqual(states, Array(N).fill('reset'), 'every client was reset (CLOSE_WAIT is a FIN)')
  assert.equal(server.stats().proxy['upstream-error'], N)
})
