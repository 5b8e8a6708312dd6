import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { syslog } from '../../src/sniff/syslog.js'
import { runDetectorSuite } from './suite.js'
import { fixtureVectors, hex, latin1, vectors } from './vectors.js'

const line5424 = '<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - BOM\'su root\' failed\n'
const line3164 = '<34>Oct 11 22:14:15 mymachine su: \'su root\' failed for lonvick on /dev/pts/8\n'

/** `text` behind RFC 6587 octet counting, MSG-LEN computed unless given. */
function counted (text: string, length = Buffer.byteLength(text)): string {
  return `${length} ${text}`
}

runDetectorSuite(syslog, [
  ...fixtureVectors('syslog'),
  ...vectors('match', {
    'RFC 5424 example 1 (RFC 5424 §6.5)': line5424,
    'RFC 5424 with NILVALUE timestamp': '<165>1 - host app - - - msg\n',
    'RFC 5424 with an offset and microseconds': '<0>1 2026-12-01T10:26:01.157688+05:30 vm app - - - x\n',
    'RFC 5424 with a negative offset, no fraction': '<191>1 1985-04-12T23:20:50-07:00 h a - - -',
    'RFC 3164 example (RFC 3164 §5.4)': line3164,
    'RFC 3164 with a space-padded day': '<13>Dec  1 10:26:01 vm app: hello\n',
    'RFC 3164 with a zero-padded day': '<13>Dec 01 10:26:01 vm app: hello\n',
    'RFC 3164 at PRI 0': '<0>Jan 31 23:59:59 kernel: x\n',
    'octet counting, RFC 5424': counted(line5424),
    'octet counting, RFC 3164': counted(line3164),
    'octet counting with MSG-LEN just covering the header': counted('<1>1 - ', 7),
    'two messages pipelined': line3164 + line3164
  }),
  ...vectors('more', {
    empty: '',
    '<': '<',
    'PRI alone': '<34>',
    'RFC 5424 up to the timestamp': '<34>1 2003-10-11T22:14',
    'RFC 3164 up to the time': '<34>Oct 11 22:14',
    'octet count alone': '102',
    'octet count and space': '102 ',
    'RFC 3164 with a partial month': '<34>Ju'
  }),
  ...vectors('no', {
    'PRI 192': '<192>1 - h a - - -\n',
    'PRI with a leading zero': '<013>Oct 11 22:14:15 h a: x\n',
    'PRI <00>': '<00>Oct 11 22:14:15 h a: x\n',
    'PRI of four digits': '<1000>',
    'empty PRI': '<>Oct',
    'no timestamp (bare BSD message)': '<13>app: hello\n',
    'RFC 5424 version 2': '<34>2 - h a - - -\n',
    'RFC 5424 version 1 without its space': '<34>1-',
    'RFC 5424 month 13': '<34>1 2003-13-11T22:14:15Z h',
    'RFC 5424 hour 24': '<34>1 2003-10-11T24:14:15Z h',
    'RFC 5424 leap second': '<34>1 2003-10-11T22:14:60Z h',
    'RFC 5424 fraction of 7 digits': '<34>1 2003-10-11T22:14:15.1234567Z h',
    'RFC 5424 empty fraction': '<34>1 2003-10-11T22:14:15.Z h',
    'RFC 5424 without a time zone': '<34>1 2003-10-11T22:14:15 h',
    'RFC 5424 lower-case t': '<34>1 2003-10-11t22:14:15Z h',
    'RFC 3164 month in lower case': '<34>oct 11 22:14:15 h a: x',
    'RFC 3164 no such month': '<34>Oca 11 22:14:15 h a: x',
    'RFC 3164 day 32': '<34>Oct 32 22:14:15 h a: x',
    'RFC 3164 day 0': '<34>Oct 00 22:14:15 h a: x',
    'RFC 3164 minute 60': '<34>Oct 11 22:60:15 h a: x',
    'octet count with a leading zero': counted(line3164).replace(/^/, '0'),
    'octet count of eight digits': '12345678 <34>',
    'octet count without its space': '76<34>Oct',
    'octet count too small for the header': counted(line3164, 10),
    'octet count then no PRI': '5 hello',
    'XMPP stream header': "<?xml version='1.0'?><stream:stream",
    'XMPP without declaration': '<stream:stream xmlns="jabber:client"',
    'tinc ID line': '0 alice 17\n',
    'HTTP GET': 'GET / HTTP/1.1\r\n',
    'SSH banner': 'SSH-2.0-x\r\n',
    'TLS ClientHello start': hex('16 03 01 02 00'),
    'DNS query': hex('00 1d 46 af 01 20 00 01')
  })
])

test('syslog: every built-in detector\'s first byte but `<` and 1–9 is refused at once', () => {
  for (let b = 0; b < 256; b++) {
    const v = syslog.detect(Uint8Array.of(b))
    const expected = b === 0x3c || (b >= 0x31 && b <= 0x39) ? 'more' : 'no'
    assert.equal(v, expected, `first byte ${b}`)
  }
})

test('syslog: random bytes after a PRI are judged the same whole and in pieces', () => {
  fc.assert(fc.property(fc.constantFrom('<13>', '<34>1 ', '<34>Oct', '99 <1>'), fc.uint8Array({ maxLength: 40 }), (start, tail) => {
    const bytes = Uint8Array.from([...latin1(start), ...tail])
    const whole = syslog.detect(bytes)
    for (let i = 1; i < bytes.length; i++) {
      const v = syslog.detect(bytes.subarray(0, i))
      if (v !== 'more') assert.equal(v, whole, `prefix ${i}`)
    }
  }), { numRuns: 2000 })
})
