/**
 * ACME against Pebble: certificates obtained by TLS-ALPN-01 and HTTP-01 answered on the
 * mux's own port, served, kept in storage and reused.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { X509Certificate } from 'node:crypto'
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import http2 from 'node:http2'
import https from 'node:https'
import net from 'node:net'
import tls from 'node:tls'
import { createServer } from '../../src/node.js'
import type { MuxServer } from '../../src/server.js'
import type { AcmeOptions, CertificateInfo, MuxOptions } from '../../src/types.js'
import type { PortmuxError } from '../../src/errors.js'
import { caDirectoryName } from '../../src/handlers/acme/storage.js'
import { freePort, noPebble, startPebble, type Pebble } from '../interop/pebble.js'
import { delay, exchange, testCertificate, until } from '../helpers.js'

const DOMAIN = 'portmux.test'
const kTuning = Symbol.for('portmux.acme.tuning')

async function storageDir (t: TestContext): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'portmux-acme-'))
  // A temporary directory: a server still finishing a write when it goes must not fail the
  // test, nor keep the hooks after this one (closing the servers) from running.
  t.after(() => rm(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 }).catch(() => {}))
  return dir
}

interface Started { server: MuxServer, port: number, storage: string, warnings: PortmuxError[], certificates: CertificateInfo[] }

async function startMux (t: TestContext, port: number, pebble: Pick<Pebble, 'directory' | 'ca'>, acme: Partial<AcmeOptions> & { storage: string }, extra: MuxOptions = {}): Promise<Started> {
  const options: MuxOptions = {
    ...extra,
    acme: {
      domains: [DOMAIN],
      agreeToTerms: true,
      directory: pebble.directory,
      ...acme,
      [kTuning]: { ca: pebble.ca, pollInterval: 50, retryMin: 100, retryMax: 400, pollMin: 50, pollMax: 200, lockRefresh: 100, lockStale: 2000, ariRecheckMin: 100 }
    } as AcmeOptions
  }
  const server = createServer((req, res) => { res.end(`app ${req.url ?? ''}`) }, options)
  const warnings: PortmuxError[] = []
  const certificates: CertificateInfo[] = []
  server.on('warning', (err: PortmuxError) => warnings.push(err))
  server.on('certificate', (e: CertificateInfo) => certificates.push(e))
  server.listen(port, '127.0.0.1')
  await once(server, 'listening')
  t.after(async () => {
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return { server, port, storage: acme.storage, warnings, certificates }
}

/** The certificate served for DOMAIN, verified against the CA's root. */
function served (port: number, root: string, servername = DOMAIN): Promise<tls.PeerCertificate> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ port, host: '127.0.0.1', servername, ca: root, ALPNProtocols: ['http/1.1'] }, () => {
      const cert = socket.getPeerCertificate()
      socket.destroy()
      resolve(cert)
    })
    socket.once('error', reject)
  })
}

for (const challenge of ['tls-alpn-01', 'http-01'] as const) {
  test(`a certificate by ${challenge}, answered on the mux's port, is served and reused after a restart`, { skip: noPebble }, async (t) => {
    const port = await freePort()
    const pebble = await startPebble(t, { httpPort: port, tlsPort: port })
    const storage = await storageDir(t)
    const first = await startMux(t, port, pebble, { storage, challenges: [challenge] })
    while (first.certificates.length === 0) {
      if (first.warnings.length > 0) throw first.warnings[0]
      await once(first.server, 'certificate')
    }
    assert.equal(first.certificates[0].renewed, false)
    assert.deepEqual(first.certificates[0].domains, [DOMAIN])
    const root = await pebble.root()
    const cert = await served(port, root)
    assert.match(cert.subjectaltname ?? "", /DNS:portmux\.test/)
    assert.equal(pebble.issued(), 1)
    first.server.closeAllConnections()
    await new Promise<void>((resolve) => first.server.close(() => resolve()))

    // A restart serves the stored certificate from the first connection, and orders nothing.
    const second = await startMux(t, port, pebble, { storage, challenges: [challenge] })
    const again = await served(port, root)
    assert.equal(again.serialNumber, cert.serialNumber)
    assert.equal(second.certificates.length, 1)
    assert.equal(second.certificates[0].renewed, false)
    await delay(300)
    assert.equal(pebble.issued(), 1)
    assert.deepEqual(second.warnings, [])
  })
}

