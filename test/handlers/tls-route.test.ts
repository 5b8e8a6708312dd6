/**
 * TLS routes over real sockets: SNI passthrough to an upstream with its own certificate,
 * SNI pattern rules (wildcards, case, trailing dot), TLS termination for custom protocols
 * chosen by ALPN, route validation, handshakes that fail or stall, and a ClientHello that
 * arrives after `sniffTimeout`.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { X509Certificate } from 'node:crypto'
import http2 from 'node:http2'
import net, { type AddressInfo } from 'node:net'
import tls from 'node:tls'
import { createServer } from '../../src/node.js'
import { devCertificate, type KeyAndCertificate } from '../../src/dev-certificate.js'
import type { MuxServer } from '../../src/server.js'
import type { ConnectionInfo, MuxOptions } from '../../src/types.js'
import { connect, listen, readAll, testCertificate, until } from '../helpers.js'

const T = { timeout: 20_000 }

// ---------------------------------------------------------------------------------------------
// Plumbing

let upstreamCert: Promise<KeyAndCertificate> | undefined
/** The upstream's own certificate (not the mux's), made once per process. */
function passCertificate (): Promise<KeyAndCertificate> {
  upstreamCert ??= devCertificate({ hosts: ['pass.test', '*.pass.test'] })
  return upstreamCert
}

function fingerprint (pem: string): string {
  return new X509Certificate(pem).fingerprint256
}

/** A mux with the test certificate whose app answers `app <protocol> <httpVersion>`. */
async function tlsMux (t: TestContext, options: MuxOptions = {}): Promise<{ server: MuxServer, port: number, fp: string }> {
  const { key, cert } = await testCertificate()
  const server = createServer((req, res) => {
    res.end(`app ${(req.socket as tls.TLSSocket).encrypted === true ? 'https' : 'http'} ${req.httpVersion}`)
  }, { tls: { key, cert }, ...options })
  const port = await listen(t, server)
  return { server, port, fp: fingerprint(cert) }
}

/**
 * A `node:tls` upstream with its own certificate: it answers the first bytes it receives with
 * `upstream <servername>` and closes. Resolves with its port and certificate fingerprint.
 */
async function tlsUpstream (t: TestContext): Promise<{ port: number, fp: string, names: Array<string | false> }> {
  const { key, cert } = await passCertificate()
  const names: Array<string | false> = []
  const sockets = new Set<net.Socket>()
  const server = tls.createServer({ key, cert }, (socket) => {
    names.push(socket.servername ?? false)
    socket.on('error', () => {})
    socket.once('data', () => { socket.end(`upstream ${String(socket.servername)}\n`) })
  })
  server.on('connection', (s: net.Socket) => { sockets.add(s); s.on('close', () => sockets.delete(s)) })
  server.on('tlsClientError', () => {})
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.after(async () => {
    for (const s of sockets) s.destroy()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return { port: (server.address() as AddressInfo).port, fp: fingerprint(cert), names }
}

interface Handshake {
  /** The certificate the client was shown. */
  fp: string
  alpn: string | false | null
  /** Whatever the server sent until it closed (for the upstream: its greeting). */
  text: string
}

/**
 * Connect with TLS, note the certificate, send an HTTP/1.1 request (or what `onSecure`
 * sends) and read until the server closes.
 */
async function handshake (t: TestContext, port: number, options: tls.ConnectionOptions = {}, onSecure: (s: tls.TLSSocket) => void = httpsGet): Promise<Handshake> {
  const socket = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false, ...options })
  t.after(() => { socket.destroy() })
  socket.on('error', () => {})
  const all = readAll(socket)
  await once(socket, 'secureConnect')
  const result = { fp: socket.getPeerCertificate().fingerprint256, alpn: socket.alpnProtocol as string | false | null }
  onSecure(socket)
  return { ...result, text: (await all).toString() }
}

/** An HTTP/1.1 request that closes the connection after the response. */
function httpsGet (socket: tls.TLSSocket): void {
  socket.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
}

