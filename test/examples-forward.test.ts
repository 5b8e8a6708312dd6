/**
 * examples/forward.js runs as a user would run it (its own demo upstreams started with
 * START_UPSTREAMS=1) and forwards one request of each kind: a path prefix over HTTPS
 * HTTP/1.1, a host name over HTTP/2, a WebSocket over wss://; plaintext (ws:// too) is
 * redirected.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import type { IncomingMessage } from 'node:http'
import { Agent, request } from 'undici'
import WebSocket from 'ws'
import { startExample, until } from './helpers.js'



interface Seen {
  service: string
  url: string
  headers: Record<string, string | undefined>
}

test('examples/forward.js: /api and admin.localhost forwarded with X-Forwarded-*, WebSocket too, plaintext redirected', { timeout: 60_000 }, async (t) => {
  const { port } = await startExample(t, 'forward.js', { START_UPSTREAMS: '1', API_PORT: '0', ADMIN_PORT: '0' })
  // The example makes its own development certificate: not one this test can check.
  const h1 = new Agent({ connect: { rejectUnauthorized: false } })
  const h2 = new Agent({ allowH2: true, connect: { rejectUnauthorized: false } })
  t.after(async () => { await Promise.all([h1.close(), h2.close()]) })

  const api = await request(`https://127.0.0.1:${port}/api/hello?x=1`, { dispatcher: h1, headers: { 'x-forwarded-for': '198.51.100.66' } })
  assert.equal(api.statusCode, 200)
  const a = await api.body.json() as Seen
  assert.equal(a.service, 'api')
  assert.equal(a.url, '/hello?x=1')
  assert.equal(a.headers['x-forwarded-for'], '127.0.0.1')
  assert.equal(a.headers['x-forwarded-proto'], 'https')
  assert.equal(a.headers['x-forwarded-host'], `127.0.0.1:${port}`)

  const admin = await request(`https://127.0.0.1:${port}/users`, { dispatcher: h2, headers: { host: `admin.localhost:${port}` } })
  assert.equal(admin.statusCode, 200)
  const b = await admin.body.json() as Seen
  assert.equal(b.service, 'admin')
  assert.equal(b.url, '/users')
  assert.equal(b.headers['x-forwarded-proto'], 'https')
  assert.equal(b.headers['x-forwarded-host'], `admin.localhost:${port}`)

  const ws = new WebSocket(`wss://127.0.0.1:${port}/api/live`, { rejectUnauthorized: false })
  t.after(() => ws.terminate())
  const messages: string[] = []
  ws.on('message', (data: Buffer) => messages.push(data.toString()))
  ws.on('error', () => {})
  await once(ws, 'open')
  ws.send('echo me')
  await until(() => messages.length >= 2, 10_000, 'the greeting and the echo')
  const hello = JSON.parse(messages[0]) as Seen
  assert.equal(hello.service, 'api')
  assert.equal(hello.url, '/live')
  assert.equal(hello.headers['x-forwarded-for'], '127.0.0.1')
  assert.equal(hello.headers['x-forwarded-proto'], 'https')
  assert.equal(messages[1], 'echo me')
  ws.close()

  // ws:// is plaintext HTTP too: redirected.
  const insecure = new WebSocket(`ws://127.0.0.1:${port}/api/live`)
  t.after(() => insecure.terminate())
  insecure.on('error', () => {})
  const [, redirect] = await once(insecure, 'unexpected-response') as [unknown, IncomingMessage]
  assert.equal(redirect.statusCode, 301)
  assert.equal(redirect.headers.location, `wss://127.0.0.1:${port}/api/live`)

  const plain = await request(`http://127.0.0.1:${port}/api/hello?x=1`, { dispatcher: h1 })
  await plain.body.dump()
  assert.equal(plain.statusCode, 301)
  assert.equal(plain.headers.location, `https://127.0.0.1:${port}/api/hello?x=1`)
})
