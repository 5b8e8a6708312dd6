/**
 * PROXY headers written by proxy routes, read by real servers that parse them: nginx
 * (`stream`, `listen … proxy_protocol`, answering with `$proxy_protocol_addr` and friends)
 * and HAProxy (`bind … accept-proxy`, `mode http`, answering with `src`/`dst`), for both
 * header versions and every mix of address families a client can arrive with:
 *
 * - IPv4: a client on 127.0.0.1, the mux on 127.0.0.1;
 * - IPv6: a client on ::1, the mux on ::1 (the upstream itself is on IPv4);
 * - IPv4 through a dual-stack listener: the mux on `::`, the client on 127.0.0.1, so Node
 *   reports both ends as `::ffff:127.0.0.1` — written as plain IPv4;
 * - families that still differ: the client's address comes from a trusted PROXY header
 *   (IPv6, from a balancer in front) while the mux's own address is IPv4 — written as IPv6,
 *   the mux's address IPv4-mapped, never as UNKNOWN or LOCAL.
 *
 * Needs: nginx with its stream module (nginx, libnginx-mod-stream), haproxy.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import net from 'node:net'
import { createServer } from '../../src/node.js'
import type { MuxServer } from '../../src/server.js'
import { listen } from '../helpers.js'
import { findNginxStream, findProgram, freePort, startHaproxy, startNginx } from './load-balancer.js'

const nginx = await findNginxStream()
const haproxy = await findProgram('haproxy')
const skipNginx = 'missing' in nginx ? nginx.missing : false
const skipHaproxy = haproxy === null ? 'haproxy is not installed (Debian package: haproxy)' : false

async function ipv6Loopback (): Promise<boolean> {
  const s = net.createServer()
  try {
    s.listen(0, '::1')
    await once(s, 'listening')
    return true
  } catch {
    return false
  } finally {
    s.close()
  }
}
const noIpv6 = await ipv6Loopback() ? false : 'no IPv6 loopback (::1) here'

/** nginx answering every connection with the addresses of the PROXY header it parsed. */
async function nginxWho (t: TestContext): Promise<number> {
  const port = await freePort()
  await startNginx(t, nginx, port, [
    `listen 127.0.0.1:${port} proxy_protocol;`,
    'return "$proxy_protocol_addr $proxy_protocol_port $proxy_protocol_server_addr $proxy_protocol_server_port\\n";'
  ])
  return port
}

/** HAProxy answering every HTTP request with the source and destination of the PROXY header it accepted. */
async function haproxyWho (t: TestContext): Promise<number> {
  const port = await freePort()
  await startHaproxy(t, haproxy ?? 'haproxy', port, [
    'global',
    '    maxconn 64',
    'defaults',
    '    mode http',
    '    timeout connect 5s',
    '    timeout client 30s',
    '    timeout server 30s',
    'frontend who',
    `    bind 127.0.0.1:${port} accept-proxy`,
    '    http-request return status 200 content-type text/plain lf-string "%[src] %[src_port] %[dst] %[dst_port]\\n"'
  ])
  return port
}

/** A mux on `host` with one proxy route per header version to `upstream`; PROXY headers believed from loopback. */
async function mux (t: TestContext, host: string, upstream: number): Promise<{ server: MuxServer, port: number }> {
  const server = createServer((_req, res) => { res.end('app\n') }, {
    proxyProtocol: { trusted: ['127.0.0.1', '::1'] },
    routes: {
      v1: { match: { prefix: 'GET /v1 ' }, proxy: { port: upstream, proxyProtocol: 1 } },
      v2: { match: { prefix: 'GET /v2 ' }, proxy: { port: upstream, proxyProtocol: 2 } }
    }
  })
  const port = await listen(t, server, host)
  return { server, port }
}

interface Seen { source: string, sourcePort: number, destination: string, destinationPort: number }

/**
 * One spelling for an IPv4-mapped address: version 1 lines write IPv6 as hex groups, as the
 * specification's grammar asks (`::ffff:7f00:1`), and nginx echoes the text as it came;
 * from version 2 it formats the bytes itself (`::ffff:127.0.0.1`).
 */
function mappedDotted (address: string): string {
  const m = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(address)
  if (m === null) return address
  const hi = parseInt(m[1], 16)
  const lo = parseInt(m[2], 16)
  return `::ffff:${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`
}

/**
 * Connect to the mux at `host`, optionally send a PROXY header of our own (as a balancer in
 * front would), then an HTTP request for route `v<version>`; the upstream's answer, parsed.
 */