// ---------------------------------------------------------------------------------------------
// SNI passthrough

test('{ tls: { sni } } with proxy: pass.test reaches the upstream\'s own certificate, other names get HTTPS from the app', T, async (t) => {
  const up = await tlsUpstream(t)
  const { server, port, fp: muxFp } = await tlsMux(t)
  server.route('pass', { match: { tls: { sni: 'pass.test' } }, proxy: { port: up.port } })
  assert.notEqual(up.fp, muxFp)

  const pass = await handshake(t, port, { servername: 'pass.test' })
  assert.equal(pass.fp, up.fp, 'the upstream\'s certificate, end to end')
  assert.equal(pass.text, 'upstream pass.test\n')
  assert.deepEqual(up.names, ['pass.test'], 'the upstream saw the ClientHello untouched')

  const other = await handshake(t, port, { servername: 'other.test', ALPNProtocols: ['http/1.1'] })
  assert.equal(other.fp, muxFp)
  assert.match(other.text, /^HTTP\/1\.1 200 OK/)
  assert.match(other.text, /\r\n\r\napp https 1\.1$/)

  // No SNI at all (an IP address): HTTPS too.
  const none = await handshake(t, port, { ALPNProtocols: ['http/1.1'] })
  assert.equal(none.fp, muxFp)
  assert.match(none.text, /app https 1\.1$/)

  await until(() => server.stats().open.routes.pass === 0 && server.stats().open.https === 0, 5000, 'open counts at zero')
  const s = server.stats()
  assert.equal(s.decided.routes.pass, 1)
  assert.equal(s.decided.https, 2)
  assert.equal(s.proxy.connected, 1)
})

test('wildcard *.pass.test matches exactly one label: a.pass.test, not pass.test nor a.b.pass.test', T, async (t) => {
  const up = await tlsUpstream(t)
  const { server, port, fp: muxFp } = await tlsMux(t)
  server.route('wild', { match: { tls: { sni: '*.pass.test' } }, proxy: { port: up.port } })
  for (const [name, expected] of [
    ['a.pass.test', up.fp],
    ['xn--caf-dma.pass.test', up.fp],
    ['pass.test', muxFp],
    ['a.b.pass.test', muxFp],
    ['apass.test', muxFp],
    ['a.pass.test.evil', muxFp]
  ] as const) {
    const h = await handshake(t, port, { servername: name, ALPNProtocols: ['http/1.1'] })
    assert.equal(h.fp, expected, `${name} → ${expected === up.fp ? 'upstream' : 'mux'}`)
  }
  assert.equal(server.stats().decided.routes.wild, 2)
})

test('SNI patterns compare case-insensitively and ignore a trailing dot, on both sides', T, async (t) => {
  const up = await tlsUpstream(t)
  const { server, port, fp: muxFp } = await tlsMux(t)
  server.route('exact', { match: { tls: { sni: 'Pass.TEST.' } }, proxy: { port: up.port } })
  server.route('wild', { match: { tls: { sni: ['nothing.example', '*.Wild.Test'] } }, proxy: { port: up.port } })
  const cases: Array<[string, string]> = [
    ['pass.test', 'exact'],
    ['PASS.test', 'exact'],
    ['pass.test.', 'exact'],
    ['A.WILD.test', 'wild'],
    ['b.wild.test.', 'wild'],
    ['wild.test', 'none']
  ]
  for (const [name, route] of cases) {
    const before = server.stats().decided.routes
    const h = await handshake(t, port, { servername: name, ALPNProtocols: ['http/1.1'] })
    const after = server.stats().decided.routes
    if (route === 'none') {
      assert.equal(h.fp, muxFp, `${name} stays HTTPS`)
      assert.deepEqual(after, before)
    } else {
      assert.equal(h.fp, up.fp, `${name} → ${route}`)
      assert.equal(after[route], before[route] + 1, `${name} → ${route}`)
    }
  }
})

