/**
 * The built-in detectors wired into the pipeline: every captured fixture, sent over a
 * real socket (whole, and one byte at a time), reaches the route named after its
 * protocol, with the bytes replayed intact.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer } from '../../src/node.js'
import { detectors } from '../../src/sniff/index.js'
import type { ProtocolName } from '../../src/sniff/types.js'
import type { ConnectionInfo, TcpRoute } from '../../src/types.js'
import { loadFixtures } from '../fixtures/index.js'
import { connect, delay, listen, readAll } from '../helpers.js'

const names = Object.keys(detectors) as ProtocolName[]

for (const split of ['whole', 'byte-by-byte'] as const) {
  test(`every fixture reaches the route of its protocol (${split})`, async (t) => {
    const seen = new Map<string, { info: ConnectionInfo, bytes: Buffer }>()
    const routes: Record<string, TcpRoute> = {}
    for (const name of names) {
      routes[name] = {
        match: name,
        handler: (socket, info) => {
          const chunks: Buffer[] = []
          socket.on('data', (c: Buffer) => chunks.push(c))
          socket.on('end', () => {
            seen.set(`${info.remotePort ?? 0}`, { info, bytes: Buffer.concat(chunks) })
            socket.end(info.route)
          })
        }
      }
    }
    const server = createServer(undefined, { routes, sniffTimeout: 10_000 })
    const port = await listen(t, server)
    const fixtures = loadFixtures().filter((f) => (names as string[]).includes(f.protocol))
    assert.ok(fixtures.length >= 20, `fixtures found: ${fixtures.length}`)
    for (const fixture of fixtures) {
      const socket = await connect(t, port)
      const reply = readAll(socket)
      if (split === 'whole') {
        socket.end(fixture.bytes)
      } else {
        for (let i = 0; i < fixture.bytes.length; i++) {
          socket.write(fixture.bytes.subarray(i, i + 1))
          if (i % 64 === 0) await delay(1)
        }
        socket.end()
      }
      const route = (await reply).toString()
      assert.equal(route, fixture.protocol, `${fixture.protocol}/${fixture.name} went to ${route || 'nowhere'}`)
    }
    for (const { info, bytes } of seen.values()) {
      const fixture = fixtures.find((f) => f.protocol === info.route && f.bytes.equals(bytes))
      assert.ok(fixture !== undefined, `route ${info.route} got bytes that are no ${info.route} fixture`)
      assert.equal(info.protocol, info.route)
      assert.ok(bytes.subarray(0, info.bytes.length).equals(info.bytes), 'info.bytes is the start of the stream')
    }
    assert.equal(seen.size, fixtures.length)
  })
}
