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
import tls from 'node:tls'
import { createServer } from '../../src/node.js'
import type { MuxServer } from '../../src/core/server.js'
import type { AcmeOptions, CertificateEvent, MuxOptions } from '../../src/types.js'
import type { PortmuxError } from '../../src/errors.js'
import { freePort, startPebble, type Pebble } from '../interop/pebble.js'

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
  })
}
