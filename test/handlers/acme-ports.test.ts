/**
 * Port 443 without root, the two ways the README gives: a node binary with the
 * `cap_net_bind_service` file capability run by an unprivileged user, and systemd socket
 * activation (the listening socket inherited as fd 3, `listen({ fd: 3 })`), emulated here
 * by spawning the app with the socket as its fd 3.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { copyFileSync, chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import tls from 'node:tls'
import { fileURLToPath } from 'node:url'
import { exchange } from '../helpers.js'
import { activated, activationSocket, start } from '../spawn.js'

const fixture = fileURLToPath(new URL('./acme-ports-fixture.js', import.meta.url))
/** What the fixture prints once it listens. */
const LISTENING = /^listening$/m

function httpsGet (port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ port, host: '127.0.0.1', servername: 'localhost', rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] }, () => {
      socket.end('GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')
    })
    let body = ''
    socket.setEncoding('utf8').on('data', (d: string) => { body += d })
    socket.on('end', () => resolve(body))
    socket.once('error', reject)
  })
}

/** A free port below 1024 (bound by root here, then released). */
async function freeLowPort (): Promise<number> {
  for (let port = 900; port < 1024; port++) {
    const server = net.createServer()
    const ok = await new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false))
      server.listen(port, '127.0.0.1', () => resolve(true))
    })
    if (ok) {
      await new Promise<void>((resolve) => server.close(() => resolve()))
      return port
    }
  }
  throw new Error('no free port below 1024')
}

const root = process.getuid?.() === 0
const unprivilegedStart = existsSync('/proc/sys/net/ipv4/ip_unprivileged_port_start') ? Number(readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8')) : 1024
const tools = ['/usr/sbin/setcap', '/usr/bin/setpriv'].every((f) => existsSync(f))
/** setpriv execs the program itself (no child left behind when it is killed). */
const asNobody = ['--reuid=nobody', '--regid=nogroup', '--clear-groups', '--']

test('a low port as an unprivileged user: node with cap_net_bind_service', { skip: !root || !tools ? 'needs root (to run as nobody) and setcap/setpriv' : unprivilegedStart < 1000 ? 'this kernel lets anyone bind low ports' : false }, async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'portmux-setcap-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  chmodSync(dir, 0o755)
  const node = path.join(dir, 'node')
  copyFileSync(process.execPath, node)
  chmodSync(node, 0o755)
  const port = await freeLowPort()
  const env = { PATH: process.env.PATH ?? '', PORT: String(port), HOME: dir }

  // Without the capability the unprivileged user is refused...
  await assert.rejects(start(t, '/usr/bin/setpriv', [...asNobody, node, fixture], { env, inheritEnv: false, ready: LISTENING, signal: 'SIGKILL' }), /EACCES/)

  // ...with it, the same binary binds the port and serves through the pipeline.
  execFileSync('/usr/sbin/setcap', ['cap_net_bind_service=+ep', node])
  await start(t, '/usr/bin/setpriv', [...asNobody, node, fixture], { env, inheritEnv: false, ready: LISTENING, signal: 'SIGKILL' })
  assert.match(await httpsGet(port), /uid 65534$/)
  assert.equal(await exchange(t, port, 'ECHO low', { end: true }), 'ECHO low')
})

test('systemd socket activation: the app listens on the inherited fd 3 with listen({ fd: 3 })', { skip: process.platform === 'win32' }, async (t) => {
  // What systemd does: bind the socket, then start the service with it as fd 3.
  const { port, fd, server: socket } = await activationSocket(t)
  assert.ok(fd > 2)
  // The child's pid is LISTEN_PID, as systemd sets it for the service.
  await start(t, ...activated(fixture), {
    env: { PORT: '1' },
    fds: [fd],
    ready: LISTENING,
    signal: 'SIGKILL'
  })
  // The socket is the child's now: the parent stops accepting on it.
  socket.close()
  // HTTPS, the plaintext redirect and a raw route, all through the pipeline on the inherited socket.
  assert.match(await httpsGet(port), /^HTTP\/1\.1 200[^]*uid \d+$/)
  assert.match(await exchange(t, port, 'GET /x HTTP/1.1\r\nHost: localhost\r\n\r\n'), /^HTTP\/1\.1 301[^]*location: https:\/\/localhost\/x/i)
  assert.equal(await exchange(t, port, 'ECHO fd', { end: true }), 'ECHO fd')
})
