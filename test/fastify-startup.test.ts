/**
 * What Fastify says about a portmux port: its startup log line and `fastify.listeningOrigin`
 * name `https://` when the port speaks TLS, and the mux's own redirects are in the debug log.
 * Real Fastify, real listen, log lines read from the pino destination stream.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import type { AddressInfo } from 'node:net'
import { Writable } from 'node:stream'
import Fastify, { type FastifyInstance } from 'fastify'
import { Agent, request } from 'undici'
import portmux, { serverFactory, type MuxOptions, type MuxServer } from '../src/index.js'
import { connect, readAll, testCertificate, until } from './helpers.js'

const T = { timeout: 30_000 }

interface LogLine { level: number, msg?: string, [key: string]: unknown }

/** A pino destination that keeps every line. */
function logSink (): { stream: Writable, lines: LogLine[] } {
  const lines: LogLine[] = []
  let rest = ''
  const stream = new Writable({
    write (chunk: Buffer, _enc, done) {
      rest += chunk.toString('utf8')
      let nl: number
      while ((nl = rest.indexOf('\n')) !== -1) {
        lines.push(JSON.parse(rest.slice(0, nl)) as LogLine)
        rest = rest.slice(nl + 1)
      }
      done()
    }
  })
  return { stream, lines }
}

async function start (t: TestContext, mux: MuxOptions, level = 'info'): Promise<{ app: FastifyInstance, lines: LogLine[], port: number }> {
  const { stream, lines } = logSink()
  const app = Fastify({ logger: { level, stream }, serverFactory: serverFactory(mux) })
  t.after(async () => {
    app.portmux?.closeAllConnections()
    await app.close()
  })
  await app.register(portmux)
  app.get('/', async (req) => ({ protocol: req.protocol }))
  await app.listen({ port: 0, host: '127.0.0.1' })
  return { app, lines, port: (app.server.address() as AddressInfo).port }
}

function listeningLines (lines: LogLine[]): string[] {
  return lines.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('Server listening at ')).map((l) => l.msg as string)
}

test('a TLS port: the startup log and listeningOrigin say https://, and that origin answers over HTTPS', T, async (t) => {
  const { key, cert } = await testCertificate()
  const { app, lines, port } = await start(t, { tls: { key, cert } })
  assert.deepEqual(listeningLines(lines), [`Server listening at https://127.0.0.1:${port}`])
  assert.equal(app.listeningOrigin, `https://127.0.0.1:${port}`)

  const dispatcher = new Agent({ connect: { ca: cert, servername: 'localhost' } })
  t.after(() => dispatcher.destroy())
  const res = await request(app.listeningOrigin + '/', { dispatcher })
  assert.equal(res.statusCode, 200)
  assert.deepEqual(await res.body.json(), { protocol: 'https' })
})

test('the development certificate counts as TLS too', T, async (t) => {
  const { app, lines, port } = await start(t, { tls: 'dev' })
  assert.deepEqual(listeningLines(lines), [`Server listening at https://127.0.0.1:${port}`])
  assert.equal(app.listeningOrigin, `https://127.0.0.1:${port}`)
})

test('Fastify\'s own https option next to the factory still says https://', T, async (t) => {
  const { key, cert } = await testCertificate()
  const { stream, lines } = logSink()
  const app = Fastify({ logger: { stream }, https: { key, cert }, serverFactory: serverFactory({ tls: { key, cert } }) })
  t.after(async () => { await app.close() })
  await app.register(portmux)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as AddressInfo).port
  assert.deepEqual(listeningLines(lines), [`Server listening at https://127.0.0.1:${port}`])
  assert.equal(app.listeningOrigin, `https://127.0.0.1:${port}`)
})

test('a plaintext port says http://, and that origin answers over HTTP', T, async (t) => {
  const { app, lines, port } = await start(t, {})
  assert.deepEqual(listeningLines(lines), [`Server listening at http://127.0.0.1:${port}`])
  assert.equal(app.listeningOrigin, `http://127.0.0.1:${port}`)
  const res = await request(app.listeningOrigin + '/')
  assert.equal(res.statusCode, 200)
  assert.deepEqual(await res.body.json(), { protocol: 'http' })
})

test('a redirect made by the mux is logged at debug with its decision, and never as a Fastify request', T, async (t) => {
  const { key, cert } = await testCertificate()
  const { app, lines, port } = await start(t, { tls: { key, cert }, http: 'redirect' }, 'debug')
  const socket = await connect(t, port)
  socket.end('GET /a?b=1 HTTP/1.1\r\nHost: example.test:8443\r\n\r\n')
  const reply = (await readAll(socket)).toString('latin1')
  assert.match(reply, /^HTTP\/1\.1 301 /)
  assert.match(reply, /\r\nlocation: https:\/\/example\.test:8443\/a\?b=1\r\n/i)

  await until(() => lines.some((l) => (l.portmux as { route?: string } | undefined)?.route === 'redirect'))
  const logged = lines.filter((l) => (l.portmux as { route?: string } | undefined)?.route === 'redirect')
  assert.equal(logged.length, 1)
  const [line] = logged
  assert.equal(line.level, 20, 'debug')
  assert.match(line.msg ?? '', /redirect to https/)
  assert.match(line.msg ?? '', /outside Fastify/)
  const info = line.portmux as Record<string, unknown>
  assert.equal(info.protocol, 'http')
  assert.equal(info.remoteAddress, '127.0.0.1')
  assert.equal(info.localPort, port)
  assert.equal(typeof info.bytes, 'number', 'the sniffed bytes as a length, never their content')
  assert.ok(!JSON.stringify(lines).includes('/a?b=1'), 'the request line is not logged')
  assert.equal(lines.filter((l) => l.msg === 'incoming request').length, 0, 'Fastify never saw the request')
  assert.equal((app.portmux as MuxServer).stats().decided.redirect, 1)
})

test('a served HTTPS request is logged by Fastify and its decision is no redirect', T, async (t) => {
  const { key, cert } = await testCertificate()
  const { app, lines } = await start(t, { tls: { key, cert }, http: 'redirect' }, 'debug')
  const dispatcher = new Agent({ connect: { ca: cert, servername: 'localhost' } })
  t.after(() => dispatcher.destroy())
  const res = await request(app.listeningOrigin + '/', { dispatcher })
  await res.body.dump()
  await until(() => lines.some((l) => l.msg === 'incoming request'))
  const decisions = lines.filter((l) => l.portmux !== undefined)
  assert.equal(decisions.length, 1)
  assert.equal((decisions[0].portmux as { route: string }).route, 'https')
  assert.equal(decisions[0].msg, 'portmux decision')
})
