import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { winbox } from '../../src/sniff/winbox.js'
import { runDetectorSuite } from './suite.js'
import { concat, fixtureBytes, fixtureVectors, hex, latin1, vectors } from './vectors.js'

/** The first WinBox message for `user`: chunked at 255 bytes, types 0x06 then 0xFF. */
function message (user: string, parity = 0, seed = user): Uint8Array {
  const key = createHash('sha256').update(seed).digest()
  const payload = concat(latin1(user), Uint8Array.of(0), key, Uint8Array.of(parity))
  const chunks: Uint8Array[] = []
  for (let i = 0; i < payload.length; i += 255) {
    const part = payload.subarray(i, i + 255)
    chunks.push(Uint8Array.of(part.length, i === 0 ? 0x06 : 0xff), part)
  }
  return concat(...chunks)
}

/** A copy of `bytes` with `bytes[at] = value` (negative `at` counts from the end). */
function withByte (bytes: Uint8Array, at: number, value: number): Uint8Array {
  const copy = Uint8Array.from(bytes)
  copy[at < 0 ? copy.length + at : at] = value
  return copy
}

const admin = fixtureBytes('winbox', 'hand-admin')
const twoChunks = fixtureBytes('winbox', 'hand-two-chunks')

runDetectorSuite(winbox, [
  ...fixtureVectors('winbox'),
  ...vectors('match', {
    'one-letter user': message('a'),
    'two-letter user': message('ab'),
    'user with every allowed inner character': message('a-b#c.d@e_f9'),
    'RoMON user of one letter': message('a+r', 1),
    'user of 255 bytes (payload 289, second chunk 34)': message('u'.repeat(255)),
    'user of 222 bytes (payload 256, second chunk 1)': message('u'.repeat(222)),
    'a key with zero bytes in it': concat(hex('27 06'), latin1('admin'), new Uint8Array(33), Uint8Array.of(1)),
    'message then more bytes': concat(admin, latin1('extra'))
  }),
  ...vectors('more', {
    empty: '',
    'first byte': admin.subarray(0, 1),
    'chunk header': admin.subarray(0, 2),
    'user name and NUL': admin.subarray(0, 8),
    'all but the parity byte': admin.subarray(0, admin.length - 1),
    'two chunks: the first alone': twoChunks.subarray(0, 257),
    'two chunks: all but the last byte': twoChunks.subarray(0, twoChunks.length - 1)
  }),
  ...vectors('no', {
    'chunk length 34': concat(hex('22 06'), latin1('a')),
    'type 0xFF first': withByte(admin, 1, 0xff),
    'parity 2': withByte(admin, -1, 2),
    'chunk length one too long': withByte(admin, 0, admin[0] + 1),
    'chunk length one too short': withByte(admin, 0, admin[0] - 1),
    'empty user name': concat(hex('22 06 00'), new Uint8Array(33)),
    'user name starting with a dot': message('.admin'),
    'user name ending with a dash': message('admin-'),
    'user name with a space': message('ad min'),
    'user name with a plus not before r': message('a+b'),
    'user name with +r not at the end': message('a+rb'),
    'user name ending in a lone plus': message('ab+'),
    'user name of 256 bytes': message('u'.repeat(256)),
    'second chunk with type 0x06': withByte(twoChunks, 258, 0x06),
    'second chunk length off by one': withByte(twoChunks, 257, twoChunks[257] + 1),
    'a full first chunk with the NUL too early for it': withByte(message('u'.repeat(230)), 2 + 100, 0),
    'HTTP GET': 'GET / HTTP/1.1\r\n',
    'SSH banner': 'SSH-2.0-x\r\n',
    'TLS ClientHello start': hex('16 03 01 02 00'),
    'tinc ID': '0 alice 17\n',
    'syslog': '<13>Dec  1 10:26:01 vm app: hello\n'
  })
])

test('winbox: the first byte alone refuses TLS, SOCKS, RDP, PostgreSQL, DNS and OpenVPN', () => {
  for (const b of [0x16, 0x04, 0x05, 0x03, 0x00, 0x01]) assert.equal(winbox.detect(Uint8Array.of(b)), 'no')
  for (const text of ['GET', 'SSH', 'PRI', '<?x', 'CNX', '0 a']) assert.equal(winbox.detect(latin1(text)), 'no', text)
})
