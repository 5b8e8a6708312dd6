import { test } from 'node:test'
import assert from 'node:assert/strict'
import { detectors } from '../../src/sniff/index.js'
import { defaultFuzzTargets, extraFuzzTargets, formatFuzzResult, fuzzDetectors, problemCount } from './fuzz.js'

const SLICE = 20_000

test(`fuzz: ${SLICE} inputs through every detector, parseClientHello, parseProxyHeader and the engine, no exception, hang or contradiction`, () => {
  const result = fuzzDetectors(SLICE, 20_251_127)
  assert.equal(result.inputs, SLICE)
  assert.equal(problemCount(result), 0, formatFuzzResult(result))
})

test('fuzz: the targets are every detector, parseClientHello, parseProxyHeader, the engine and the extra targets', () => {
  const names = defaultFuzzTargets().map((t) => t.name)
  assert.deepEqual(names, [...Object.keys(detectors), 'parseClientHello', 'parseProxyHeader', 'engine'])
  extraFuzzTargets.push({ name: 'extra', run: () => undefined })
  try {
    assert.deepEqual(defaultFuzzTargets().map((t) => t.name).at(-1), 'extra')
  } finally {
    extraFuzzTargets.pop()
  }
})

test('fuzz: a throwing target is counted, not fatal', () => {
  const result = fuzzDetectors(50, 7, { targets: [{ name: 'thrower', run: () => { throw new Error('boom') } }] })
  assert.equal(result.exceptions, 50)
  assert.equal(result.failures[0].kind, 'exception')
})

test('fuzz: a slow target is reported as a hang', () => {
  const slow = { name: 'slow', run: () => { const end = performance.now() + 3; while (performance.now() < end); } }
  const result = fuzzDetectors(2, 7, { targets: [slow], hangMs: 1 })
  assert.equal(result.hangs, 2)
})

test('fuzz: a detector that changes its mind is caught', () => {
  const fickle = { name: 'fickle', run: (bytes: Uint8Array) => (bytes.length % 2 === 0 ? 'match' : 'no'), verdict: (v: unknown) => v }
  const result = fuzzDetectors(200, 7, { targets: [fickle] })
  assert.ok(result.monotonicityViolations > 0)
})

test('fuzz: the same seed makes the same run', () => {
  const a = fuzzDetectors(500, 99)
  const b = fuzzDetectors(500, 99)
  assert.deepEqual(a.strategies, b.strategies)
  assert.equal(a.calls, b.calls)
})