/** Wait for the n-th certificate event, failing on the first warning. */
async function certificate (s: Started, n = 1): Promise<CertificateInfo> {
  while (s.certificates.length < n) {
    if (s.warnings.length > 0) throw s.warnings[0]
    await Promise.race([once(s.server, 'certificate'), once(s.server, 'warning')])
  }
  return s.certificates[n - 1]
}

test('renewal: a short-lived certificate is replaced when a third of its life is left', { skip: noPebble }, async (t) => {
  const port = await freePort()
  const pebble = await startPebble(t, { httpPort: port, tlsPort: port, validity: 3 })
  const mux = await startMux(t, port, pebble, { storage: await storageDir(t) })
  const root = await pebble.root()
  const first = await certificate(mux)
  const before = await served(port, root)
  const renewed = await certificate(mux, 2)
  assert.equal(renewed.renewed, true)
  assert.ok(renewed.notAfter > first.notAfter)
  const after = await served(port, root)
  assert.notEqual(after.serialNumber, before.serialNumber)
  assert.equal(pebble.issued(), 2)
})

test('the CA down at start with a stored certificate: it is served, nothing is ordered, nothing reported', { skip: noPebble }, async (t) => {
  const port = await freePort()
  const pebble = await startPebble(t, { httpPort: port, tlsPort: port })
  const storage = await storageDir(t)
  const first = await startMux(t, port, pebble, { storage })
  await certificate(first)
  const root = await pebble.root()
  const cert = await served(port, root)
  first.server.closeAllConnections()
  await new Promise<void>((resolve) => first.server.close(() => resolve()))
  await pebble.stop()

  const second = await startMux(t, port, pebble, { storage })
  assert.equal((await served(port, root)).serialNumber, cert.serialNumber)
  await delay(300)
  assert.deepEqual(second.warnings, [])
  assert.equal(second.certificates.length, 1)
})

test('the CA down at start with nothing stored: TLS fails with an alert, HTTP and raw routes work, the order is retried', { skip: noPebble }, async (t) => {
  const port = await freePort()
  const caPort = await freePort()
  const managementPort = await freePort()
  const storage = await storageDir(t)
  // The URL and trust of a CA that is not running yet.
  const directory = `https://127.0.0.1:${caPort}/dir`
  const ca = (await testCertificate()).cert
  const mux = await startMux(t, port, { directory, ca }, { storage }, {
    http: 'serve',
    routes: { echo: { match: { prefix: 'ECHO' }, handler: (socket) => socket.pipe(socket) } }
  })
  await until(() => mux.warnings.length >= 2, 5000, 'two failed attempts')
  for (const w of mux.warnings) {
    assert.equal(w.code, 'PORTMUX_ERR_ACME')
    assert.match(w.message, new RegExp(`127\\.0\\.0\\.1:${caPort}`))
  }
  const failure = await new Promise<Error>((resolve, reject) => {
    const socket = tls.connect({ port, host: '127.0.0.1', servername: DOMAIN, rejectUnauthorized: false }, () => reject(new Error('handshake completed')))
    socket.once('error', resolve)
  })
  assert.match(failure.message, /alert|handshake/i)
  assert.match(await exchange(t, port, `GET /x HTTP/1.1\r\nHost: ${DOMAIN}\r\nConnection: close\r\n\r\n`), /^HTTP\/1\.1 200[^]*app \/x$/)
  assert.equal(await exchange(t, port, 'ECHO 1', { end: true }), 'ECHO 1')

  // The CA comes up: a later attempt succeeds.
  const pebble = await startPebble(t, { httpPort: port, tlsPort: port, port: caPort, managementPort })
  assert.equal(pebble.ca, ca)
  mux.warnings.length = 0
  await certificate(mux)
  assert.match((await served(port, await pebble.root())).subjectaltname ?? '', /portmux\.test/)
})

test('two servers sharing one storage directory order once; the challenge is answered by whichever is asked', { skip: noPebble }, async (t) => {
  const portA = await freePort()
  const portB = await freePort()
  // The CA validates on A only; either may be the one that orders.
  const pebble = await startPebble(t, { httpPort: portA, tlsPort: portA })
  const storage = await storageDir(t)
  // B starts first and takes the lock: the CA's validation reaches A, which answers from storage.
  const b = await startMux(t, portB, pebble, { storage })
  const lock = path.join(storage, caDirectoryName(pebble.directory), 'locks', `${DOMAIN}.lock`)
  await until(() => existsSync(lock) || b.certificates.length > 0, 5000, 'B to take the lock')
  const a = await startMux(t, portA, pebble, { storage })
  await Promise.all([certificate(a), certificate(b)])
  assert.ok(a.server.stats().decided.routes['acme:tls-alpn-01'] > 0)
  assert.equal(b.server.stats().decided.routes['acme:tls-alpn-01'], 0)
  const root = await pebble.root()
  const [ca, cb] = await Promise.all([served(portA, root), served(portB, root)])
  assert.equal(ca.serialNumber, cb.serialNumber)
  assert.equal(pebble.issued(), 1)
})

