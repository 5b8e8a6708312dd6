/** The event bridge: listeners on the outer server hear what the inner HTTP servers emit. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { createServer } from '../../src/node.js'
import { exchange, listen } from '../helpers.js'

const GET = 'GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n'

test('prependListener keeps its order; once fires once; removal stops it; this is the outer server', async (t) => {
  const server = createServer(undefined, { http: 'serve' })
  const order: string[] = []
  let self: unknown
  server.on('request', function (this: unknown, _req: IncomingMessage, res: ServerResponse) { self = this; order.push('on'); res.end('ok') })
  server.prependListener('request', () => { order.push('first') })
  const once = (): void => { order.push('once') }
  server.once('request', once)
  const port = await listen(t, server)
  await exchange(t, port, GET)
  await exchange(t, port, GET)
  assert.deepEqual(order, ['first', 'on', 'once', 'first', 'on'])
  assert.equal(self, server)
})

test('without clientError listeners Node\'s default answer applies again; removeAllListeners() leaves a working server', async (t) => {
  const server = createServer((_req, res) => { res.end('app') }, { http: 'serve' })
  const seen: string[] = []
  const onClientError = (_err: Error, socket: import('node:net').Socket): void => { seen.push('custom'); socket.end('HTTP/1.1 418 Teapot\r\nConnection: close\r\n\r\n') }
  server.on('clientError', onClientError)
  const port = await listen(t, server)
  assert.match(await exchange(t, port, 'GET / HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n'), /^HTTP\/1\.1 418 /)
  server.removeListener('clientError', onClientError)
  assert.match(await exchange(t, port, 'GET / HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n'), /^HTTP\/1\.1 400 /)
  assert.deepEqual(seen, ['custom'])

  // Every listener gone, portmux's own put back: it still accepts, and new listeners are heard.
  server.removeAllListeners()
  server.on('request', (_req: IncomingMessage, res: ServerResponse) => { res.end('again') })
  assert.match(await exchange(t, port, GET), /\r\n\r\nagain$/)
})
