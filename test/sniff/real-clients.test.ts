/**
 * The detectors behind a real listener: a MuxServer with one route per protocol, and the real
 * client programs from Debian connecting to it (openvpn, dig, logger, adb). The route must get
 * the connection, named by its detector, with the client's first bytes. Also a PROXY v2 header
 * of the UNIX family on a real socket: the peer stays the real one.
 *
 * Each client test skips, saying which Debian package is missing, when its program is absent.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { execFile, spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import Fastify from 'fastify'
import { createServer } from '../../src/node.js'
import { portmux, serverFactory } from '../../src/fastify.js'
import type { MuxServer } from '../../src/server.js'
import { encodeProxyV2 } from '../../src/sniff/proxy-v2.js'
import type { ConnectionInfo } from '../../src/types.js'
import { exchange, listen, until } from '../helpers.js'
import { freePort } from '../interop/load-balancer.js'

const run = promisify(execFile)

/** The absolute path of `name` (also looked for in the sbin folders), or null. */
async function findProgram (name: string): Promise<string | null> {
  const PATH = [process.env.PATH ?? '', '/usr/local/sbin', '/usr/sbin', '/sbin'].join(':')
  try {
    const { stdout } = await run('sh', ['-c', `command -v ${name}`], { env: { ...process.env, PATH } })
    return stdout.trim() === '' ? null : stdout.trim()
  } catch {
    return null
  }
}

const programs = {
  openvpn: await findProgram('openvpn'),
  openssl: await findProgram('openssl'),
  dig: await findProgram('dig'),
  logger: await findProgram('logger'),
  adb: await findProgram('adb')
}

function skipUnless (program: keyof typeof programs, pkg: string): { timeout: number, skip: string | false } {
  return { timeout: 30_000, skip: programs[program] === null ? `${program} is not installed (Debian package: ${pkg})` : false }
}

