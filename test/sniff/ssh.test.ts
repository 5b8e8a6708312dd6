import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { ssh } from '../../src/sniff/ssh.js'
import { runDetectorSuite } from './suite.js'
import { concat, fixtureVectors, latin1, vectors } from './vectors.js'

runDetectorSuite(ssh, [
  ...fixtureVectors('ssh'),
  ...vectors('match', {
    'SSH-2.0- and nothing else': 'SSH-2.0-',
    'SSH-1.99 (2.0 and 1.x)': 'SSH-1.99-',
    'SSH-1.5 (an SSH 1 client)': 'SSH-1.5-',
    'software version with comments': 'SSH-2.0-Go SSH client\r\n',
    'banner and KEXINIT pipelined': concat(latin1('SSH-2.0-x\r\n'), Uint8Array.of(0, 0, 1, 0x14, 0x0a, 0x14))
  }),
  ...vectors('more', {
    empty: '',
    'S': 'S',
    'SSH-': 'SSH-',
    'SSH-2.0 without its dash': 'SSH-2.0',
    'SSH-1.': 'SSH-1.',
    'SSH-1.99': 'SSH-1.99'
  }),
  ...vectors('no', {
    'lower case': 'ssh-2.0-OpenSSH',
    'SSH-2.1': 'SSH-2.1-x',
    'SSH-3.0': 'SSH-3.0-x',
    'SSH-1.- (no minor digits)': 'SSH-1.-x',
    'SSH-1.999 (three minor digits)': 'SSH-1.999-x',
    'SSH-2.0 then CR LF': 'SSH-2.0\r\n',
    'SSH-20-': 'SSH-20-',
    'a server-style preamble line': 'Welcome\r\nSSH-2.0-x\r\n',
    'leading space': ' SSH-2.0-x',
    'HTTP request': 'GET / HTTP/1.1\r\n',
    'SSH_2.0': 'SSH_2.0-x',
    'NUL first': '\x00SSH-2.0-'
  })
])

test('ssh: SSH-2.0- followed by anything is a match', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (tail) => {
    return ssh.detect(concat(latin1('SSH-2.0-'), tail)) === 'match'
  }))
})

test('ssh: anything not starting with S is a no', () => {
  fc.assert(fc.property(fc.uint8Array({ minLength: 1, maxLength: 64 }), (bytes) => {
    fc.pre(bytes[0] !== 0x53)
    assert.equal(ssh.detect(bytes), 'no')
  }))
})
