/**
 * examples/acme.js against Pebble, run as a user would run it: it obtains a certificate
 * by TLS-ALPN-01 on its port, serves it, answers HTTP-01 and redirects on HTTP_PORT, and
 * keeps the ECHO route. Then the same under emulated systemd socket activation (fd 3).
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import tls from 'node:tls'
import { fileURLToPath } from 'node:url'
import { exchange, startExample } from '../helpers.js'
import { freePort, noPebble, startPebble } from '../interop/pebble.js'
import { activated, activationSocket, start } from '../spawn.js'

const DOMAIN = 'example.portmux.test'
const example = fileURLToPath(new URL('../../examples/acme.js', import.meta.url))

/** Connect until the served certificate verifies against the CA's root (the order takes a moment). */
async function verified (port: number, root: string): Promise<tls.PeerCertificate> {
  const end = Date.now() + 20_000
  for (;;) {
    const result = await new Promise<tls.PeerCertificate | Error>((resolve) => {
      const socket = tls.connect({ port, host: '127.0.0.1', servername: DOMAIN, ca: root }, () => {
        resolve(socket.getPeerCertificate())
        socket.destroy()
      })
      socket.once('error', resolve)
    })
    if (!(result instanceof Error)) return result
    if (Date.now() > end) throw result
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

async function setup (t: TestContext, httpPort: number, tlsPort: number): Promise<{ env: Record<string, string>, root: () => Promise<string> }> {
  const pebble = await startPebble(t, { httpPort, tlsPort })
  const dir = await mkdtemp(path.join(tmpdir(), 'portmux-acme-example-'))
  t.after(() => rm(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 }).catch(() => {}))
  await writeFile(path.join(dir, 'ca.pem'), pebble.ca)
  return {
    env: {
      DOMAINS: DOMAIN,
      EMAIL: 'ops@portmux.test',
      ACME_DIRECTORY: pebble.directory,
      ACME_STORAGE: path.join(dir, 'storage'),
      // How a user trusts a private CA's HTTPS: Node's own variable.
      NODE_EXTRA_CA_CERTS: path.join(dir, 'ca.pem')
    },
    root: () => pebble.root()
  }
}

test('examples/acme.js: a certificate from the CA on its port, HTTP-01 and redirects on HTTP_PORT', { timeout: 60_000, skip: noPebble }, async (t) => {
  const port = await freePort()
  const httpPort = await freePort()
  const { env, root } = await setup(t, httpPort, port)
  const running = await startExample(t, 'acme.js', { ...env, PORT: String(port), HTTP_PORT: String(httpPort) })
  assert.equal(running.port, port)
  assert.match((await verified(port, await root())).subjectaltname ?? '', new RegExp(DOMAIN.replace(/\./g, '\\.')))
  assert.match(await exchange(t, httpPort, `GET /.well-known/acme-challenge/none HTTP/1.1\r\nHost: ${DOMAIN}\r\n\r\n`), /^HTTP\/1\.1 404 /)
  assert.match(await exchange(t, httpPort, `GET /x HTTP/1.1\r\nHost: ${DOMAIN}\r\n\r\n`), new RegExp(`^HTTP/1\\.1 301[^]*location: https://${DOMAIN.replace(/\./g, '\\.')}:${port}/x\\r\\n`, 'i'))
  assert.equal(await exchange(t, port, 'ECHO hi\n', { end: true }), 'ECHO hi\n')
  assert.equal(await running.stop(), 0)
})

test('examples/acme.js under systemd socket activation: listens on fd 3 and obtains its certificate there', { timeout: 60_000, skip: noPebble }, async (t) => {
  const { port, fd, server: listener } = await activationSocket(t)
  const { env, root } = await setup(t, await freePort(), port)
  const app = await start(t, ...activated(example), {
    env: { ...env, LOG_LEVEL: 'warn' },
    fds: [fd],
    ready: new RegExp(`on port ${port}\\b`),
    within: 30_000,
    signal: 'SIGKILL'
  })
  listener.close()
  assert.match((await verified(port, await root())).subjectaltname ?? '', /example\.portmux\.test/)
  assert.equal(await exchange(t, port, 'ECHO fd\n', { end: true }), 'ECHO fd\n')
  assert.deepEqual(await app.stop('SIGTERM'), [0, null])
})