// ---------------------------------------------------------------------------------------------
// terminateTls: custom protocols over TLS, chosen by ALPN

/** A tiny line protocol: `PING x` → `PONG x`, `QUIT` → `BYE` and close. */
function lineProtocol (socket: net.Socket): void {
  let buffered = ''
  socket.setEncoding('utf8')
  socket.on('data', (d: string) => {
    buffered += d
    let nl: number
    while ((nl = buffered.indexOf('\n')) !== -1) {
      const line = buffered.slice(0, nl)
      buffered = buffered.slice(nl + 1)
      if (line === 'QUIT') socket.end('BYE\n')
      else if (line.startsWith('PING ')) socket.write(`PONG ${line.slice(5)}\n`)
      else socket.write('ERR\n')
    }
  })
}

test('terminateTls with { tls: { alpn } }: the handler speaks its protocol inside TLS; h2 and http/1.1 clients still get the app', T, async (t) => {
  const infos: ConnectionInfo[] = []
  const encrypted: boolean[] = []
  const { server, port, fp: muxFp } = await tlsMux(t)
  server.route('myproto', {
    match: { tls: { alpn: 'myproto' } },
    terminateTls: true,
    handler: (socket, info) => {
      infos.push(info)
      encrypted.push((socket as tls.TLSSocket).encrypted === true)
      lineProtocol(socket)
    }
  })

  const socket = tls.connect({ port, host: '127.0.0.1', servername: 'proto.test', ALPNProtocols: ['myproto'], rejectUnauthorized: false })
  t.after(() => { socket.destroy() })
  const all = readAll(socket)
  await once(socket, 'secureConnect')
  assert.equal(socket.alpnProtocol, 'myproto')
  assert.equal(socket.getPeerCertificate().fingerprint256, muxFp, 'the mux terminates with its own certificate')
  socket.write('PING one\nPING tw')
  socket.write('o\nQUIT\n')
  assert.equal((await all).toString(), 'PONG one\nPONG two\nBYE\n')
  assert.equal(infos.length, 1)
  assert.equal(infos[0].route, 'myproto')
  assert.equal(infos[0].protocol, 'tls')
  assert.deepEqual(infos[0].alpn, ['myproto'])
  assert.equal(infos[0].sni, 'proto.test')
  assert.equal(infos[0].remoteAddress, '127.0.0.1')
  assert.deepEqual(encrypted, [true], 'the handler gets the TLS socket')

  // The same port, ordinary HTTPS clients: HTTP/1.1 …
  const h1 = await handshake(t, port, { ALPNProtocols: ['http/1.1'] })
  assert.equal(h1.alpn, 'http/1.1')
  assert.match(h1.text, /app https 1\.1$/)
  // … and h2, offered alongside http/1.1.
  const h2socket = tls.connect({ port, host: '127.0.0.1', ALPNProtocols: ['h2', 'http/1.1'], rejectUnauthorized: false })
  t.after(() => { h2socket.destroy() })
  await once(h2socket, 'secureConnect')
  assert.equal(h2socket.alpnProtocol, 'h2')
  const session = http2.connect(`https://127.0.0.1:${port}`, { createConnection: () => h2socket })
  t.after(() => { session.destroy() })
  const req = session.request({ ':path': '/' })
  req.setEncoding('utf8')
  let body = ''
  req.on('data', (d: string) => { body += d })
  await once(req, 'end')
  session.close()
  assert.equal(body, 'app https 2.0')
  assert.equal(infos.length, 1, 'the custom route took nothing else')
  await until(() => server.stats().open.routes.myproto === 0, 5000, 'route count at zero')
})

