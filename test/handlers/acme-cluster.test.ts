/**
 * portmux/cluster and certificates: every worker serves the same one, be it the
 * development certificate (made once, in the primary) or one ordered from the CA (by one
 * process, under the storage's lock).
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import tls from 'node:tls'
import { fileURLToPath } from 'node:url'
import { freePort, noPebble, startPebble } from '../interop/pebble.js'
import { start } from '../spawn.js'

const fixture = fileURLToPath(new URL('./acme-cluster-fixture.js', import.meta.url))
const DOMAIN = 'cluster.portmux.test'

async function startCluster (t: TestContext, env: Record<string, string>): Promise<{ pids: number[], output: () => string }> {
  const cluster = await start(t, process.execPath, [fixture], { env, ready: /ready ([\d,]+)/, within: 60_000 })
  const pids = (cluster.match?.[1] ?? '').split(',').map(Number)
  return { pids, output: cluster.output }
}

/** One HTTPS request: which worker answered, and the certificate it showed. */
function ask (port: number, options: tls.ConnectionOptions): Promise<{ pid: number, fingerprint: string, serial: string }> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ port, host: '127.0.0.1', ALPNProtocols: ['http/1.1'], ...options }, () => {
      const cert = socket.getPeerCertificate()
      socket.end('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
      let body = ''
      socket.setEncoding('utf8').on('data', (d: string) => { body += d })
      socket.on('end', () => resolve({ pid: Number(body.split('\r\n\r\n')[1]), fingerprint: cert.fingerprint256, serial: cert.serialNumber }))
    })
    socket.once('error', reject)
  })
}

/** Ask until both workers answered; every answer's certificate must be the same. */
async function bothWorkers (port: number, pids: number[], options: tls.ConnectionOptions): Promise<Set<string>> {
  const seen = new Set<number>()
  const certificates = new Set<string>()
  for (let i = 0; i < 40 && seen.size < pids.length; i++) {
    const { pid, fingerprint } = await ask(port, options)
    seen.add(pid)
    certificates.add(fingerprint)
  }
  assert.deepEqual([...seen].sort(), [...pids].sort())
  return certificates
}

test('tls: \'dev\' under portmux/cluster: both workers serve one development certificate', async (t) => {
  const port = await freePort()
  const { pids } = await startCluster(t, { MODE: 'dev', PORT: String(port) })
  assert.equal(pids.length, 2)
  const certificates = await bothWorkers(port, pids, { rejectUnauthorized: false, servername: 'localhost' })
  assert.equal(certificates.size, 1)
})

test('acme under portmux/cluster: one order, both workers serve the certificate', { skip: noPebble }, async (t) => {
  const port = await freePort()
  const pebble = await startPebble(t, { httpPort: port, tlsPort: port })
  const dir = await mkdtemp(path.join(tmpdir(), 'portmux-acme-cluster-'))
  t.after(() => rm(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 }).catch(() => {}))
  await writeFile(path.join(dir, 'ca.pem'), pebble.ca)
  const { pids, output } = await startCluster(t, {
    MODE: 'acme', PORT: String(port), DOMAIN, DIRECTORY: pebble.directory, CA_FILE: path.join(dir, 'ca.pem'), STORAGE: path.join(dir, 'storage')
  })
  const root = await pebble.root()
  // Each worker says when it serves the certificate.
  const end = Date.now() + 20_000
  while ((output().match(/certificate/g) ?? []).length < 2) {
    if (Date.now() > end) throw new Error(`no certificate in both workers:\n${output()}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  const certificates = await bothWorkers(port, pids, { ca: root, servername: DOMAIN })
  assert.equal(certificates.size, 1)
  assert.equal(pebble.issued(), 1)
  assert.doesNotMatch(output(), /PORTMUX_ERR|failed/)
})
