import { test } from 'node:test'
import assert from 'node:assert/strict'
import { resolveOptions, DEFAULTS } from '../../src/core/options.js'
import { createServer } from '../../src/node.js'
import type { MuxOptions } from '../../src/types.js'

test('defaults', () => {
  const o = resolveOptions(undefined)
  assert.equal(o.tls, null)
  assert.equal(o.plaintext, 'redirect')
  assert.equal(o.http2, true)
  assert.equal(o.sniffTimeout, DEFAULTS.sniffTimeout)
  assert.equal(o.maxSniffBytes, 16384)
  assert.equal(o.closeGrace, 1000)
  assert.deepEqual(o.routes, [])
})

test('redirect options are kept', () => {
  const o = resolveOptions({ http: { redirect: { status: 307, host: 'example.com:8443', port: 443, trustForwardedHost: true } } })
  assert.equal(o.plaintext, 'redirect')
  assert.deepEqual(o.redirect, { status: 307, host: 'example.com:8443', port: 443, trustForwardedHost: true })
})

const bad: Array<[string, unknown]> = [
  ['tls', 'yes'],
  ['tls', 42],
  ['http', 'maybe'],
  ['http', { redirect: { status: 200 } }],
  ['http', { redirect: { host: 'a b' } }],
  ['http', { redirect: { host: 'user@host' } }],
  ['http', { redirect: { port: 0 } }],
  ['http', { redirect: { port: 70000 } }],
  ['http', { redirect: { trustForwardedHost: 'yes' } }],
  ['http', { redirect: null }],
  ['http2', 'true'],
  ['sniffTimeout', 0],
  ['sniffTimeout', 1.5],
  ['sniffTimeout', -1],
  ['maxSniffBytes', 10],
  ['maxSniffBytes', 'big'],
  ['closeGrace', -5],
  ['keepAliveTimeout', -1],
  ['routes', 'ssh'],
  ['proxyProtocol', { trusted: [] }]
]

for (const [name, value] of bad) {
  test(`invalid ${name}: ${JSON.stringify(value)} is refused with PORTMUX_ERR_INVALID_OPTION`, () => {
    const options = { [name]: value } as unknown as MuxOptions
    assert.throws(() => createServer(undefined, options), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'PORTMUX_ERR_INVALID_OPTION')
      assert.equal(err.name, 'InvalidOptionError')
      assert.match(err.message, new RegExp(name === 'http' ? 'http' : name))
      return true
    })
  })
}

test('headersTimeout above a non-zero requestTimeout is refused', () => {
  assert.throws(() => createServer(undefined, { headersTimeout: 2000, requestTimeout: 1000 }), { code: 'PORTMUX_ERR_INVALID_OPTION' })
  assert.doesNotThrow(() => createServer(undefined, { headersTimeout: 2000, requestTimeout: 0 }))
})

test('routes given as an option are validated like route()', () => {
  assert.throws(() => createServer(undefined, { routes: { x: { match: 'nope' as 'ssh', handler: () => {} } } }), { code: 'PORTMUX_ERR_INVALID_ROUTE' })
})
