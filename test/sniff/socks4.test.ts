import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { socks4 } from '../../src/sniff/socks4.js'
import { runDetectorSuite } from './suite.js'
import { concat, fixtureBytes, fixtureVectors, hex, latin1, seededBytes, vectors } from './vectors.js'

const curl = fixtureBytes('socks4', 'curl-socks4')
const curl4a = fixtureBytes('socks4', 'curl-socks4a')
const head = hex('04 01 00 50 c0 00 02 0a') // CONNECT 192.0.2.10:80
const head4a = hex('04 01 00 50 00 00 00 01') // CONNECT, 4A marker 0.0.0.1
const user = (s: string): Uint8Array => concat(latin1(s), hex('00'))

runDetectorSuite(socks4, [
  ...fixtureVectors('socks4'),
  ...vectors('match', {
    'BIND': hex('04 02 1f 90 c0 00 02 0a 00'),
    'user id with spaces and punctuation': concat(head, user('Alice Liddell (rabbit-hole)')),
    'user id of 255 bytes': concat(head, user('u'.repeat(255))),
    '4A with a user id': concat(head4a, user('bob'), user('example.com')),
    '4A marker 0.0.0.255': concat(hex('04 01 01 bb 00 00 00 ff'), hex('00'), user('xn--bcher-kva.example')),
    '4A domain of 255 bytes': concat(head4a, hex('00'), user('d'.repeat(255))),
    '4A with an IPv6 literal': concat(head4a, hex('00'), user('[2001:db8::1]')),
    'port 0 (not judged)': hex('04 01 00 00 c0 00 02 0a 00'),
    'request then pipelined bytes': concat(curl, latin1('GET / HTTP/1.1\r\n'))
  }),
  ...vectors('more', {
    empty: '',
    'version alone': hex('04'),
    'version and command': hex('04 01'),
    'up to the port': hex('04 01 00 50'),
    'no user id yet': head,
    'user id without its NUL': concat(head, latin1('alice')),
    '4A without its domain': concat(head4a, hex('00')),
    '4A domain without its NUL': concat(head4a, hex('00'), latin1('example.c')),
    'curl 4A request cut before the last NUL': curl4a.subarray(0, curl4a.length - 1)
  }),
  ...vectors('no', {
    'command 3 (UDP is SOCKS 5 only)': hex('04 03 00 50 c0 00 02 0a 00'),
    'command 0': hex('04 00 00 50 c0 00 02 0a 00'),
    'address 0.0.0.0': hex('04 01 00 50 00 00 00 00 00'),
    'control byte in the user id': concat(head, hex('61 01 62 00')),
    'DEL in the user id': concat(head, hex('61 7f 00')),
    'UTF-8 in the user id (ASCII only, by decision)': concat(head, hex('c3 a9 00')),
    'user id of 256 bytes': concat(head, user('u'.repeat(256))),
    'user id running past 255 bytes unfinished': concat(head, latin1('u'.repeat(256))),
    '4A empty domain': concat(head4a, hex('00 00')),
    '4A domain with a space': concat(head4a, hex('00'), user('exa mple.com')),
    '4A domain of 256 bytes': concat(head4a, hex('00'), user('d'.repeat(256))),
    'SOCKS 5 greeting': hex('05 01 00'),
    'HTTP': 'GET / HTTP/1.1\r\n'
  })
])

test('socks4: random bytes after 04 01 are rarely claimed', () => {
  const random = seededBytes(425)
  const runs = 20000
  let matches = 0
  for (let i = 0; i < runs; i++) {
    if (socks4.detect(concat(hex('04 01'), random(300))) === 'match') matches++
  }
  // A NUL must come before any of the 161 other non-printable byte values: 1 in 161 (0.6%).
  assert.ok(matches / runs < 0.01, `claimed ${matches} of ${runs}`)
})

test('socks4: every printable user id up to 255 bytes matches', () => {
  fc.assert(fc.property(fc.string({ unit: fc.constantFrom(...' !~azAZ09._-@'), maxLength: 255 }), (id) => {
    return socks4.detect(concat(head, user(id))) === 'match'
  }))
})
