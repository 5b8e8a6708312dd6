/**
 * ACME against Pebble: certificates obtained by TLS-ALPN-01 and HTTP-01 answered on the
 * mux's own port, served, kept in storage and reused.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import tls from 'node:tls'
import { createServer } from '../../src/node.js'
import type { MuxServer } from '../../src/core/server.js'
import type { AcmeOptions, CertificateEvent, MuxOptions } from '../../src/types.js'
import type { PortmuxError } from '../../src/errors.js'
import { caDirectoryName } from '../../src/handlers/acme/storage.js'
import { freePort, startPebble, type Pebble } from '../interop/pebble.js'
import { delay, exchange, testCertificate, until } from '../helpers.js'

const DOMAIN = 'portmux.test'
const kTuning = Symbol.for('portmux.acme.tuning')

async function storageDir (t: TestContext): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'portmux-acme-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  return dir
}

interface Started { server: MuxServer, port: number, warnings: PortmuxError[], certificates: CertificateEvent[] }

async function startMux (t: TestContext, port: number, pebble: Pick<Pebble, 'directory' | 'ca'>, acme: Partial<AcmeOptions> & { storage: string }, extra: MuxOptions = {}): Promise<Started> {
  const options: MuxOptions = {
    ...extra,
    acme: {
      domains: [DOMAIN],
      agreeToTerms: true,
      directory: pebble.directory,
      ...acme,
      [kTuning]: { ca: pebble.ca, pollInterval: 50, retryMin: 100, retryMax: 400, pollMin: 50, pollMax: 200, lockRefresh: 100, lockStale: 2000 }
    } as AcmeOptions
  }
  const server = createServer((req, res) => { res.end(`app ${req.url ?? ''}`) }, options)
  const warnings: PortmuxError[] = []
  const certificates: CertificateEvent[] = []
  server.on('warning', (err: PortmuxError) => warnings.push(err))
  server.on('certificate', (e: CertificateEvent) => certificates.push(e))
  server.listen(port, '127.0.0.1')
  await once(server, 'listening')
  t.after(async () => {
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return { server, port, warnings, certificates }
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
  test(`a certificate by ${challenge}, answered on the mux's port, is served and reused after a restart`, async (t) => {
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
async function certificate (s: Started, n = 1): Promise<CertificateEvent> {
  while (s.certificates.length < n) {
    if (s.warnings.length > 0) throw s.warnings[0]
    await Promise.race([once(s.server, 'certificate'), once(s.server, 'warning')])
  }
  return s.certificates[n - 1]
}

test('renewal: a short-lived certificate is replaced when a third of its life is left', async (t) => {
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

test('the CA down at start with a stored certificate: it is served, nothing is ordered, nothing reported', async (t) => {
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

test('the CA down at start with nothing stored: TLS fails with an alert, HTTP and raw routes work, the order is retried', async (t) => {
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

test('two servers sharing one storage directory order once; the challenge is answered by whichever is asked', async (t) => {
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

test('acme-tls/1 hellos: refused for an unknown name, or a known one with no challenge pending; never reach the app', async (t) => {
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