async function tempDir (t: TestContext): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'portmux-sniff-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/** Run a client program; it is killed after the test if it is still running. */
function client (t: TestContext, program: string, args: string[], env: Record<string, string> = {}): void {
  const child = spawn(program, args, { stdio: 'ignore', env: { ...process.env, ...env } })
  child.on('error', () => {})
  t.after(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
}

/** A mux whose only route takes `match` connections, keeps their info and closes them. */
async function muxWithRoute (t: TestContext, match: 'openvpn' | 'dns' | 'syslog' | 'adb'): Promise<{ server: MuxServer, port: number, infos: ConnectionInfo[] }> {
  const infos: ConnectionInfo[] = []
  const server = createServer(undefined, { sniffTimeout: 10_000 })
  server.route(match, { match, handler: (socket, info) => { infos.push(info); socket.destroy() } })
  const port = await listen(t, server)
  return { server, port, infos }
}

const openvpnOptions = { timeout: 30_000, skip: skipUnless('openvpn', 'openvpn').skip || skipUnless('openssl', 'openssl').skip }

test('openvpn route: a real OpenVPN client with tls-auth and --auth MD5-SHA1 (36-byte HMAC)', openvpnOptions, async (t) => {
  const dir = await tempDir(t)
  const file = (name: string): string => path.join(dir, name)
  const openssl = programs.openssl ?? 'openssl'
  await run(openssl, ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', file('ca.key'), '-out', file('ca.crt'), '-subj', '/CN=ca', '-days', '1'])
  await run(openssl, ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', file('client.key'), '-out', file('client.csr'), '-subj', '/CN=client'])
  await run(openssl, ['x509', '-req', '-in', file('client.csr'), '-CA', file('ca.crt'), '-CAkey', file('ca.key'), '-CAcreateserial', '-out', file('client.crt'), '-days', '1'])
  await run(programs.openvpn ?? 'openvpn', ['--genkey', 'secret', file('ta.key')])

  const { port, infos } = await muxWithRoute(t, 'openvpn')
  client(t, programs.openvpn ?? 'openvpn', [
    '--client', '--dev', 'null', '--ifconfig-noexec', '--route-noexec', '--nobind', '--connect-retry-max', '1',
    '--proto', 'tcp-client', '--remote', '127.0.0.1', String(port),
    '--ca', file('ca.crt'), '--cert', file('client.crt'), '--key', file('client.key'),
    '--tls-auth', file('ta.key'), '1', '--auth', 'MD5-SHA1'
  ])
  await until(() => infos.length > 0, 20_000, 'the openvpn route to get the connection')
  const [info] = infos
  assert.equal(info.route, 'openvpn')
  assert.equal(info.protocol, 'openvpn')
  // Length 58 = opcode and session id (9), HMAC (36), replay id, net time, ack count, message id.
  assert.equal(info.bytes.readUInt16BE(0), 58)
  assert.equal(info.bytes[2], 0x38, 'P_CONTROL_HARD_RESET_CLIENT_V2, key id 0')
  assert.equal(info.bytes.length, 60)
})

test('dns route: dig +tcp', skipUnless('dig', 'bind9-dnsutils'), async (t) => {
  const { port, infos } = await muxWithRoute(t, 'dns')
  client(t, programs.dig ?? 'dig', ['+tcp', '+tries=1', '+timeout=5', '@127.0.0.1', '-p', String(port), 'example.com'])
  await until(() => infos.length > 0, 20_000, 'the dns route to get the connection')
  assert.equal(infos[0].protocol, 'dns')
  assert.equal(infos[0].bytes.readUInt16BE(0), infos[0].bytes.length - 2, 'one whole message')
})

test('syslog route: logger --tcp, in both framings', skipUnless('logger', 'bsdutils'), async (t) => {
  const { port, infos } = await muxWithRoute(t, 'syslog')
  const logger = programs.logger ?? 'logger'
  client(t, logger, ['--tcp', '--server', '127.0.0.1', '--port', String(port), '-t', 'portmux', 'framed by LF'])
  await until(() => infos.length === 1, 20_000, 'the first logger connection')
  client(t, logger, ['--tcp', '--octet-count', '--rfc3164', '--server', '127.0.0.1', '--port', String(port), '-t', 'portmux', 'octet counted'])
  await until(() => infos.length === 2, 20_000, 'the second logger connection')
  assert.deepEqual(infos.map((i) => i.protocol), ['syslog', 'syslog'])
  assert.match(infos[0].bytes.toString('latin1'), /^<13>1 \d{4}-/)
  assert.match(infos[1].bytes.toString('latin1'), /^\d+ <13>[A-Z][a-z]{2} [ \d]\d /)
})

test('adb route: adb connect (the adb server sends CNXN)', skipUnless('adb', 'adb'), async (t) => {
  const { port, infos } = await muxWithRoute(t, 'adb')
  // The adb server this starts listens on a port of its own, and is stopped after the test.
  const serverPort = String(await freePort())
  const adb = programs.adb ?? 'adb'
  t.after(async () => { await run(adb, ['-P', serverPort, 'kill-server']).catch(() => {}) })
  client(t, adb, ['-P', serverPort, 'connect', `127.0.0.1:${port}`])
  await until(() => infos.length > 0, 20_000, 'the adb route to get the connection')
  assert.equal(infos[0].protocol, 'adb')
  assert.equal(infos[0].bytes.subarray(0, 4).toString('latin1'), 'CNXN')
})

// ---------------------------------------------------------------------------------------------
// PROXY v2 over UNIX: no usable client address, so the real one stays.

const unixHeader = encodeProxyV2({ family: 'unix', source: { address: '/run/client.sock', port: 0 }, destination: { address: '/run/portmux.sock', port: 0 } })
const GET = 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'

test('PROXY v2 UNIX header from a trusted peer: HTTP and a raw route see the real 127.0.0.1', async (t) => {
  for (const fam of [0x31, 0x32]) {
    const header = Buffer.from(unixHeader)
    header[13] = fam
    const server = createServer((req, res) => { res.end(`${req.socket.remoteAddress ?? '?'}`) }, { proxyProtocol: { trusted: ['127.0.0.1'], required: true } })
    const infos: ConnectionInfo[] = []
    server.route('echo', { match: { prefix: 'ECHO ' }, handler: (socket, info) => { infos.push(info); socket.end('ok\n') } })
    const port = await listen(t, server)
    assert.match(await exchange(t, port, Buffer.concat([header, Buffer.from(GET)])), /\r\n\r\n127\.0\.0\.1$/)
    assert.equal(await exchange(t, port, Buffer.concat([header, Buffer.from('ECHO x\n')])), 'ok\n')
    assert.equal(infos[0].remoteAddress, '127.0.0.1')
    assert.equal(infos[0].bytes.toString(), 'ECHO x\n', 'the header was read and removed')
    assert.equal(server.stats().proxyHeaders, 2)
  }
})

test('PROXY v2 UNIX header: Fastify request.ip is the real peer', async (t) => {
  const app = Fastify({ serverFactory: serverFactory({ proxyProtocol: { trusted: ['127.0.0.1'] } }) })
  await app.register(portmux)
  app.get('/', async (request) => request.ip)
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.after(() => app.close())
  const port = (app.server.address() as { port: number }).port
  assert.match(await exchange(t, port, Buffer.concat([unixHeader, Buffer.from(GET)])), /\r\n\r\n127\.0\.0\.1$/)
})