test('acme-tls/1 hellos: refused for an unknown name, or a known one with no challenge pending; never reach the app', { skip: noPebble }, async (t) => {
  const port = await freePort()
  const pebble = await startPebble(t, { httpPort: port, tlsPort: port })
  const mux = await startMux(t, port, pebble, { storage: await storageDir(t) })
  await certificate(mux)
  const before = mux.server.stats()
  for (const servername of ['unknown.test', DOMAIN]) {
    const err = await new Promise<Error>((resolve, reject) => {
      const socket = tls.connect({ port, host: '127.0.0.1', servername, ALPNProtocols: ['acme-tls/1'], rejectUnauthorized: false }, () => reject(new Error('handshake completed')))
      socket.once('error', resolve)
    })
    assert.match(err.message, /alert|handshake|socket hang up|ECONNRESET/i)
  }
  const after = mux.server.stats()
  assert.equal(after.decided.routes['acme:tls-alpn-01'] - before.decided.routes['acme:tls-alpn-01'], 2)
  assert.equal(after.decided.https, before.decided.https)
})

test('close() stops the retries: no attempt after it, and listening again resumes them', async (t) => {
  const port = await freePort()
  const mux = await startMux(t, port, { directory: `https://127.0.0.1:${await freePort()}/dir`, ca: (await testCertificate()).cert }, { storage: await storageDir(t) })
  await until(() => mux.warnings.length >= 1, 5000, 'a failed attempt')
  await new Promise<void>((resolve) => mux.server.close(() => resolve()))
  const seen = mux.warnings.length
  await delay(600)
  assert.equal(mux.warnings.length, seen)
  mux.server.listen(port, '127.0.0.1')
  await once(mux.server, 'listening')
  await until(() => mux.warnings.length > seen, 5000, 'an attempt after listening again')
})

test('HTTP-01: an unknown token gets 404 on the main port; other paths reach the app', async (t) => {
  const port = await freePort()
  const storage = await storageDir(t)
  const mux = await startMux(t, port, { directory: `https://127.0.0.1:${await freePort()}/dir`, ca: (await testCertificate()).cert }, { storage }, { http: 'serve' })
  const reply = await exchange(t, port, 'GET /.well-known/acme-challenge/nope HTTP/1.1\r\nHost: portmux.test\r\n\r\n')
  assert.match(reply, /^HTTP\/1\.1 404 /)
  const bad = await exchange(t, port, 'GET /.well-known/acme-challenge/../../etc HTTP/1.1\r\nHost: portmux.test\r\n\r\n')
  assert.match(bad, /^HTTP\/1\.1 404 /)
  assert.match(await exchange(t, port, 'GET /.well-known/other HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n'), /app \/\.well-known\/other$/)
  assert.equal(mux.server.stats().decided.routes['acme:http-01'], 2)
})

test('httpPort: HTTP-01 answered there, other plaintext redirected to the main port; tls options beside acme apply', { skip: noPebble }, async (t) => {
  const port = await freePort()
  const httpPort = await freePort()
  const pebble = await startPebble(t, { httpPort, tlsPort: port })
  // With tls options beside acme: they apply to the certificate the CA gives.
  const mux = await startMux(t, port, pebble, { storage: await storageDir(t), challenges: ['http-01'] }, { httpPort, tls: { minVersion: 'TLSv1.3' } })
  await certificate(mux)
  assert.ok(mux.server.stats().decided.routes['acme:http-01'] > 0)
  const root = await pebble.root()
  assert.match((await served(port, root)).subjectaltname ?? '', /portmux\.test/)
  const old = await new Promise<Error>((resolve, reject) => {
    const socket = tls.connect({ port, host: '127.0.0.1', servername: DOMAIN, ca: root, maxVersion: 'TLSv1.2' }, () => reject(new Error('TLS 1.2 accepted')))
    socket.once('error', resolve)
  })
  assert.match(old.message, /alert|version/i)
  assert.match(await exchange(t, httpPort, `GET /.well-known/acme-challenge/gone HTTP/1.1\r\nHost: ${DOMAIN}\r\n\r\n`), /^HTTP\/1\.1 404 /)
  const redirect = await exchange(t, httpPort, `GET /a?b=1 HTTP/1.1\r\nHost: ${DOMAIN}\r\n\r\n`)
  assert.match(redirect, /^HTTP\/1\.1 301 /)
  assert.match(redirect, new RegExp(`\\r\\nlocation: https://portmux\\.test:${port}/a\\?b=1\\r\\n`, 'i'))
})

