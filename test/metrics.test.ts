/**
 * portmux/metrics: a real prom-client registry scraped after real traffic (HTTPS, a
 * redirect, raw and proxy routes, a matcher that throws, a refusal), and a `/metrics`
 * route served through the mux itself.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import net, { type AddressInfo } from 'node:net'
import { once } from 'node:events'
import Fastify, { type FastifyInstance } from 'fastify'
import { Registry } from 'prom-client'
import { Agent, request } from 'undici'
import portmux, { createServer, serverFactory, type MuxOptions } from '../src/index.js'
import { registerMetrics } from '../src/metrics.js'
import { connect, exchange, listen, readAll, testCertificate, until } from './helpers.js'

const T = { timeout: 30_000 }

/** One sample from the text exposition format: `name{labels} value`. */
function sample (text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (m === null || m[1] !== name) continue
    const got: Record<string, string> = {}
    for (const [, k, v] of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) got[k] = v
    if (Object.keys(got).length !== Object.keys(labels).length) continue
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[3])
  }
  return undefined
}

/** The metric's `# TYPE` line. */
function typeOf (text: string, name: string): string | undefined {
  return new RegExp(`^# TYPE ${name} (\\w+)$`, 'm').exec(text)?.[1]
}

/** An upstream that answers every line with "up: <line>". */
async function upstream (t: TestContext): Promise<number> {
  const server = net.createServer((socket) => {
    socket.on('error', () => {})
    socket.on('data', (d) => socket.end('up: ' + d.toString('latin1')))
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return (server.address() as AddressInfo).port
}

async function fastifyApp (t: TestContext, mux: MuxOptions): Promise<FastifyInstance> {
  const app = Fastify({ serverFactory: serverFactory(mux) })
  t.after(async () => {
    app.portmux?.closeAllConnections()
    await app.close()
  })
  await app.register(portmux)
  return app
}

test('counters, gauges and the sniff-time histogram after real traffic, scraped over HTTPS through the mux', T, async (t) => {
  const { key, cert } = await testCertificate()
  const up = await upstream(t)
  const app = await fastifyApp(t, { tls: { key, cert }, http: 'redirect', sniffTimeout: 300 })
  const registry = new Registry()
  const unregister = registerMetrics(app.portmux, { registry })
  app.addHook('onClose', async () => unregister())
  app.get('/metrics', async (_req, reply) => reply.type(registry.contentType).send(await registry.metrics()))
  app.get('/', async () => 'hello')
  // A matcher that throws for one kind of line: counted, then the next route takes it.
  app.tcp('boom', { match: (bytes) => { if (bytes[5] === 0x62) throw new Error('boom'); return 'no' }, handler: (s) => s.destroy() })
  app.tcp('echo', { match: { prefix: 'ECHO ' }, handler: (socket) => { socket.on('error', () => {}); socket.pipe(socket) } })
  app.tcp('up', { match: { prefix: 'UP ' }, proxy: { port: up } })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as AddressInfo).port

  const dispatcher = new Agent({ connect: { ca: cert, servername: 'localhost' } })
  t.after(() => dispatcher.destroy())
  const hello = await request(`https://127.0.0.1:${port}/`, { dispatcher })
  assert.equal(await hello.body.text(), 'hello')

  assert.match(await exchange(t, port, 'GET /a HTTP/1.1\r\nHost: localhost\r\n\r\n'), /^HTTP\/1\.1 301 /)
  assert.equal(await exchange(t, port, 'ECHO hi\n', { end: true }), 'ECHO hi\n')
  assert.equal(await exchange(t, port, 'ECHO boom\n', { end: true }), 'ECHO boom\n')
  assert.equal(await exchange(t, port, 'UP there\n'), 'up: UP there\n')
  // A silent client: refused at the sniff timeout.
  const silent = await connect(t, port)
  await readAll(silent)
  await until(() => app.portmux.stats().closed['sniff-timeout'] === 1 && app.portmux.stats().open.routes.echo === 0)

  const text = await registry.metrics()
  assert.equal(typeOf(text, 'portmux_connections_accepted_total'), 'counter')
  assert.equal(sample(text, 'portmux_connections_accepted_total'), 6, 'HTTPS, redirect, 2 echo, proxy, silent')
  assert.equal(typeOf(text, 'portmux_connections_pending'), 'gauge')
  assert.equal(sample(text, 'portmux_connections_pending'), 0)
  assert.equal(typeOf(text, 'portmux_connections_handshaking'), 'gauge')
  assert.equal(sample(text, 'portmux_connections_handshaking'), 0)

  assert.equal(typeOf(text, 'portmux_connections_decided_total'), 'counter')
  assert.equal(sample(text, 'portmux_connections_decided_total', { destination: 'https', route: '' }), 1)
  assert.equal(sample(text, 'portmux_connections_decided_total', { destination: 'redirect', route: '' }), 1)
  assert.equal(sample(text, 'portmux_connections_decided_total', { destination: 'http', route: '' }), 0)
  assert.equal(sample(text, 'portmux_connections_decided_total', { destination: 'route', route: 'echo' }), 2)
  assert.equal(sample(text, 'portmux_connections_decided_total', { destination: 'route', route: 'up' }), 1)
  assert.equal(sample(text, 'portmux_connections_decided_total', { destination: 'route', route: 'boom' }), 0)

  assert.equal(typeOf(text, 'portmux_connections_open'), 'gauge')
  const openHttps = sample(text, 'portmux_connections_open', { destination: 'https', route: '' })
  assert.ok(openHttps === 0 || openHttps === 1, 'at most the HTTPS connection undici keeps alive')
  assert.equal(sample(text, 'portmux_connections_open', { destination: 'route', route: 'echo' }), 0)

  assert.equal(sample(text, 'portmux_connections_closed_total', { reason: 'sniff-timeout' }), 1)
  assert.equal(sample(text, 'portmux_connections_closed_total', { reason: 'max-pending' }), 0)
  assert.equal(sample(text, 'portmux_proxy_connections_total', { outcome: 'connected' }), 1)
  assert.equal(sample(text, 'portmux_proxy_connections_total', { outcome: 'upstream-refused' }), 0)
  assert.equal(sample(text, 'portmux_proxy_headers_total'), 0)
  assert.equal(sample(text, 'portmux_errors_total', { code: 'PORTMUX_ERR_MATCHER' }), 1)
  assert.equal(sample(text, 'portmux_errors_total', { code: 'PORTMUX_ERR_HANDLER' }), 0)

  assert.equal(typeOf(text, 'portmux_sniff_duration_seconds'), 'histogram')
  assert.equal(sample(text, 'portmux_sniff_duration_seconds_count', { destination: 'https' }), 1)
  assert.equal(sample(text, 'portmux_sniff_duration_seconds_count', { destination: 'redirect' }), 1)
  assert.equal(sample(text, 'portmux_sniff_duration_seconds_count', { destination: 'route' }), 3)
  assert.equal(sample(text, 'portmux_sniff_duration_seconds_count', { destination: 'refused' }), 1)
  // The silent client waited for the sniff timeout (300 ms); what arrived at once did not.
  const refusedSum = sample(text, 'portmux_sniff_duration_seconds_sum', { destination: 'refused' }) ?? 0
  assert.ok(refusedSum >= 0.29, `refused after ${refusedSum} s`)
  assert.equal(sample(text, 'portmux_sniff_duration_seconds_bucket', { destination: 'refused', le: '0.1' }), 0)
  assert.equal(sample(text, 'portmux_sniff_duration_seconds_bucket', { destination: 'refused', le: '+Inf' }), 1)

  // Scraped through the mux, over HTTPS, the way Prometheus would.
  const scrape = await request(`https://127.0.0.1:${port}/metrics`, { dispatcher })
  assert.equal(scrape.statusCode, 200)
  assert.equal(scrape.headers['content-type'], registry.contentType)
  const scraped = await scrape.body.text()
  assert.equal(sample(scraped, 'portmux_connections_decided_total', { destination: 'route', route: 'echo' }), 2)
  assert.ok((sample(scraped, 'portmux_connections_accepted_total') ?? 0) >= 6)
  assert.ok((sample(scraped, 'portmux_connections_decided_total', { destination: 'https', route: '' }) ?? 0) >= 1)
})

test('a /metrics route over plaintext HTTP, with a prefix; unregister removes the metrics and stops measuring', T, async (t) => {
  const app = await fastifyApp(t, {})
  const registry = new Registry()
  const unregister = registerMetrics(app.portmux, { registry, prefix: 'edge_' })
  app.get('/metrics', async (_req, reply) => reply.type(registry.contentType).send(await registry.metrics()))
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as AddressInfo).port

  const first = await (await request(`http://127.0.0.1:${port}/metrics`, { reset: true })).body.text()
  const second = await (await request(`http://127.0.0.1:${port}/metrics`, { reset: true })).body.text()
  assert.equal(sample(first, 'edge_connections_decided_total', { destination: 'http', route: '' }), 1, 'the scrape counts its own connection')
  assert.equal(sample(second, 'edge_connections_decided_total', { destination: 'http', route: '' }), 2)
  assert.equal(sample(second, 'edge_sniff_duration_seconds_count', { destination: 'http' }), 2)
  assert.equal(sample(second, 'portmux_connections_accepted_total'), undefined)

  assert.equal(app.portmux.listenerCount('decision'), 1)
  unregister()
  unregister()
  assert.equal(await registry.metrics(), '\n')
  assert.equal(app.portmux.listenerCount('decision'), 0)
  assert.equal(app.portmux.listenerCount('refusal'), 0)
  // Registered again after, the names are free.
  registerMetrics(app.portmux, { registry, prefix: 'edge_', sniffDuration: false })()
})