/** A plaintext upstream: `reply` decides what it answers to what it got, when the client's data or FIN says so. */
async function plainUpstream (t: TestContext, onSocket: (s: net.Socket, received: () => string) => void): Promise<number> {
  const sockets = new Set<net.Socket>()
  const up = net.createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
    s.on('error', () => {})
    let got = ''
    s.setEncoding('utf8')
    s.on('data', (d: string) => { got += d })
    onSocket(s, () => got)
  })
  up.listen(0, '127.0.0.1')
  await once(up, 'listening')
  t.after(async () => {
    for (const s of sockets) s.destroy()
    await new Promise<void>((resolve) => up.close(() => resolve()))
  })
  return (up.address() as AddressInfo).port
}

test('terminateTls with a proxy: the upstream gets the decrypted stream', T, async (t) => {
  const upPort = await plainUpstream(t, (s, got) => {
    s.on('data', () => { if (got().endsWith('\n')) s.end(`plain upstream got ${got()}`) })
    s.on('end', () => s.end())
  })
  const { server, port, fp: muxFp } = await tlsMux(t)
  server.route('offload', { match: { tls: { sni: 'offload.test' } }, terminateTls: true, proxy: { port: upPort } })
  const h = await handshake(t, port, { servername: 'offload.test' }, (s) => { s.write('hello in clear\n') })
  assert.equal(h.fp, muxFp)
  assert.equal(h.text, 'plain upstream got hello in clear\n')
  await until(() => server.stats().open.routes.offload === 0, 5000, 'route count at zero')
  assert.equal(server.stats().proxy.connected, 1)
})

test('terminateTls with a proxy carries half-close: the answer after the client\'s close_notify and FIN arrives', T, async (t) => {
  // TLS 1.3 half-close (close_notify closes one direction), as a plain proxy route carries a FIN.
  const upPort = await plainUpstream(t, (s, got) => {
    s.on('end', () => { setTimeout(() => { s.end(`after your FIN: ${got()}`) }, 50) })
  })
  const { server, port } = await tlsMux(t)
  server.route('offload', { match: { tls: { sni: 'offload.test' } }, terminateTls: true, proxy: { port: upPort } })
  const h = await handshake(t, port, { servername: 'offload.test' }, (s) => { s.end('request') })
  assert.equal(h.text, 'after your FIN: request')
  await until(() => server.stats().open.routes.offload === 0, 5000, 'route count at zero')
})

test('terminateTls is refused without the mux\'s tls and on non-TLS matches', T, () => {
  const handler = (): void => {}
  const plain = createServer()
  assert.throws(() => plain.route('x', { match: 'tls', terminateTls: true, handler }), { code: 'PORTMUX_ERR_INVALID_ROUTE' })
  assert.throws(() => plain.route('y', { match: { tls: { alpn: 'myproto' } }, terminateTls: true, handler }), { code: 'PORTMUX_ERR_INVALID_ROUTE' })
  assert.throws(() => createServer(undefined, { routes: { z: { match: 'tls', terminateTls: true, handler } } }), { code: 'PORTMUX_ERR_INVALID_ROUTE' })

  const secured = createServer(undefined, { tls: 'dev' })
  assert.throws(() => secured.route('ssh', { match: 'ssh', terminateTls: true, handler }), { code: 'PORTMUX_ERR_INVALID_ROUTE' })
  assert.throws(() => secured.route('prefix', { match: { prefix: 'X' }, terminateTls: true, handler }), { code: 'PORTMUX_ERR_INVALID_ROUTE' })
  assert.throws(() => secured.route('timeout', { match: 'timeout', terminateTls: true, handler }), { code: 'PORTMUX_ERR_INVALID_ROUTE' })
  assert.throws(() => secured.route('mixed', { match: ['tls', /^X/], terminateTls: true, handler }), { code: 'PORTMUX_ERR_INVALID_ROUTE' })
  // The accepted forms.
  secured.route('any-tls', { match: 'tls', terminateTls: true, handler })
  secured.route('by-alpn', { match: [{ tls: { alpn: 'a' } }, { tls: { sni: 'b.test' } }], terminateTls: true, handler })
})

// ---------------------------------------------------------------------------------------------
// Handshakes that never finish on a terminating route

