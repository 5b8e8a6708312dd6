/**
 * The raw-route examples start, answer one request of each kind and stop, run as a user
 * would run them (`node build/examples/<name>.js`) and driven by real clients.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { once } from 'node:events'
import net, { type AddressInfo } from 'node:net'
import tls from 'node:tls'
import { readAll, startExample } from './helpers.js'

const T = { timeout: 60_000 }

function curl (...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('curl', ['-s', '--max-time', '10', ...args], (err, stdout) => err !== null ? reject(err) : resolve(stdout))
  })
}


/** Connect, send `bytes` (then FIN), read until the server closes. */
async function exchangeBytes (t: TestContext, port: number, bytes: Buffer | string): Promise<Buffer> {
  const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true })
  t.after(() => { socket.destroy() })
  socket.on('error', () => {})
  await once(socket, 'connect')
  const reply = readAll(socket)
  socket.end(bytes)
  return await reply
}

test('examples/ssh-and-https.js: SSH to the sshd, HTTPS and the redirect on one port', T, async (t) => {
  // A stand-in sshd: its banner, then whatever the client said, then the end.
  const heard: string[] = []
  const sshd = net.createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', () => {})
    s.write('SSH-2.0-FakeSSH_1.0\r\n')
    s.setEncoding('latin1')
    s.on('data', (d: string) => { heard.push(d) })
    s.on('end', () => { s.end() })
  })
  sshd.listen(0, '127.0.0.1')
  await once(sshd, 'listening')
  t.after(() => { sshd.close() })

  const { port } = await startExample(t, 'ssh-and-https.js', { SSH_HOST: '127.0.0.1', SSH_PORT: String((sshd.address() as AddressInfo).port) })
  const banner = await exchangeBytes(t, port, 'SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n')
  assert.equal(banner.toString('latin1'), 'SSH-2.0-FakeSSH_1.0\r\n')
  assert.equal(heard.join(''), 'SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n')

  const body = JSON.parse(await curl('-k', `https://127.0.0.1:${port}/`)) as Record<string, unknown>
  assert.equal(body.hello, 'from portmux')
  assert.equal(body.protocol, 'https')
  const head = await curl('-i', `http://127.0.0.1:${port}/x?y=1`)
  assert.match(head, /^HTTP\/1\.1 301/)
  assert.match(head, new RegExp(`\\r\\nlocation: https://127\\.0\\.0\\.1:${port}/x\\?y=1\\r\\n`, 'i'))
})

function frame (payload: string): Buffer {
  const p = Buffer.from(payload)
  const h = Buffer.alloc(4)
  h.writeUInt32BE(p.length)
  return Buffer.concat([h, p])
}

test('examples/custom-protocol.js: HTTPS, the PMX1 binary protocol and the ALPN line protocol on one port', T, async (t) => {
  const { port } = await startExample(t, 'custom-protocol.js')

  // The binary protocol: magic, two frames, the zero-length frame that ends the session.
  const magic = Buffer.of(0x50, 0x4d, 0x58, 0x01)
  const reply = await exchangeBytes(t, port, Buffer.concat([magic, frame('hello'), frame('wörld'), frame('')]))
  assert.deepEqual(reply, Buffer.concat([frame('HELLO'), frame('WÖRLD')]))

  // The line protocol inside TLS, chosen by ALPN.
  const socket = tls.connect({ port, host: '127.0.0.1', servername: 'demo.test', ALPNProtocols: ['portmux-demo'], rejectUnauthorized: false })
  t.after(() => { socket.destroy() })
  const lines = readAll(socket)
  await once(socket, 'secureConnect')
  assert.equal(socket.alpnProtocol, 'portmux-demo')
  socket.write('PING one\nWHO\nQUIT\n')
  assert.equal((await lines).toString(), 'PONG one\nsni=demo.test alpn=portmux-demo\nBYE\n')

  // Ordinary HTTPS (curl offers h2 and http/1.1) still reaches the app.
  const body = JSON.parse(await curl('-k', `https://127.0.0.1:${port}/`)) as Record<string, unknown>
  assert.equal(body.hello, 'from portmux')
  assert.equal(body.httpVersion, '2.0')
})