async function ask (t: TestContext, host: string, port: number, version: 1 | 2, header = ''): Promise<{ seen: Seen, client: { address: string, port: number } }> {
  const socket = net.connect({ host, port })
  t.after(() => { socket.destroy() })
  await once(socket, 'connect')
  const client = { address: socket.localAddress ?? '', port: socket.localPort ?? 0 }
  const chunks: Buffer[] = []
  socket.on('data', (c: Buffer) => chunks.push(c))
  // nginx answers without reading the request and closes with it unread: a RST right behind
  // the answer, passed on by the mux. The answer is what counts.
  socket.on('error', () => {})
  const done = new Promise<void>((resolve) => { socket.once('close', () => resolve()) })
  socket.write(`${header}GET /v${version} HTTP/1.1\r\nHost: who\r\nConnection: close\r\n\r\n`)
  await done
  const text = Buffer.concat(chunks).toString('latin1')
  const line = text.split('\r\n\r\n').pop()?.trim() ?? ''
  const m = /^(\S+) (\d+) (\S+) (\d+)$/.exec(line)
  assert.ok(m !== null, `the upstream's answer: ${JSON.stringify(text)}`)
  return { seen: { source: mappedDotted(m[1]), sourcePort: Number(m[2]), destination: mappedDotted(m[3]), destinationPort: Number(m[4]) }, client }
}

/** Every family mix, both versions, against the upstream on `upstream`. */
async function checkAll (t: TestContext, upstream: number, v6: boolean): Promise<void> {
  const v4mux = await mux(t, '127.0.0.1', upstream)
  for (const version of [1, 2] as const) {
    // IPv4 end to end.
    const a = await ask(t, '127.0.0.1', v4mux.port, version)
    assert.deepEqual(a.seen, { source: '127.0.0.1', sourcePort: a.client.port, destination: '127.0.0.1', destinationPort: v4mux.port }, `v${version}, IPv4`)

    // The client's address from a trusted header (IPv6), the mux's own IPv4: both as IPv6.
    const b = await ask(t, '127.0.0.1', v4mux.port, version, 'PROXY TCP6 2001:db8::7 2001:db8::1 40000 443\r\n')
    assert.deepEqual(b.seen, { source: '2001:db8::7', sourcePort: 40000, destination: '::ffff:127.0.0.1', destinationPort: v4mux.port }, `v${version}, IPv6 client, IPv4 mux`)
  }
  assert.equal(v4mux.server.stats().proxy.connected, 4)
  if (!v6) return

  const v6mux = await mux(t, '::1', upstream)
  const dual = await mux(t, '::', upstream)
  for (const version of [1, 2] as const) {
    // IPv6 client and mux, IPv4 upstream.
    const c = await ask(t, '::1', v6mux.port, version)
    assert.deepEqual(c.seen, { source: '::1', sourcePort: c.client.port, destination: '::1', destinationPort: v6mux.port }, `v${version}, IPv6`)

    // IPv4 through the dual-stack listener: Node says ::ffff:127.0.0.1 for both ends.
    const d = await ask(t, '127.0.0.1', dual.port, version)
    assert.deepEqual(d.seen, { source: '127.0.0.1', sourcePort: d.client.port, destination: '127.0.0.1', destinationPort: dual.port }, `v${version}, IPv4 via ::`)

    // An IPv4 client named by a trusted header reaching the IPv6 mux: both as IPv6.
    const e = await ask(t, '::1', v6mux.port, version, 'PROXY TCP4 192.0.2.7 192.0.2.1 40001 443\r\n')
    assert.deepEqual(e.seen, { source: '::ffff:192.0.2.7', sourcePort: 40001, destination: '::1', destinationPort: v6mux.port }, `v${version}, IPv4 client, IPv6 mux`)
  }
  assert.equal(v6mux.server.stats().proxy.connected, 4)
  assert.equal(dual.server.stats().proxy.connected, 2)
}

test('nginx (listen … proxy_protocol) reads the addresses of every family mix from v1 and v2 headers', { skip: skipNginx, timeout: 30_000 }, async (t) => {
  await checkAll(t, await nginxWho(t), noIpv6 === false)
})

test('HAProxy (bind … accept-proxy) reads the addresses of every family mix from v1 and v2 headers', { skip: skipHaproxy, timeout: 30_000 }, async (t) => {
  await checkAll(t, await haproxyWho(t), noIpv6 === false)
})
