/**
 * Proxy routes read the upstream into a buffer of their own, reused from read to read, that
 * grows after reads that fill it and shrinks after small ones, and that no read may touch
 * while a write to the client still refers to it. These tests drive those turns over real
 * loopback sockets, with backpressure and half-close both ways, and check the bytes end to
 * end: a buffer overwritten under a pending write, or a stale tail after a shrink, changes
 * the hash.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { createHash } from 'node:crypto'
import net, { type AddressInfo } from 'node:net'
import { createServer } from '../../src/node.js'
import type { MuxServer } from '../../src/server.js'
import { delay, listen, until } from '../helpers.js'

const T = { timeout: 60_000 }
const KiB = 1024
const MiB = 1024 * KiB

/** Sizes that cross every step of the read buffer (512 B, 8 KiB, 64 KiB) both ways. */
const SIZES = [1, 100, 512, 513, 700, 8 * KiB, 8 * KiB + 1, 9000, 64 * KiB, 200 * KiB, 3, 1 * MiB, 40, 5000]

/** Deterministic bytes for block `i`: each block differs, so a stale or repeated buffer shows. */
function block (i: number, size: number): Buffer {
  const b = Buffer.allocUnsafe(size)
  let x = (i + 1) * 2654435761 >>> 0
  for (let k = 0; k < size; k++) {
    x = (x * 1103515245 + 12345) >>> 0
    b[k] = x >>> 24
  }
  return b
}

/** Write blocks of `SIZES` (cycled) until `total` bytes, waiting for 'drain', then end; resolves with their sha256. */
async function sendBlocks (socket: net.Socket, total: number, seed: number): Promise<string> {
  const hash = createHash('sha256')
  let sent = 0
  for (let i = 0; sent < total; i++) {
    const b = block(seed + i, Math.min(SIZES[i % SIZES.length], total - sent))
    hash.update(b)
    sent += b.length
    if (!socket.write(b)) {
      await new Promise<void>((resolve, reject) => {
        const onDrain = (): void => { socket.off('close', onClose); resolve() }
        const onClose = (): void => { socket.off('drain', onDrain); reject(new Error('closed while writing')) }
        socket.once('drain', onDrain)
        socket.once('close', onClose)
      })
    }
    // Now and then a pause, so that some reads are short.
    if (i % 7 === 3) await delay(1)
  }
  socket.end()
  return hash.digest('hex')
}

/**
 * Hash what arrives until 'end'. With `slow`, stop reading for a while after every 256 KiB,
 * long enough for the socket buffers on the way to fill: the mux's writes to this socket are
 * then taken only in part, and it reads on while some are still pending.
 */
function hashIncoming (socket: net.Socket, slow: boolean): Promise<{ bytes: number, sha256: string }> {
  const hash = createHash('sha256')
  let bytes = 0
  let sincePause = 0
  socket.on('data', (d: Buffer) => {
    bytes += d.length
    hash.update(d)
    sincePause += d.length
    if (slow && sincePause >= 256 * KiB) {
      sincePause = 0
      socket.pause()
      setTimeout(() => socket.resume(), 15)
    }
  })
  return new Promise((resolve, reject) => {
    socket.once('end', () => { resolve({ bytes, sha256: hash.digest('hex') }) })
    socket.once('close', () => { reject(new Error('closed before its end')) })
  })
}

async function upstreamServer (t: TestContext, onConnection: (socket: net.Socket) => void): Promise<number> {
  const sockets: net.Socket[] = []
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    sockets.push(socket)
    socket.on('error', () => {})
    onConnection(socket)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.after(async () => {
    for (const s of sockets) s.destroy()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return (server.address() as AddressInfo).port
}

async function mux (t: TestContext, upstreamPort: number): Promise<{ server: MuxServer, port: number }> {
  const server = createServer((_req, res) => { res.end('http') })
  server.route('blocks', { match: { prefix: 'BLK ' }, proxy: { port: upstreamPort } })
  return { server, port: await listen(t, server) }
}

async function client (t: TestContext, port: number): Promise<net.Socket> {
  const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true })
  t.after(() => { socket.destroy() })
  await once(socket, 'connect')
  return socket
}

function allClosed (server: MuxServer): () => boolean {
  return () => {
    const s = server.stats()
    return s.pending === 0 && (s.open.routes.blocks ?? 0) === 0
  }
}

