/**
 * What a trusted PROXY v2 header carries beyond the address — TLVs such as the authority,
 * the SSL facts and the AWS VPC endpoint id — reaches raw routes (`info.proxyHeader`) and
 * HTTP (`proxyHeaderOf(request)`) over HTTP/1, HTTPS and HTTP/2.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import http2 from 'node:http2'
import net from 'node:net'
import tls from 'node:tls'
import Fastify from 'fastify'
import { createServer } from '../../src/node.js'
import { portmux, serverFactory } from '../../src/fastify.js'
import { proxyHeaderOf } from '../../src/peer.js'
import { encodeProxyV2, PP2_TYPE_AUTHORITY, PP2_TYPE_AWS } from '../../src/sniff/proxy-v2.js'
import type { ConnectionInfo } from '../../src/types.js'
import { fixtureBytes } from '../sniff/vectors.js'
import { exchange, listen, readAll, testCertificate } from '../helpers.js'

const T = { timeout: 20_000 }

/** A v2 header as an AWS NLB sends it: the client, the authority, the VPC endpoint id. */
const header = encodeProxyV2({
  source: { address: '203.0.113.7', port: 40000 },
  destination: { address: '198.51.100.1', port: 443 },
  tlvs: [
    { type: PP2_TYPE_AUTHORITY, value: Buffer.from('app.example') },
    { type: PP2_TYPE_AWS, value: Buffer.concat([Buffer.of(0x01), Buffer.from('vpce-08d2bf15fac5001c9')]) }
  ]
})

test('raw routes see the whole header in info.proxyHeader; the SSL TLVs of a real HAProxy too', T, async (t) => {
  const server = createServer(undefined, { proxyProtocol: { trusted: ['127.0.0.1'] } })
  const seen: ConnectionInfo[] = []
  server.route('echo', { match: { prefix: 'ECHO' }, handler: (s, info) => { seen.push(info); s.end('ok') } })
  const port = await listen(t, server)
  await exchange(t, port, Buffer.concat([header, Buffer.from('ECHO')]))
  await exchange(t, port, Buffer.concat([fixtureBytes('proxy-v2', 'haproxy-2.6.12-ssl-cn'), Buffer.from('ECHO')]))
  assert.equal(seen[0].remoteAddress, '203.0.113.7')
  assert.equal(seen[0].proxyHeader?.tlvs.authority, 'app.example')
  assert.equal(seen[0].proxyHeader?.tlvs.awsVpceId, 'vpce-08d2bf15fac5001c9')
  assert.equal(seen[1].proxyHeader?.tlvs.authority, 'app.example')
  assert.equal(seen[1].proxyHeader?.tlvs.ssl?.cn, 'client')
  assert.equal(seen[1].proxyHeader?.tlvs.alpn, 'h2')
})

test('HTTP over TLS, h1 and h2: proxyHeaderOf(req) gives the header', T, async (t) => {
  const { key, cert } = await testCertificate()
  const server = createServer((req, res) => {
    const h = proxyHeaderOf(req)
    res.end(`${h?.tlvs.awsVpceId ?? 'none'} ${h?.source?.address ?? ''} ${req.socket.remoteAddress ?? ''}`)
  }, { tls: { key, cert }, proxyProtocol: { trusted: ['127.0.0.1'] } })
  const port = await listen(t, server)

  // HTTP/1.1 over TLS, the header first on the TCP connection.
  const raw = net.connect(port, '127.0.0.1')
  t.after(() => { raw.destroy() })
  await once(raw, 'connect')
  raw.write(header)
  const s1 = tls.connect({ socket: raw, servername: 'localhost', rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] })
  await once(s1, 'secureConnect')
  s1.end('GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')
  assert.match((await readAll(s1)).toString(), /\r\n\r\nvpce-08d2bf15fac5001c9 203\.0\.113\.7 203\.0\.113\.7$/)

  // HTTP/2 over TLS.
  const session = http2.connect(`https://localhost:${port}`, {
    rejectUnauthorized: false,
    createConnection: () => {
      const c = net.connect(port, '127.0.0.1')
      c.write(header)
      return tls.connect({ socket: c, servername: 'localhost', rejectUnauthorized: false, ALPNProtocols: ['h2'] })
    }
  })
  t.after(() => { session.destroy() })
  const req = session.request({ ':path': '/' })
  let body = ''
  req.setEncoding('utf8')
  req.on('data', (d: string) => { body += d })
  await once(req, 'end')
  assert.equal(body, 'vpce-08d2bf15fac5001c9 203.0.113.7 203.0.113.7')
})

test('Fastify: proxyHeaderOf(request) on plaintext HTTP; no header, undefined', T, async (t) => {
  const app = Fastify({ serverFactory: serverFactory({ proxyProtocol: { trusted: ['127.0.0.1'] } }) })
  await app.register(portmux)
  app.get('/', async (request) => ({ authority: proxyHeaderOf(request)?.tlvs.authority ?? null, ip: request.ip }))
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.after(async () => { await app.close() })
  const port = (app.server.address() as net.AddressInfo).port
  const withHeader = await exchange(t, port, Buffer.concat([header, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')]))
  assert.match(withHeader, /\{"authority":"app\.example","ip":"203\.0\.113\.7"\}$/)
  const without = await exchange(t, port, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
  assert.match(without, /\{"authority":null,"ip":"127\.0\.0\.1"\}$/)
})
