import { test } from 'node:test'
import fc from 'fast-check'
import { tinc } from '../../src/sniff/tinc.js'
import { runDetectorSuite } from './suite.js'
import { fixtureVectors, latin1, vectors } from './vectors.js'

runDetectorSuite(tinc, [
  ...fixtureVectors('tinc'),
  ...vectors('match', {
    'tinc 1.0 ID': '0 bob 17\n',
    'tinc 1.1 ID': '0 node_2 17.7\n',
    'one-letter name': '0 a 17\n',
    'name of 255 bytes': `0 ${'n'.repeat(255)} 17.7\n`,
    'ID then the next request pipelined': '0 bob 17\n1 0 672 0 0 abcdef\n',
    'invitation with a URL-safe key': '0 ?Ki3B4gDyPvjYtY7VvA0OQAf08kYjoVQ9X-eNMDwIkQP 17.1\n',
    'invitation with a standard-alphabet key': '0 ?Ki3B4gDyPvjYtY7VvA0O+Af08kYjoVQ9X/eNMDwIkQ= 17.1\n'
  }),
  ...vectors('more', {
    empty: '',
    '0': '0',
    '0 space': '0 ',
    'name without the version': '0 alice',
    'major without the newline': '0 alice 17',
    'minor without the newline': '0 alice 17.7'
  }),
  ...vectors('no', {
    'request 1 (METAKEY) first': '1 alice 17\n',
    'two spaces': '0  alice 17\n',
    'dash in the name': '0 al-ice 17\n',
    'dot in the name': '0 alice.example 17\n',
    'no version': '0 alice\n',
    'empty minor': '0 alice 17.\n',
    'four-digit major': '0 alice 1717\n',
    'two minors': '0 alice 17.7.1\n',
    'trailing space': '0 alice 17.7 \n',
    'CR LF': '0 alice 17.7\r\n',
    'name of 256 bytes': `0 ${'n'.repeat(256)} 17\n`,
    'control connection (local socket only)': '0 ^0123456789abcdef 0\n',
    'invitation with an empty key': '0 ? 17.1\n',
    'invitation key with a space inside': '0 ?abc def 17.1\n',
    'sslh-style "0 " then anything': '0 GET / HTTP/1.1\r\n',
    'HTTP': 'GET / HTTP/1.1\r\n'
  })
])

test('tinc: every well-formed ID line matches', () => {
  const name = fc.string({ unit: fc.constantFrom(...'abcXYZ019_'), minLength: 1, maxLength: 40 })
  const version = fc.tuple(fc.integer({ min: 0, max: 999 }), fc.option(fc.integer({ min: 0, max: 999 })))
  fc.assert(fc.property(name, version, (n, [major, minor]) => {
    const line = `0 ${n} ${major}${minor === null ? '' : `.${minor}`}\n`
    return tinc.detect(latin1(line)) === 'match'
  }))
})
