/**
 * Shared plumbing of the load-balancer interop tests (`haproxy.test.ts`, `nginx.test.ts`,
 * `proxy-protocol-out.test.ts`): a portmux server that believes PROXY headers from 127.0.0.1
 * only and requires them, nginx and HAProxy started in the foreground from a temporary
 * config, and clients that connect from
 * 127.0.0.2 so that the address the app sees can only have come through the header.
 *
 * Not a test file: it registers no tests.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { once } from 'node:events'
import { access, mkdtemp, rm, writeFile } from 'node:fs/promises'
import net, { type AddressInfo } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import type { TestContext } from 'node:test'
import { promisify } from 'node:util'
import Fastify, { type FastifyInstance } from 'fastify'
import { Agent, request } from 'undici'
import { portmux, serverFactory } from '../../src/fastify.js'
import type { ConnectionInfo } from '../../src/types.js'
import { testCertificate } from '../helpers.js'
import { findProgram, start, type Started } from '../spawn.js'

export { findProgram, freePort } from '../spawn.js'

const run = promisify(execFile)

/** The client's own address: another loopback address than the balancer's and the mux's. */
export const CLIENT_ADDRESS = '127.0.0.2'

/** A temporary directory, removed after the test. */
export async function tempDir (t: TestContext, prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix))
  t.after(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/**
 * Start a daemon in the foreground; resolve once every port in `ports` is listening (seen
 * in the kernel's table: no probe connection reaches it). It is stopped (SIGTERM, then
 * SIGKILL) after the test; a daemon that exits early fails the test with what it printed.
 */
export async function startDaemon (t: TestContext, command: string, args: string[], ports: number[]): Promise<Started> {
  return await start(t, command, args, { ready: { ports } })
}

/** nginx with its stream module: the program and the `load_module` lines its config needs, or why it cannot run. */
export type NginxStream = { nginx: string, load: string[] } | { missing: string }

/** Finds nginx and how it gets its stream module: compiled in, a module file to load, or not at all. */
export async function findNginxStream (): Promise<NginxStream> {
  const nginx = await findProgram('nginx')
  if (nginx === null) return { missing: 'nginx is not installed (Debian packages: nginx libnginx-mod-stream)' }
  // `nginx -V` prints its configure arguments on stderr.
  const { stdout, stderr } = await run(nginx, ['-V'])
  const configure = stdout + stderr
  if (/--with-stream(?=\s|$)/.test(configure)) return { nginx, load: [] }
  if (!configure.includes('--with-stream=dynamic')) return { missing: 'this nginx was built without the stream module' }
  const modules = /--modules-path=(\S+)/.exec(configure)?.[1] ?? '/usr/lib/nginx/modules'
  const file = path.join(modules, 'ngx_stream_module.so')
  try {
    await access(file)
    return { nginx, load: [`load_module ${file};`] }
  } catch {
    return { missing: `${file} is missing (Debian package: libnginx-mod-stream)` }
  }
}

/**
 * nginx in the foreground with one `stream { server { … } }` made of `server` lines, its
 * config, pid file, lock file and error log in a temporary directory (nothing under /etc,
 * /run or /var/log is touched); resolves once it listens on `port`.
 */
export async function startNginx (t: TestContext, found: NginxStream, port: number, server: string[]): Promise<Started> {
  if ('missing' in found) throw new Error(found.missing)
  const dir = await tempDir(t, 'portmux-nginx-')
  const cfg = path.join(dir, 'nginx.conf')
  const errorLog = path.join(dir, 'error.log')
  await writeFile(cfg, [
    ...found.load,
    'worker_processes 1;',
    `error_log ${errorLog} info;`,
    `lock_file ${path.join(dir, 'nginx.lock')};`,
    'events { worker_connections 256; }',
    'stream {',
    '  server {',
    ...server.map((line) => `    ${line}`),
    '  }',
    '}',
    ''
  ].join('\n'))
  return await startDaemon(t, found.nginx, ['-p', dir + '/', '-c', cfg, '-e', errorLog, '-g', `daemon off; pid ${path.join(dir, 'nginx.pid')};`], [port])
}

/** HAProxy in the foreground (`-db`) from `config` lines in a temporary directory; resolves once it listens on `port`. */
export async function startHaproxy (t: TestContext, haproxy: string, port: number, config: string[]): Promise<Started> {
  const dir = await tempDir(t, 'portmux-haproxy-')
  const cfg = path.join(dir, 'haproxy.cfg')
  await writeFile(cfg, [...config, ''].join('\n'))
  return await startDaemon(t, haproxy, ['-db', '-f', cfg], [port])
}

export interface Mux {
  app: FastifyInstance
  port: number
  /** Every decision the mux made, in order. */
  decisions: ConnectionInfo[]
}

/**
 * Fastify behind portmux on 127.0.0.1: HTTPS (h1 and h2), plaintext redirected, a raw `ECHO `
 * route answering with the client address it was given, PROXY headers required from 127.0.0.1.
 */
export async function startMux (t: TestContext): Promise<Mux> {
  const app = Fastify({
    serverFactory: serverFactory({
      tls: await testCertificate(),
      http: 'redirect',
      proxyProtocol: { trusted: ['127.0.0.1'], required: true }
    })
  })
  await app.register(portmux)
  app.get('/ip', async (request) => `${request.ip} ${String(request.socket.remotePort)} ${request.raw.httpVersion}`)
  app.tcp('echo', {
    match: { prefix: 'ECHO ' },
    handler: (socket, info) => {
      socket.resume()
      socket.end(`${info.remoteAddress ?? '?'}\n`)
    }
  })
  const decisions: ConnectionInfo[] = []
  app.portmux.on('decision', (info: ConnectionInfo) => { decisions.push(info) })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.after(() => app.close())
  return { app, port: (app.server.address() as AddressInfo).port, decisions }
}

/** A TCP connection to 127.0.0.1:`port` from 127.0.0.2; everything it receives until the peer closes. */
export async function rawExchange (t: TestContext, port: number, bytes: string): Promise<string> {
  const socket = net.connect({ port, host: '127.0.0.1', localAddress: CLIENT_ADDRESS })
  t.after(() => { socket.destroy() })
  await once(socket, 'connect')
  const chunks: Buffer[] = []
  socket.on('data', (c: Buffer) => chunks.push(c))
  const closed = new Promise<void>((resolve, reject) => {
    socket.once('close', () => resolve())
    socket.once('error', reject)
  })
  socket.write(bytes)
  await closed
  return Buffer.concat(chunks).toString('latin1')
}

/** An HTTPS GET through 127.0.0.1:`port` from 127.0.0.2 (HTTP/1.1, or h2 when allowed). */
export async function httpsGet (t: TestContext, port: number, urlPath: string, allowH2: boolean): Promise<{ status: number, body: string }> {
  // undici takes the source address as the Agent's `localAddress`: one inside `connect` is
  // overwritten by the client's own (undefined) when it builds the socket.
  const agent = new Agent({ allowH2, localAddress: CLIENT_ADDRESS, connect: { rejectUnauthorized: false } })
  t.after(async () => { if (!agent.closed && !agent.destroyed) await agent.close() })
  const r = await request(`https://127.0.0.1:${port}${urlPath}`, { dispatcher: agent })
  const body = await r.body.text()
  await agent.close()
  return { status: r.statusCode, body }
}

/**
 * The three checks every balancer goes through: plaintext HTTP (redirected, and the mux saw
 * the client's address), HTTPS passed through untouched (h1 and h2: the app sees 127.0.0.2),
 * and a raw route (`info.remoteAddress` is 127.0.0.2).
 */
export async function checkPlaintext (t: TestContext, mux: Mux, balancerPort: number): Promise<void> {
  const reply = await rawExchange(t, balancerPort, `GET /ip?x=1 HTTP/1.1\r\nHost: 127.0.0.1:${balancerPort}\r\n\r\n`)
  assert.match(reply, /^HTTP\/1\.1 301 /, reply)
  assert.match(reply, new RegExp(`\r\nlocation: https://127\\.0\\.0\\.1:${balancerPort}/ip\\?x=1\r\n`, 'i'), reply)
  const redirect = mux.decisions.find((d) => d.route === 'redirect')
  assert.ok(redirect !== undefined, 'the mux decided a redirect')
  assert.equal(redirect.remoteAddress, CLIENT_ADDRESS)
}

export async function checkHttps (t: TestContext, mux: Mux, balancerPort: number): Promise<void> {
  const one = await httpsGet(t, balancerPort, '/ip', false)
  assert.equal(one.status, 200)
  assert.match(one.body, /^127\.0\.0\.2 \d+ 1\.1$/, one.body)
  const two = await httpsGet(t, balancerPort, '/ip', true)
  assert.equal(two.status, 200)
  assert.match(two.body, /^127\.0\.0\.2 \d+ 2\.0$/, two.body)
  const https = mux.decisions.filter((d) => d.route === 'https')
  assert.equal(https.length, 2)
  for (const d of https) assert.equal(d.remoteAddress, CLIENT_ADDRESS)
}

export async function checkRaw (t: TestContext, mux: Mux, balancerPort: number): Promise<void> {
  assert.equal(await rawExchange(t, balancerPort, 'ECHO who am i\n'), `${CLIENT_ADDRESS}\n`)
  const echo = mux.decisions.find((d) => d.route === 'echo')
  assert.ok(echo !== undefined)
  assert.equal(echo.remoteAddress, CLIENT_ADDRESS)
  assert.equal(echo.bytes.toString('latin1').startsWith('ECHO '), true, 'the sniffed bytes start after the header')
}

/** After the checks: every connection came with a valid header, none was refused for it. */
export function checkHeaders (mux: Mux): void {
  const s = mux.app.portmux.stats()
  assert.equal(s.closed['proxy-header'], 0, JSON.stringify(s.closed))
  assert.ok(s.proxyHeaders >= mux.decisions.length, `${s.proxyHeaders} headers for ${mux.decisions.length} decisions`)
}

/** A direct connection from 127.0.0.1 without a header is refused: `required` is in force. */
export async function checkDirectRefused (t: TestContext, mux: Mux): Promise<void> {
  const socket = net.connect({ port: mux.port, host: '127.0.0.1' })
  t.after(() => { socket.destroy() })
  socket.on('error', () => {})
  await once(socket, 'connect')
  const chunks: Buffer[] = []
  socket.on('data', (c: Buffer) => chunks.push(c))
  const closed = once(socket, 'close')
  socket.write('GET /ip HTTP/1.1\r\nHost: x\r\n\r\n')
  await closed
  assert.equal(Buffer.concat(chunks).length, 0)
  assert.equal(mux.app.portmux.stats().closed['proxy-header'], 1)
}
