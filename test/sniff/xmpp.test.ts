import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { xmpp } from '../../src/sniff/xmpp.js'
import { runDetectorSuite } from './suite.js'
import { concat, fixtureBytes, fixtureVectors, hex, latin1, vectors } from './vectors.js'

const NS = 'http://etherx.jabber.org/streams'
const slix = fixtureBytes('xmpp', 'slixmpp-1.8.3')

runDetectorSuite(xmpp, [
  ...fixtureVectors('xmpp'),
  ...vectors('match', {
    'just the element name and a space': '<stream:stream ',
    'no attributes at all': '<stream:stream>',
    'tab after the name': '<stream:stream\tto="example.org">',
    'declaration with double quotes': '<?xml version="1.0" encoding="UTF-8"?><stream:stream ',
    'declaration, newline, header': "<?xml version='1.0'?>\n<stream:stream ",
    'UTF-8 byte order mark first': concat(hex('ef bb bf'), latin1('<stream:stream ')),
    'leading whitespace, no declaration': '\r\n <stream:stream ',
    'other prefix bound to the streams namespace': `<s:stream xmlns:s='${NS}'>`,
    'no prefix, streams namespace as default': `<stream xmlns="${NS}" to="x">`,
    'a quoted > before the namespace': `<s:stream a='>' b="'" xmlns:s='${NS}' to='x'>`,
    'the whole header followed by a stanza': concat(slix, latin1('<presence/>'))
  }),
  ...vectors('more', {
    empty: '',
    '<': '<',
    'half the element name': '<stream:str',
    'the element name, no delimiter yet': '<stream:stream',
    'a BOM cut short': hex('ef bb'),
    'a declaration cut short': "<?xml version='1.",
    'a declaration before its ?>': "<?xml version='1.0'?",
    'a declaration alone': "<?xml version='1.0'?>",
    'other prefix, namespace not reached yet': "<s:stream to='example.org' xmlns:s='http://etherx.jab",
    'no prefix, attributes so far without the namespace': "<stream to='x' "
  }),
  ...vectors('no', {
    'an element named streams': '<stream:streams ',
    'self-closing stream': '<stream:stream/>',
    'another element': "<?xml version='1.0'?><html>",
    'the framing element of XMPP over WebSocket': '<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="x"/>',
    'a comment first (XMPP forbids them)': '<!-- hi --><stream:stream ',
    'a processing instruction other than the declaration': '<?php echo 1 ?><stream:stream ',
    'a declaration without a space': '<?xmlversion="1.0"?><stream:stream ',
    'whitespace before the declaration': " <?xml version='1.0'?><stream:stream ",
    'other prefix, tag closes without the namespace': "<s:stream xmlns:s='jabber:client'>",
    'other prefix, the namespace outside quotes': `<s:stream ${NS}>`,
    'no prefix and no namespace': '<stream to="x">',
    'a declaration over 256 bytes': `<?xml version='1.0' ${' '.repeat(300)}?><stream:stream `,
    'whitespace past the 2048-byte bound': ' '.repeat(2100),
    'HTTP mentioning jabber': 'GET /jabber:client HTTP/1.1\r\n',
    'upper case': '<STREAM:STREAM ',
    'a BOM then garbage': hex('ef bb bf 00'),
    'a broken BOM': hex('ef bb 00')
  })
])

test('xmpp: a long attribute list with the namespace late still matches within the bound', () => {
  const header = latin1(`<s:stream ${'a="b" '.repeat(200)}xmlns:s='${NS}'>`)
  assert.ok(header.length < 2048)
  assert.equal(xmpp.detect(header), 'match')
})

test('xmpp: random bytes are never a match unless they open with <', () => {
  fc.assert(fc.property(fc.uint8Array({ minLength: 1, maxLength: 100 }), (bytes) => {
    fc.pre(bytes[0] !== 0x3c && bytes[0] !== 0xef && bytes[0] > 0x20)
    return xmpp.detect(bytes) === 'no'
  }))
})
