/**
 * The redirect, serve-both and behind-haproxy examples start, answer one request each and
 * stop, run as a user would run them (`node build/examples/<name>.js`).
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import net from 'node:net'
import tls from 'node:tls'
import { encodeProxyV2 } from '../src/sniff/proxy-v2.js'
import { readAll, startExample } from './helpers.js'

const T = { timeout: 60_000 }


/** Send `head` (and `prefix` first) over a new connection, TLS or not; everything the server sends until it closes. */
async function ask (t: TestContext, port: number, options: { tls: boolean, prefix?: Buffer, head: string }): Promise<string> {
  const raw = net.connect({ port, host: '127.0.0.1' })
  t.after(() => { raw.destroy() })
  raw.on('error', () => {})
  await once(raw, 'connect')
  if (options.prefix !== undefined) raw.write(options.prefix)
  if (!options.tls) {
    const reply = readAll(raw)
    raw.write(options.head)
    return (await reply).toString('latin1')
  }
  const secure = tls.connect({ socket: raw, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] })
  t.after(() => { secure.destroy() })
  secure.on('error', () => {})
  await once(secure, 'secureConnect')
  const reply = readAll(secure)
  secure.write(options.head)
  return (await reply).toString('latin1')
}

function get (port: number, path = '/'): string {
  return `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`
}

function body (reply: string): Record<string, unknown> {
  return JSON.parse(reply.slice(reply.indexOf('\r\n\r\n') + 4)) as Record<string, unknown>
}

test('examples/redirect.js: HTTPS is served, plain HTTP on the same port gets a 301 to https://', T, async (t) => {
  const { port, stop } = await startExample(t, 'redirect.js')
  const https = await ask(t, port, { tls: true, head: get(port) })
  assert.match(https, /^HTTP\/1\.1 200/)
  assert.deepEqual(body(https), { hello: 'over https' })
  const plain = await ask(t, port, { tls: false, head: get(port, '/a?b=1') })
  assert.match(plain, /^HTTP\/1\.1 301/)
  assert.match(plain, new RegExp(`\\r\\nlocation: https://127\\.0\\.0\\.1:${port}/a\\?b=1\\r\\n`, 'i'))
  assert.equal(await stop(), 0)
})

test('examples/serve-both.js: the same app over https and http on one port, request.protocol says which', T, async (t) => {
  const { port, stop } = await startExample(t, 'serve-both.js')
  const https = await ask(t, port, { tls: true, head: get(port) })
  assert.match(https, /^HTTP\/1\.1 200/)
  assert.equal(body(https).protocol, 'https')
  const plain = await ask(t, port, { tls: false, head: get(port) })
  assert.match(plain, /^HTTP\/1\.1 200/)
  assert.equal(body(plain).protocol, 'http')
  assert.equal(await stop(), 0)
})

test('examples/behind-haproxy.js: a PROXY v2 header from a trusted peer names request.ip, over HTTPS and before the redirect', T, async (t) => {
  const { port, stop } = await startExample(t, 'behind-haproxy.js')
  const header = (address: string): Buffer => encodeProxyV2({
    source: { address, port: 51234 },
    destination: { address: '127.0.0.1', port }
  })
  const proxied = await ask(t, port, { tls: true, prefix: header('203.0.113.7'), head: get(port) })
  assert.match(proxied, /^HTTP\/1\.1 200/)
  assert.deepEqual(body(proxied), { ip: '203.0.113.7', protocol: 'https' })
  // Plain HTTP behind the header is redirected like any other.
  const redirected = await ask(t, port, { tls: false, prefix: header('198.51.100.9'), head: get(port, '/x') })
  assert.match(redirected, /^HTTP\/1\.1 301/)
  // Without a header, the real peer.
  const direct = await ask(t, port, { tls: true, head: get(port) })
  assert.equal(body(direct).ip, '127.0.0.1')
  assert.equal(await stop(), 0)
})