/** A request on an open HTTP/1.1 TLS connection; resolves with the body. */
function h1Request (socket: tls.TLSSocket, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = ''
    const onData = (d: Buffer): void => {
      data += d.toString('latin1')
      const end = data.indexOf('\r\n\r\n')
      const m = /\r\ncontent-length: (\d+)\r\n/i.exec(data.slice(0, end + 2))
      if (end === -1 || m === null) return
      const start = end + 4
      if (data.length - start < Number(m[1])) return
      socket.removeListener('data', onData)
      resolve(data.slice(start, start + Number(m[1])))
    }
    socket.on('data', onData)
    socket.once('error', reject)
    socket.write(`GET ${path} HTTP/1.1\r\nHost: ${DOMAIN}\r\n\r\n`)
  })
}

function echo (socket: net.Socket, text: string): Promise<string> {
  return new Promise((resolve) => {
    let got = ''
    const onData = (d: Buffer): void => {
      got += d.toString('latin1')
      if (got.length >= text.length) {
        socket.removeListener('data', onData)
        resolve(got)
      }
    }
    socket.on('data', onData)
    socket.write(text)
  })
}

test('rotation by renewal and by setSecureContext: open h1, h2 and raw connections stay open and working', { skip: noPebble }, async (t) => {
  const port = await freePort()
  const pebble = await startPebble(t, { httpPort: port, tlsPort: port, validity: 3 })
  const mux = await startMux(t, port, pebble, { storage: await storageDir(t) }, {
    routes: {
      'tls-echo': { match: { tls: { alpn: 'echo' } }, terminateTls: true, handler: (socket) => socket.pipe(socket) },
      echo: { match: { prefix: 'ECHO' }, handler: (socket) => socket.pipe(socket) }
    }
  })
  await certificate(mux)
  const root = await pebble.root()
  const first = await served(port, root)

  const h1 = tls.connect({ port, host: '127.0.0.1', servername: DOMAIN, ca: root, ALPNProtocols: ['http/1.1'] })
  t.after(() => h1.destroy())
  await once(h1, 'secureConnect')
  assert.equal(await h1Request(h1, '/one'), 'app /one')
  const h2 = http2.connect(`https://127.0.0.1:${port}`, { ca: root, servername: DOMAIN })
  t.after(() => h2.destroy())
  const h2get = async (p: string): Promise<string> => {
    const stream = h2.request({ ':path': p })
    stream.setEncoding('utf8')
    let body = ''
    stream.on('data', (d: string) => { body += d })
    await once(stream, 'end')
    return body
  }
  assert.equal(await h2get('/one'), 'app /one')
  const tlsRaw = tls.connect({ port, host: '127.0.0.1', servername: DOMAIN, ca: root, ALPNProtocols: ['echo'] })
  t.after(() => tlsRaw.destroy())
  await once(tlsRaw, 'secureConnect')
  assert.equal(await echo(tlsRaw, 'one'), 'one')
  const raw = net.connect(port, '127.0.0.1')
  t.after(() => raw.destroy())
  assert.equal(await echo(raw, 'ECHO one'), 'ECHO one')

  // Renewal: new connections get the new certificate; the open ones go on.
  assert.equal((await certificate(mux, 2)).renewed, true)
  assert.notEqual((await served(port, root)).serialNumber, first.serialNumber)
  assert.equal(await h1Request(h1, '/two'), 'app /two')
  assert.equal(await h2get('/two'), 'app /two')
  assert.equal(await echo(tlsRaw, 'two'), 'two')
  assert.equal(await echo(raw, 'ECHO two'), 'ECHO two')

  // setSecureContext: the same for HTTPS and the TLS-terminating route.
  const dev = await testCertificate()
  mux.server.setSecureContext(dev)
  const devFingerprint = new X509Certificate(dev.cert).fingerprint256
  const viaHttps = await new Promise<string>((resolve, reject) => {
    const s = tls.connect({ port, host: '127.0.0.1', servername: 'localhost', rejectUnauthorized: false, ALPNProtocols: ['h2'] }, () => { resolve(s.getPeerCertificate().fingerprint256); s.destroy() })
    s.once('error', reject)
  })
  assert.equal(viaHttps, devFingerprint)
  const viaRoute = await new Promise<string>((resolve, reject) => {
    const s = tls.connect({ port, host: '127.0.0.1', servername: 'localhost', rejectUnauthorized: false, ALPNProtocols: ['echo'] }, () => { resolve(s.getPeerCertificate().fingerprint256); s.destroy() })
    s.once('error', reject)
  })
  assert.equal(viaRoute, devFingerprint)
  assert.equal(await h1Request(h1, '/three'), 'app /three')
  assert.equal(await h2get('/three'), 'app /three')
  assert.equal(await echo(tlsRaw, 'three'), 'three')
  assert.equal(await echo(raw, 'ECHO three'), 'ECHO three')
  h2.close()
})