/** The ClientHello a real Node client sends for these options (captured on a scratch listener). */
async function captureClientHello (options: tls.ConnectionOptions): Promise<Buffer> {
  const scratch = net.createServer()
  scratch.listen(0, '127.0.0.1')
  await once(scratch, 'listening')
  try {
    const got = new Promise<Buffer>((resolve) => {
      scratch.once('connection', (s) => {
        const chunks: Buffer[] = []
        s.on('data', (d: Buffer) => {
          chunks.push(d)
          const all = Buffer.concat(chunks)
          // One handshake record: 5-byte header plus its length.
          if (all.length >= 5 && all.length >= 5 + all.readUInt16BE(3)) { resolve(all); s.destroy() }
        })
      })
    })
    const client = tls.connect({ port: (scratch.address() as AddressInfo).port, host: '127.0.0.1', rejectUnauthorized: false, ...options })
    client.on('error', () => {})
    const hello = await got
    client.destroy()
    return hello
  } finally {
    scratch.close()
  }
}

test('a terminating route whose client aborts, garbles or stalls the handshake is destroyed; nothing leaks', T, async (t) => {
  let handled = 0
  const { server, port } = await tlsMux(t, { tls: { ...(await testCertificate()), handshakeTimeout: 300 } })
  server.route('myproto', { match: { tls: { alpn: 'myproto' } }, terminateTls: true, handler: () => { handled++ } })
  const hello = await captureClientHello({ ALPNProtocols: ['myproto'], servername: 'proto.test' })

  // 1. A client that goes away as soon as the server answers its ClientHello.
  const aborting = await connect(t, port)
  aborting.on('error', () => {})
  aborting.write(hello)
  await once(aborting, 'data')
  aborting.destroy()
  await until(() => server.stats().decided.routes.myproto === 1, 5000, 'the first decision')
  await until(() => server.stats().open.routes.myproto === 0, 5000, 'the aborted handshake cleaned up')

  // 2. A ClientHello, then bytes that are not TLS: the handshake fails and the mux closes.
  const garbling = await connect(t, port)
  garbling.on('error', () => {})
  const garbled = readAll(garbling)
  garbling.write(hello)
  await until(() => server.stats().decided.routes.myproto === 2, 5000, 'the second decision')
  garbling.write(Buffer.alloc(64, 0x41))
  await garbled

  // 3. A ClientHello, then silence: closed at the handshake timeout, not kept forever.
  const stalling = await connect(t, port)
  stalling.on('error', () => {})
  const stalled = readAll(stalling)
  stalling.write(hello)
  await stalled

  await until(() => {
    const s = server.stats()
    return s.pending === 0 && s.open.routes.myproto === 0 && s.open.https === 0
  }, 5000, 'open counts at zero')
  assert.equal(server.stats().decided.routes.myproto, 3)
  assert.equal(handled, 0)
})

// ---------------------------------------------------------------------------------------------
// A slow ClientHello and the 'timeout' route

/**
 * A loopback relay in front of the mux that forwards the first `split` bytes from the
 * client at once, holds the rest until `release()`, then relays both ways untouched.
 */
async function holdingRelay (t: TestContext, target: number, split: number): Promise<{ port: number, release: () => void, forwarded: () => number }> {
  let release!: () => void
  const released = new Promise<void>((resolve) => { release = resolve })
  let forwarded = 0
  const relay = net.createServer((client) => {
    const upstream = net.connect({ port: target, host: '127.0.0.1' })
    client.on('error', () => upstream.destroy())
    upstream.on('error', () => client.destroy())
    client.on('close', () => upstream.destroy())
    upstream.on('close', () => client.destroy())
    upstream.pipe(client)
    let held: Buffer[] = []
    let open = false
    client.on('data', (d: Buffer) => {
      if (open) { upstream.write(d); forwarded += d.length; return }
      const first = Math.max(0, Math.min(d.length, split - forwarded))
      if (first > 0) { upstream.write(d.subarray(0, first)); forwarded += first }
      if (first < d.length) held.push(d.subarray(first))
    })
    released.then(() => {
      open = true
      for (const d of held) { upstream.write(d); forwarded += d.length }
      held = []
    }, () => {})
  })
  relay.listen(0, '127.0.0.1')
  await once(relay, 'listening')
  t.after(() => { release(); relay.close() })
  return { port: (relay.address() as AddressInfo).port, release, forwarded: () => forwarded }
}

