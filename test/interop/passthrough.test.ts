/**
 * Real clients against raw routes: `openssl s_client` through an SNI passthrough route to an
 * upstream TLS server with its own certificate (and to the mux's HTTPS for other names), and
 * a silent `nc` handed to a server-speaks-first upstream by the `'timeout'` route.
 *
 * Needs: openssl, nc (netcat-openbsd).
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { execFile, spawn } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import { access, constants } from 'node:fs/promises'
import net, { type AddressInfo } from 'node:net'
import tls from 'node:tls'
import { delimiter, join } from 'node:path'
import { once } from 'node:events'
import { createServer } from '../../src/node.js'
import { devCertificate } from '../../src/dev-certificate.js'
import type { MuxOptions } from '../../src/types.js'
import { listen, testCertificate, until } from '../helpers.js'

async function onPath (name: string): Promise<boolean> {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue
    try {
      await access(join(dir, name), constants.X_OK)
      return true
    } catch {}
  }
  return false
}

const noOpenssl = await onPath('openssl') ? false : 'openssl not found (apt-get install openssl)'
const noNc = await onPath('nc') ? false : 'nc not found (apt-get install netcat-openbsd)'

/** `openssl s_client` with no input: handshake, print, close. Resolves with its stdout. */
function sClient (port: number, servername: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', servername], { timeout: 20_000 }, (err, stdout, stderr) => {
      if (err !== null && !stdout.includes('-----BEGIN CERTIFICATE-----')) reject(new Error(`s_client failed: ${err.message}\n${stderr}`))
      else resolve(stdout)
    })
    child.stdin?.on('error', () => {})
    child.stdin?.end()
  })
}

/** The server certificate `s_client` printed. */
function printedCertificate (out: string): X509Certificate {
  const m = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(out)
  assert.ok(m !== null, `no certificate in s_client's output:\n${out}`)
  return new X509Certificate(m[0])
}

async function mux (t: TestContext, options: MuxOptions = {}): Promise<{ server: ReturnType<typeof createServer>, port: number, cert: X509Certificate }> {
  const { key, cert } = await testCertificate()
  const server = createServer((_req, res) => { res.end('app\n') }, { tls: { key, cert }, ...options })
  const port = await listen(t, server)
  return { server, port, cert: new X509Certificate(cert) }
}

test('openssl s_client -servername pass.test reaches the upstream\'s certificate; other.test gets the mux\'s', { skip: noOpenssl, timeout: 30_000 }, async (t) => {
  const own = await devCertificate({ hosts: ['pass.test'] })
  const seen: Array<string | false> = []
  const sockets = new Set<net.Socket>()
  const upstream = tls.createServer({ key: own.key, cert: own.cert }, (s) => {
    seen.push(s.servername ?? false)
    s.on('error', () => {})
    s.resume()
    s.on('end', () => s.end())
  })
  upstream.on('connection', (s: net.Socket) => { sockets.add(s); s.on('close', () => sockets.delete(s)) })
  upstream.on('tlsClientError', () => {})
  upstream.listen(0, '127.0.0.1')
  await once(upstream, 'listening')
  t.after(async () => {
    for (const s of sockets) s.destroy()
    await new Promise<void>((resolve) => upstream.close(() => resolve()))
  })
  const upstreamCert = new X509Certificate(own.cert)
  const { server, port, cert: muxCert } = await mux(t)
  server.route('pass', { match: { tls: { sni: 'pass.test' } }, proxy: { port: (upstream.address() as AddressInfo).port } })
  assert.notEqual(upstreamCert.fingerprint256, muxCert.fingerprint256)

  const pass = printedCertificate(await sClient(port, 'pass.test'))
  assert.equal(pass.fingerprint256, upstreamCert.fingerprint256)
  assert.match(pass.subjectAltName ?? '', /DNS:pass\.test/)
  assert.deepEqual(seen, ['pass.test'], 'the upstream did the handshake, with the SNI intact')

  const other = printedCertificate(await sClient(port, 'other.test'))
  assert.equal(other.fingerprint256, muxCert.fingerprint256)
  assert.doesNotMatch(other.subjectAltName ?? '', /pass\.test/)
  assert.equal(seen.length, 1)

  await until(() => server.stats().open.routes.pass === 0 && server.stats().open.https === 0, 5000, 'open counts at zero')
  assert.equal(server.stats().decided.routes.pass, 1)
  assert.equal(server.stats().decided.https, 1)
})

test('a silent nc is handed to a server-speaks-first upstream by the \'timeout\' route and sees its banner', { skip: noNc, timeout: 30_000 }, async (t) => {
  const received: string[] = []
  const sockets = new Set<net.Socket>()
  const upstream = net.createServer((s) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
    s.on('error', () => {})
    s.write('220 banner\r\n')
    s.setEncoding('latin1')
    s.on('data', (d: string) => {
      received.push(d)
      if (received.join('').includes('QUIT\r\n')) s.end('221 bye\r\n')
    })
  })
  upstream.listen(0, '127.0.0.1')
  await once(upstream, 'listening')
  t.after(async () => {
    for (const s of sockets) s.destroy()
    await new Promise<void>((resolve) => upstream.close(() => resolve()))
  })
  const { server, port } = await mux(t, { sniffTimeout: 200 })
  server.route('ssh', { match: 'ssh', handler: (s) => { s.destroy() } })
  server.route('banner', { match: 'timeout', proxy: { port: (upstream.address() as AddressInfo).port } })

  // stdin stays open and silent until the banner arrives (nc -w bounds the whole run).
  const nc = spawn('nc', ['-w', '10', '127.0.0.1', String(port)], { stdio: ['pipe', 'pipe', 'pipe'] })
  t.after(async () => {
    if (nc.exitCode === null && nc.signalCode === null) {
      nc.kill('SIGTERM')
      await once(nc, 'exit')
    }
  })
  nc.stdin.on('error', () => {})
  let out = ''
  nc.stdout.setEncoding('latin1')
  nc.stdout.on('data', (d: string) => { out += d })
  await until(() => out.includes('220 banner\r\n'), 10_000, 'the banner through nc')
  assert.equal(out, '220 banner\r\n')
  assert.equal(received.length, 0, 'nc has said nothing yet')
  nc.stdin.write('QUIT\r\n')
  await until(() => out.includes('221 bye\r\n'), 10_000, 'the answer through nc')
  assert.equal(received.join(''), 'QUIT\r\n')
  const s = server.stats()
  assert.equal(s.decided.routes.banner, 1)
  assert.equal(s.decided.routes.ssh, 0)
  assert.equal(s.proxy.connected, 1)
})
