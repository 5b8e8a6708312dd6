/**
 * One contract suite for every detector. Each detector's test file calls
 * `runDetectorSuite` with its own vectors; the suite checks what every detector
 * owes the pipeline:
 *
 * - the verdict on the whole input is the expected one;
 * - verdicts over growing prefixes are monotone: once `'match'` or `'no'`, the
 *   verdict never changes again as bytes are added, and a `'match'` input never
 *   passes through `'no'` on the way (no premature `'no'`);
 * - feeding the input one byte at a time, and in random splits, reaches the same
 *   verdict (the pipeline re-asks with the bytes accumulated so far).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import type { Detector, Verdict } from '../../src/sniff/types.js'

export interface Vector {
  /** What the test calls it; fixtures name their file. */
  name: string
  bytes: Uint8Array
  /** The verdict for the whole input. */
  expect: Verdict
}

/** Verdicts of every prefix, from 1 byte to the whole input. */
export function prefixVerdicts (detector: Detector, bytes: Uint8Array): Verdict[] {
  const out: Verdict[] = []
  for (let i = 1; i <= bytes.length; i++) out.push(detector.detect(bytes.subarray(0, i)))
  return out
}

/** Feed `bytes` as the pipeline would: chunks appended, detector asked after each, stop at a final verdict. */
export function feed (detector: Detector, bytes: Uint8Array, cuts: number[]): Verdict {
  const points = [...new Set(cuts.filter((c) => c > 0 && c < bytes.length))].sort((a, b) => a - b)
  points.push(bytes.length)
  let verdict: Verdict = 'more'
  for (const end of points) {
    // A fresh copy each time: detectors must not depend on the identity of the buffer.
    verdict = detector.detect(Uint8Array.from(bytes.subarray(0, end)))
    if (verdict !== 'more') return verdict
  }
  return verdict
}

export function runDetectorSuite (detector: Detector, vectors: Vector[]): void {
  for (const v of vectors) {
    test(`${detector.name}: ${v.name} → ${v.expect}`, () => {
      assert.equal(detector.detect(v.bytes), v.expect, 'whole input')

      const verdicts = prefixVerdicts(detector, v.bytes)
      const firstFinal = verdicts.findIndex((x) => x !== 'more')
      if (firstFinal !== -1) {
        const final = verdicts[firstFinal]
        for (let i = firstFinal; i < verdicts.length; i++) {
          assert.equal(verdicts[i], final, `prefix of ${i + 1} bytes changed a final verdict`)
        }
        assert.equal(final, v.expect, `prefix of ${firstFinal + 1} bytes decided too early`)
      } else {
        assert.equal(v.expect, 'more', 'no prefix decided, yet a final verdict was expected')
      }

      assert.equal(feed(detector, v.bytes, Array.from({ length: v.bytes.length }, (_, i) => i)), v.expect, 'one byte at a time')

      fc.assert(fc.property(
        fc.array(fc.integer({ min: 1, max: Math.max(1, v.bytes.length - 1) }), { maxLength: 8 }),
        (cuts) => feed(detector, v.bytes, cuts) === v.expect
      ), { numRuns: 50 })
    })
  }
}