test('a ClientHello cut short at sniffTimeout is judged on what arrived, not given to the \'timeout\' route', T, async (t) => {
  const up = await tlsUpstream(t)
  const sniffTimeout = 150
  const { server, port, fp: muxFp } = await tlsMux(t, { sniffTimeout })
  const timeoutRoute: ConnectionInfo[] = []
  const sshRoute: ConnectionInfo[] = []
  server.route('late', { match: { tls: { sni: 'late.test' } }, proxy: { port: up.port } })
  server.route('banner', { match: 'timeout', handler: (s, info) => { timeoutRoute.push(info); s.end('220 banner\r\n') } })
  server.route('ssh', { match: 'ssh', handler: (s, info) => { sshRoute.push(info); s.destroy() } })

  // On time, late.test is passed through to the upstream.
  const prompt = await handshake(t, port, { servername: 'late.test' })
  assert.equal(prompt.fp, up.fp)

  // A silent client is the 'timeout' route's.
  const silent = await connect(t, port)
  assert.equal((await readAll(silent)).toString(), '220 banner\r\n')
  assert.equal(timeoutRoute.length, 1)

  // Three bytes of a ClientHello, then nothing until well after the deadline: the route that
  // needed the whole hello could not decide, so the bytes are judged as they are (a TLS
  // record header: HTTPS), and the 'timeout' route, which is for silent clients, is not asked.
  const relay = await holdingRelay(t, port, 3)
  const socket = tls.connect({ port: relay.port, host: '127.0.0.1', servername: 'late.test', ALPNProtocols: ['http/1.1'], rejectUnauthorized: false })
  t.after(() => { socket.destroy() })
  socket.on('error', () => {})
  const all = readAll(socket)
  await until(() => relay.forwarded() === 3, 5000, 'the first three bytes')
  await until(() => server.stats().decided.https === 1, 5000, 'the decision at the deadline')
  relay.release()
  await once(socket, 'secureConnect')
  assert.equal(socket.getPeerCertificate().fingerprint256, muxFp, 'HTTPS, with the mux\'s certificate')
  httpsGet(socket)
  assert.match((await all).toString(), /app https 1\.1$/)
  assert.equal(timeoutRoute.length, 1, 'the timeout route got only the silent client')
  assert.equal(sshRoute.length, 0)
  const s = server.stats()
  assert.equal(s.decided.routes.late, 1)
  assert.equal(s.decided.routes.banner, 1)
  assert.equal(s.closed['sniff-timeout'], 0)
})

test('late bytes that no route or built-in can place are closed at sniffTimeout, not given to the \'timeout\' route', T, async (t) => {
  const { server, port } = await tlsMux(t, { sniffTimeout: 100 })
  let timeoutRoute = 0
  server.route('banner', { match: 'timeout', handler: (s) => { timeoutRoute++; s.end('220 banner\r\n') } })
  server.route('ssh', { match: 'ssh', handler: (s) => { s.destroy() } })
  // One byte of a TLS record header: neither TLS nor anything else yet.
  const socket = await connect(t, port)
  socket.on('error', () => {})
  socket.write(Buffer.from([0x16]))
  const reply = await readAll(socket)
  assert.equal(reply.length, 0)
  assert.equal(timeoutRoute, 0)
  await until(() => server.stats().closed['sniff-timeout'] === 1, 5000, 'sniff-timeout count')
  assert.equal(server.stats().pending, 0)
})