test('renewal by ARI (RFC 9773): a CA that suggests renewing now gets a new order, for a certificate far from expiry', { skip: noPebble }, async (t) => {
  const port = await freePort()
  const pebble = await startPebble(t, { httpPort: port, tlsPort: port })
  // Pebble of this version offers no renewalInfo: a front serves its directory with one added.
  const asked: string[] = []
  const { key, cert } = await testCertificate()
  const front = https.createServer({ key, cert }, (req, res) => {
    if (req.url === '/dir') {
      https.get(pebble.directory, { ca: pebble.ca }, (up) => {
        let body = ''
        up.setEncoding('utf8').on('data', (d: string) => { body += d })
        up.on('end', () => {
          const directory = JSON.parse(body) as Record<string, unknown>
          directory.renewalInfo = `https://127.0.0.1:${(front.address() as net.AddressInfo).port}/renewal-info`
          res.setHeader('content-type', 'application/json')
          res.end(JSON.stringify(directory))
        })
      })
      return
    }
    const id = /^\/renewal-info\/([\w-]+\.[\w-]+)$/.exec(req.url ?? '')?.[1]
    if (id === undefined) {
      res.statusCode = 404
      res.end()
      return
    }
    asked.push(id)
    // The first certificate: renew now. Any later one: not for a year.
    const start = id === asked[0] ? Date.now() - 1000 : Date.now() + 365 * 86_400_000
    res.setHeader('retry-after', '1')
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify({ suggestedWindow: { start: new Date(start).toISOString(), end: new Date(start + 500).toISOString() } }))
  })
  front.listen(0, '127.0.0.1')
  await once(front, 'listening')
  t.after(() => { front.closeAllConnections(); front.close() })
  const directory = `https://127.0.0.1:${(front.address() as net.AddressInfo).port}/dir`
  const mux = await startMux(t, port, { directory, ca: pebble.ca }, { storage: await storageDir(t) })
  const first = await certificate(mux)
  const renewed = await certificate(mux, 2)
  assert.equal(renewed.renewed, true)
  assert.equal(pebble.issued(), 2)
  // Pebble's certificates live for years: only ARI can have asked for this renewal.
  assert.ok(first.notAfter.getTime() - Date.now() > 30 * 86_400_000, String(first.notAfter))
  // The identifier asked for is the first certificate's AKI key id and serial (checked with openssl).
  const stored = JSON.parse(readFileSync(path.join(mux.storage, caDirectoryName(directory), 'certificates', `${DOMAIN}.json`), 'utf8')) as { cert: string }
  const text = execFileSync('openssl', ['x509', '-noout', '-ext', 'authorityKeyIdentifier', '-serial'], { input: stored.cert, encoding: 'utf8' })
  const aki = Buffer.from(/([0-9A-F]{2}(?::[0-9A-F]{2})+)/.exec(text)?.[1].replace(/:/g, '') ?? '', 'hex').toString('base64url')
  // The renewed certificate is asked about in turn (and told: not for a year).
  await until(() => asked.length >= 2, 5000, 'renewal information of the renewed certificate')
  assert.equal(pebble.issued(), 2)
  assert.equal(asked.at(-1)?.split('.')[0], aki)
  const serial = /serial=([0-9A-F]+)/.exec(text)?.[1] ?? ''
  let serialBytes = Buffer.from(serial.length % 2 === 1 ? '0' + serial : serial, 'hex')
  if ((serialBytes[0] & 0x80) !== 0) serialBytes = Buffer.concat([Buffer.from([0]), serialBytes])
  assert.equal(asked.at(-1)?.split('.')[1], serialBytes.toString('base64url'))
})
