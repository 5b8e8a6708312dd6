/**
 * The `acme` option: what is accepted, the defaults, and every mistake refused at
 * construction with PORTMUX_ERR_INVALID_OPTION.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { DEFAULT_ACME_STORAGE, LETS_ENCRYPT, resolveOptions } from '../../src/core/options.js'
import { createServer } from '../../src/node.js'
import type { MuxOptions } from '../../src/types.js'

const good = { domains: ['Example.COM.', 'www.example.com'], agreeToTerms: true }

test('acme: the defaults, and names lower-cased without a trailing dot', () => {
  const o = resolveOptions({ acme: good })
  assert.deepEqual(o.acme?.domains, ['example.com', 'www.example.com'])
  assert.equal(o.acme?.directory, LETS_ENCRYPT)
  assert.equal(o.acme?.storage, DEFAULT_ACME_STORAGE)
  assert.deepEqual(o.acme?.challenges, ['tls-alpn-01', 'http-01'])
  // The port speaks TLS even before a certificate exists.
  assert.deepEqual(o.tls, {})
})

test('acme with tls options other than the certificate keeps them', () => {
  const o = resolveOptions({ acme: { ...good, challenges: ['http-01'], email: 'ops@example.com', storage: '/tmp/x', directory: 'https://ca.example/dir' }, tls: { minVersion: 'TLSv1.3', ciphers: 'TLS_AES_128_GCM_SHA256' } })
  assert.deepEqual(o.tls, { minVersion: 'TLSv1.3', ciphers: 'TLS_AES_128_GCM_SHA256' })
  assert.deepEqual(o.acme?.challenges, ['http-01'])
  assert.equal(o.acme?.email, 'ops@example.com')
  assert.equal(o.acme?.storage, '/tmp/x')
  assert.equal(o.acme?.directory, 'https://ca.example/dir')
})

const bad: Array<[string, unknown, RegExp]> = [
  ['not an object', 'yes', /acme must be/],
  ['no agreement', { domains: ['a.example'] }, /agreeToTerms/],
  ['agreement not true', { domains: ['a.example'], agreeToTerms: 'yes' }, /agreeToTerms/],
  ['no domains', { agreeToTerms: true }, /domains/],
  ['empty domains', { domains: [], agreeToTerms: true }, /domains/],
  ['a wildcard', { domains: ['*.example.com'], agreeToTerms: true }, /wildcard.*dns-01/],
  ['a wildcard with http-01 only', { domains: ['*.example.com'], agreeToTerms: true, challenges: ['http-01'] }, /wildcard/],
  ['an IP address', { domains: ['192.0.2.1'], agreeToTerms: true }, /IP address/],
  ['a bad name', { domains: ['a b.example'], agreeToTerms: true }, /not a valid domain/],
  ['a label too long', { domains: [`${'a'.repeat(64)}.example`], agreeToTerms: true }, /not a valid domain/],
  ['a number', { domains: [42], agreeToTerms: true }, /not a string/],
  ['a bad challenge', { ...good, challenges: ['dns-01'] }, /dns-01 is not one/],
  ['a challenge twice', { ...good, challenges: ['http-01', 'http-01'] }, /twice/],
  ['no challenges', { ...good, challenges: [] }, /challenges/],
  ['a bad directory', { ...good, directory: 'ftp://ca.example/dir' }, /directory/],
  ['a directory that is no URL', { ...good, directory: 'not a url' }, /directory/],
  ['a bad storage', { ...good, storage: '' }, /storage/],
  ['a bad email', { ...good, email: 'nobody' }, /email/]
]

for (const [what, acme, message] of bad) {
  test(`acme: ${what} is refused`, () => {
    assert.throws(() => createServer(undefined, { acme } as MuxOptions), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'PORTMUX_ERR_INVALID_OPTION')
      assert.match(err.message, message)
      return true
    })
  })
}

for (const tls of [{ key: 'k', cert: 'c' }, { cert: 'c' }, { pfx: 'p' }, 'dev'] as const) {
  test(`acme with tls ${JSON.stringify(tls)} is refused`, () => {
    assert.throws(() => createServer(undefined, { acme: good, tls } as MuxOptions), { code: 'PORTMUX_ERR_INVALID_OPTION', message: /acme and tls/ })
  })
}

test('a user route named like the challenge routes is a duplicate', () => {
  const server = createServer(undefined, { acme: { ...good, storage: '/nonexistent/portmux-acme' } })
  assert.throws(() => server.route('acme:http-01', { match: 'ssh', handler: () => {} }), { code: 'PORTMUX_ERR_DUPLICATE_ROUTE' })
})