for (const [name, slowClient, slowUpstream] of [
  ['fast readers', false, false],
  ['a slow client (the mux holds what it read for it)', true, false],
  ['slow readers both ways', true, true]
] as const) {
  test(`both ways at once, mixed sizes, half-close both ways: every byte exact with ${name}`, T, async (t) => {
    const total = 24 * MiB
    let downSent: Promise<string> | undefined
    let upReceived: Promise<{ bytes: number, sha256: string }> | undefined
    const head = Buffer.from('BLK both\n')
    const port = await upstreamServer(t, (socket) => {
      upReceived = hashIncoming(socket, slowUpstream)
      downSent = sendBlocks(socket, total, 1000)
      downSent.catch(() => {})
    })
    const { server, port: muxPort } = await mux(t, port)
    const c = await client(t, muxPort)
    const downReceived = hashIncoming(c, slowClient)
    c.write(head)
    await sendBlocks(c, total, 5000)
    const down = await downReceived
    await until(() => downSent !== undefined && upReceived !== undefined, 5000, 'the upstream to start')
    assert.equal(down.bytes, total)
    assert.equal(down.sha256, await (downSent as Promise<string>))
    const up = await (upReceived as Promise<{ bytes: number, sha256: string }>)
    // The upstream receives the sniffed bytes, then the blocks.
    assert.equal(up.bytes, head.length + total)
    assert.equal(up.sha256, hashOf(head, total, 5000))
    await until(allClosed(server), 5000, 'open counts at zero')
  })
}

/** The sha256 of `head` followed by the blocks `sendBlocks(…, total, seed)` writes. */
function hashOf (head: Buffer, total: number, seed: number): string {
  const hash = createHash('sha256').update(head)
  let sent = 0
  for (let i = 0; sent < total; i++) {
    const b = block(seed + i, Math.min(SIZES[i % SIZES.length], total - sent))
    hash.update(b)
    sent += b.length
  }
  return hash.digest('hex')
}

test('small replies after a bulk answer (the read buffer shrinks back) arrive exact, each one alone', T, async (t) => {
  // A large answer grows the upstream's read buffer; then one line per request, each shorter
  // than the bytes last read, so a stale tail of an earlier read would show in the reply.
  const bulk = block(7, 3 * MiB)
  const port = await upstreamServer(t, (socket) => {
    let buffered = ''
    socket.on('data', (d: Buffer) => {
      buffered += d.toString('latin1')
      let eol: number
      while ((eol = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, eol)
        buffered = buffered.slice(eol + 1)
        if (line === 'BLK bulk') socket.write(bulk)
        else socket.write(`pong ${line.slice(5)}\n`)
      }
    })
    socket.on('end', () => socket.end())
  })
  const { server, port: muxPort } = await mux(t, port)
  const c = await client(t, muxPort)
  const chunks: Buffer[] = []
  let length = 0
  const waiters: Array<() => void> = []
  c.on('data', (d: Buffer) => {
    chunks.push(d)
    length += d.length
    for (const w of waiters.splice(0)) w()
  })
  const read = async (n: number): Promise<Buffer> => {
    while (length < n) await new Promise<void>((resolve) => waiters.push(resolve))
    const all = Buffer.concat(chunks)
    chunks.length = 0
    chunks.push(all.subarray(n))
    length -= n
    return all.subarray(0, n)
  }
  c.write('BLK bulk\n')
  assert.ok((await read(bulk.length)).equals(bulk), 'the bulk answer is exact')
  for (let i = 0; i < 40; i++) {
    c.write(`ping ${i}\n`)
    const expected = `pong ${i}\n`
    assert.equal((await read(expected.length)).toString('latin1'), expected)
    assert.equal(length, 0, 'nothing beyond the reply')
  }
  c.end()
  await once(c, 'end')
  await until(allClosed(server), 5000, 'open counts at zero')
})

test('an upstream trickling small writes to a client that stopped reading: every byte exact', T, async (t) => {
  // The client reads nothing for a while, so every buffer on the way fills while the upstream
  // goes on with small writes: the mux's writes to the client are left pending on the bytes
  // it read, and the reads that follow must not land where a pending write still points.
  const total = 12 * MiB
  const piece = 700
  let sent: Promise<string> | undefined
  const port = await upstreamServer(t, (socket) => {
    socket.resume()
    sent = (async () => {
      const hash = createHash('sha256')
      for (let i = 0, off = 0; off < total; i++, off += piece) {
        const b = block(i, Math.min(piece, total - off))
        hash.update(b)
        if (!socket.write(b)) await once(socket, 'drain')
        else if (i % 4 === 0) await new Promise((resolve) => setImmediate(resolve))
      }
      socket.end()
      return hash.digest('hex')
    })()
    sent.catch(() => {})
  })
  const { server, port: muxPort } = await mux(t, port)
  const c = await client(t, muxPort)
  c.write('BLK trickle\n')
  c.pause()
  await delay(400)
  const received = hashIncoming(c, true)
  c.resume()
  const got = await received
  c.end()
  await until(() => sent !== undefined, 5000, 'the upstream to start')
  assert.equal(got.bytes, total)
  assert.equal(got.sha256, await (sent as Promise<string>))
  await until(allClosed(server), 5000, 'open counts at zero')
})