test('one server per registry and prefix; bad options are PortmuxErrors', T, async (t) => {
  const a = createServer()
  const b = createServer()
  await listen(t, a)
  const registry = new Registry()
  const stop = registerMetrics(a, { registry })
  t.after(stop)
  assert.throws(() => registerMetrics(b, { registry }), { code: 'PORTMUX_ERR_INVALID_OPTION', message: /portmux_connections_accepted_total/ })
  registerMetrics(b, { registry, prefix: 'second_' })()
  assert.throws(() => registerMetrics(b, { registry, prefix: 'bad prefix' }), { code: 'PORTMUX_ERR_INVALID_OPTION' })
  assert.throws(() => registerMetrics(b, { registry, prefix: 'x_', buckets: [] }), { code: 'PORTMUX_ERR_INVALID_OPTION' })
  // The failed registrations left nothing behind.
  assert.equal(registry.getSingleMetric('second_connections_accepted_total'), undefined)
  assert.ok(registry.getSingleMetric('portmux_connections_accepted_total') !== undefined)
})

test('without the histogram, nothing listens per connection', T, async (t) => {
  const server = createServer((_req, res) => res.end('ok'))
  const registry = new Registry()
  const stop = registerMetrics(server, { registry, sniffDuration: false })
  t.after(stop)
  const port = await listen(t, server)
  assert.equal(server.listenerCount('decision') + server.listenerCount('refusal'), 0)
  assert.match(await exchange(t, port, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'), /^HTTP\/1\.1 200 /)
  const text = await registry.metrics()
  assert.equal(sample(text, 'portmux_connections_decided_total', { destination: 'http', route: '' }), 1)
  assert.equal(typeOf(text, 'portmux_sniff_duration_seconds'), undefined)
})
