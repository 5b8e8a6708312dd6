import { test } from 'node:test'
import assert from 'node:assert/strict'
import { adb } from '../../src/sniff/adb.js'
import { runDetectorSuite } from './suite.js'
import { concat, fixtureBytes, fixtureVectors, hex, latin1, vectors } from './vectors.js'

const real = fixtureBytes('adb', 'adb-29.0.6-cnxn')

/** A CNXN message with this payload; `check` defaults to the byte sum. */
function cnxn (payload: string, options: { version?: number, maxdata?: number, check?: number, length?: number } = {}): Uint8Array {
  const data = Buffer.from(payload, 'latin1')
  const header = Buffer.alloc(24)
  header.write('CNXN', 0, 'latin1')
  header.writeUInt32LE(options.version ?? 0x01000001, 4)
  header.writeUInt32LE(options.maxdata ?? 256 * 1024, 8)
  header.writeUInt32LE(options.length ?? data.length, 12)
  header.writeUInt32LE(options.check ?? data.reduce((sum, b) => sum + b, 0), 16)
  header.writeUInt32LE((header.readUInt32LE(0) ^ 0xffffffff) >>> 0, 20)
  return concat(header, data)
}

/** A copy of `bytes` with `bytes[at] = value`. */
function withByte (bytes: Uint8Array, at: number, value: number): Uint8Array {
  const copy = Uint8Array.from(bytes)
  copy[at] = value
  return copy
}

runDetectorSuite(adb, [
  ...fixtureVectors('adb'),
  ...vectors('match', {
    'version 0x01000000 with its checksum, maxdata 4096 (an old host)': cnxn('host::\0', { version: 0x01000000, maxdata: 4096 }),
    'checksum 0 from version 0x01000001': cnxn('host::features=shell_v2,cmd', { check: 0 }),
    'maxdata 1 MiB': cnxn('host::features=cmd', { maxdata: 1024 * 1024 }),
    'a host with a serial and banner': cnxn('host:HT4A1JT00123:features=cmd'),
    'a payload of 4096 bytes': cnxn('host::' + 'x'.repeat(4090)),
    'CNXN then an AUTH pipelined': concat(real, latin1('AUTH'))
  }),
  ...vectors('more', {
    empty: '',
    'C': 'C',
    'CNXN': 'CNXN',
    'header only': real.subarray(0, 24),
    'header and host:': real.subarray(0, 29),
    'all but the last byte': real.subarray(0, real.length - 1)
  }),
  ...vectors('no', {
    'version 2': cnxn('host::', { version: 0x02000000 }),
    'version 0x01000002': cnxn('host::', { version: 0x01000002 }),
    'checksum 0 at version 0x01000000': cnxn('host::x', { version: 0x01000000, check: 0 }),
    'a wrong checksum': cnxn('host::features=cmd', { check: 1 }),
    'maxdata 1024': cnxn('host::', { maxdata: 1024 }),
    'maxdata 2 MiB': cnxn('host::', { maxdata: 2 * 1024 * 1024 }),
    'an empty payload': cnxn('', { length: 0 }),
    'a payload of 4097 bytes': cnxn('host::' + 'x'.repeat(4091)),
    'a bad magic': withByte(real, 23, 0),
    'a device\'s CNXN (device:…)': cnxn('device::ro.product.name=x;'),
    'AUTH first': latin1('AUTH'),
    'OPEN first': latin1('OPEN'),
    'lower-case cnxn': latin1('cnxn'),
    // What the `adb` command sends its own server (port 5037): another protocol.
    'adb server protocol: host:version (adb -P, captured)': latin1('000chost:version'),
    'adb server protocol: host:transport-any': latin1('0012host:transport-any'),
    'HTTP CONNECT': 'CONNECT example.com:443 HTTP/1.1\r\n',
    'TLS ClientHello start': hex('16 03 01 02 00')
  })
])

test('adb: the captured CNXN is checked word by word', () => {
  // Any change in the header's fixed words or in the payload is refused.
  for (let i = 0; i < real.length; i++) {
    if (i === 4) continue // 0x01000000: the older version, fine with a true checksum
    if (i >= 8 && i < 12) continue // maxdata may be anything in its range
    if (i >= 12 && i < 16) continue // a changed length changes where the payload ends: 'more' or 'no'
    const v = adb.detect(withByte(real, i, real[i] ^ 0x01))
    assert.equal(v, 'no', `flip at ${i}`)
  }
})
