/**
 * The cross-protocol matrix: every captured fixture under `test/fixtures/<protocol>/` is fed to
 * every built-in detector, byte by byte as the pipeline would feed it (stopping at the first
 * final verdict). Only the detector named like the fixture's folder may answer `'match'`;
 * every other one must end at `'no'`, unless `UNDECIDED` lists the cell with the reason it
 * stays `'more'`. On failure the whole matrix is printed.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { detectors } from '../../src/sniff/index.js'
import type { Detector, Verdict } from '../../src/sniff/types.js'
import { loadFixtures, type Fixture } from '../fixtures/index.js'

/** The verdict the pipeline would act on: the first final one over growing prefixes. */
function pipelineVerdict (detector: Detector, bytes: Uint8Array): Verdict {
  for (let end = 1; end <= bytes.length; end++) {
    const verdict = detector.detect(bytes.subarray(0, end))
    if (verdict !== 'more') return verdict
  }
  return 'more'
}

interface Row { fixture: Fixture, cells: Verdict[] }

const CELL_WIDTH = 9
const MARK_OWN = '*'
const MARK_WRONG = '!'

function renderTable (names: string[], rows: Row[]): string {
  const firstWidth = Math.max(...rows.map((r) => r.fixture.protocol.length + r.fixture.name.length + 1), 7)
  const header = 'fixture'.padEnd(firstWidth) + ' ' + names.map((n) => n.padEnd(CELL_WIDTH)).join('')
  const lines = rows.map(({ fixture, cells }) => {
    const label = `${fixture.protocol}/${fixture.name}`.padEnd(firstWidth)
    const rendered = cells.map((verdict, i) => {
      const own = names[i] === fixture.protocol
      const mark = own ? MARK_OWN : verdict === 'match' ? MARK_WRONG : ''
      return (verdict + mark).padEnd(CELL_WIDTH)
    })
    return `${label} ${rendered.join('')}`
  })
  return [header, ...lines, `(${MARK_OWN} the fixture's own detector, ${MARK_WRONG} a foreign match)`].join('\n')
}

const OWN_PROTOCOLS = ['ssh', 'socks4', 'socks5', 'openvpn', 'xmpp', 'tinc', 'postgres', 'rdp', 'dns', 'syslog', 'adb', 'winbox']

/**
 * Cells that end at `'more'`, each with why: `detector protocol/fixture`. A route with such a
 * detector placed before the fixture's own one holds the connection until the sniff limits
 * run out (the README's route-order advice says so).
 */
const UNDECIDED: Readonly<Record<string, string>> = {
  // A SOCKS5 greeting is 3–4 bytes and the client then waits: to DNS that is a length
  // (0x05xx, possible for an UPDATE) and a message ID, both of which can be anything.
  'dns socks5/curl-socks5': 'the greeting ends inside the DNS length and ID',
  'dns socks5/curl-socks5-hostname': 'the greeting ends inside the DNS length and ID'
}

test('matrix: only a fixture\'s own detector matches it', () => {
  const fixtures = loadFixtures()
  const names = Object.keys(detectors) as Array<keyof typeof detectors>
  for (const protocol of OWN_PROTOCOLS) {
    assert.ok(fixtures.some((f) => f.protocol === protocol), `no fixtures for ${protocol}`)
  }

  const rows: Row[] = fixtures.map((fixture) => ({
    fixture,
    cells: names.map((name) => pipelineVerdict(detectors[name], fixture.bytes))
  }))
  const wrong = rows.flatMap(({ fixture, cells }) =>
    cells.flatMap((verdict, i) => (verdict === 'match' && names[i] !== fixture.protocol
      ? [`${names[i]} claims ${fixture.protocol}/${fixture.name}`]
      : [])))

  assert.deepEqual(wrong, [], `foreign matches:\n${renderTable(names, rows)}`)
})

test('matrix: whole fixtures are not claimed by a foreign detector either', () => {
  const names = Object.keys(detectors) as Array<keyof typeof detectors>
  const wrong: string[] = []
  for (const fixture of loadFixtures()) {
    for (const name of names) {
      if (name !== fixture.protocol && detectors[name].detect(fixture.bytes) === 'match') {
        wrong.push(`${name} claims ${fixture.protocol}/${fixture.name}`)
      }
    }
  }
  assert.deepEqual(wrong, [])
})

test('matrix: every foreign cell is \'no\', or undecided for a documented reason', () => {
  const names = Object.keys(detectors) as Array<keyof typeof detectors>
  const unexplained: string[] = []
  const seen = new Set<string>()
  for (const fixture of loadFixtures()) {
    for (const name of names) {
      if (name === fixture.protocol) continue
      const verdict = pipelineVerdict(detectors[name], fixture.bytes)
      const key = `${name} ${fixture.protocol}/${fixture.name}`
      if (verdict === 'more' && key in UNDECIDED) seen.add(key)
      else if (verdict !== 'no') unexplained.push(`${key}: ${verdict}`)
    }
  }
  assert.deepEqual(unexplained, [])
  assert.deepEqual([...seen].sort(), Object.keys(UNDECIDED).sort(), 'every documented cell still happens')
})

test('matrix: own detectors match every fixture of theirs', () => {
  const names = new Set<string>(Object.keys(detectors))
  for (const fixture of loadFixtures()) {
    if (!names.has(fixture.protocol)) continue // PROXY headers: no detector of their own
    const own = detectors[fixture.protocol as keyof typeof detectors]
    assert.equal(pipelineVerdict(own, fixture.bytes), 'match', `${fixture.protocol}/${fixture.name}`)
  }
})
