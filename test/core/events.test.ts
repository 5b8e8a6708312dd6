/** Decisions and refusals as events, diagnostics channel messages and Fastify debug logs. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import diagnostics_channel from 'node:diagnostics_channel'
import { Writable } from 'node:stream'
import Fastify from 'fastify'
import { createServer } from '../../src/node.js'
import { portmux, serverFactory } from '../../src/fastify.js'
import type { ConnectionInfo, RefusalInfo } from '../../src/types.js'
import { connect, closed, exchange, listen, testCertificate, until } from '../helpers.js'

const GET = 'GET /x HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'

test('every decision and refusal is an event carrying the connection info', async (t) => {
  const { key, cert } = await testCertificate()
  const server = createServer((_req, res) => { res.end('ok') }, { tls: { key, cert }, sniffTimeout: 100 })
  server.route('echo', { match: { prefix: 'ECHO ' }, handler: (s) => { s.pipe(s) } })
  const decisions: ConnectionInfo[] = []
  const refusals: RefusalInfo[] = []
  server.on('decision', (info: ConnectionInfo) => decisions.push(info))
  server.on('refusal', (info: RefusalInfo) => refusals.push(info))
  const port = await listen(t, server)

  await exchange(t, port, GET)
  await exchange(t, port, 'ECHO a\n', { end: true })
  const silent = await connect(t, port)
  await closed(silent)

  assert.deepEqual(decisions.map((d) => [d.route, d.protocol]), [['redirect', 'http'], ['echo', 'custom']])
  assert.equal(decisions[0].remoteAddress, '127.0.0.1')
  assert.equal(decisions[0].localPort, port)
  assert.equal(decisions[0].bytes.toString(), GET)
  assert.equal(refusals.length, 1)
  assert.equal(refusals[0].reason, 'sniff-timeout')
  assert.equal(refusals[0].bytes.length, 0)
})

test('diagnostics channel: portmux:decision is published while subscribed', async (t) => {
  const server = createServer((_req, res) => { res.end('ok') })
  const port = await listen(t, server)
  const seen: unknown[] = []
  const onMessage = (message: unknown): void => { seen.push(message) }
  diagnostics_channel.subscribe('portmux:decision', onMessage)
  t.after(() => diagnostics_channel.unsubscribe('portmux:decision', onMessage))
  await exchange(t, port, GET)
  assert.equal(seen.length, 1)
  const { server: from, info } = seen[0] as { server: unknown, info: ConnectionInfo }
  assert.equal(from, server)
  assert.equal(info.route, 'http')
})

test('under Fastify, decisions log at debug and nothing is logged at info', async (t) => {
  for (const level of ['debug', 'info'] as const) {
    const lines: Array<Record<string, unknown>> = []
    const stream = new Writable({
      write (chunk: Buffer, _enc, cb) {
        for (const line of chunk.toString().split('\n')) if (line !== '') lines.push(JSON.parse(line) as Record<string, unknown>)
        cb()
      }
    })
    const app = Fastify({ logger: { level, stream }, serverFactory: serverFactory({}) })
    await app.register(portmux)
    app.get('/x', async () => 'ok')
    await app.listen({ port: 0, host: '127.0.0.1' })
    t.after(() => app.close())
    const port = (app.server.address() as { port: number }).port
    await exchange(t, port, GET)
    const decisions = lines.filter((l) => l.msg === 'portmux decision')
    if (level === 'debug') {
      await until(() => lines.some((l) => l.msg === 'portmux decision'), 5000, 'debug line')
      const entry = lines.find((l) => l.msg === 'portmux decision') as { portmux: { route: string, bytes: number } }
      assert.equal(entry.portmux.route, 'http')
      assert.equal(entry.portmux.bytes, GET.length, 'bytes are logged as a length, not their content')
    } else {
      assert.equal(decisions.length, 0)
    }
  }
})
