/**
 * Small builders for detector test vectors: text and hex literals, concatenation, and the
 * captured fixtures of one protocol as `'match'` vectors.
 */
import type { Verdict } from '../../src/sniff/types.js'
import { loadFixtures } from '../fixtures/index.js'
import type { Vector } from './suite.js'

/** Bytes of a string whose characters are all ≤ U+00FF (`'\x00'` escapes welcome). */
export function latin1 (s: string): Uint8Array {
  return Uint8Array.from(s, (c) => c.charCodeAt(0))
}

/** Bytes from hex, spaces ignored: `hex('03 00 00 0b')`. */
export function hex (s: string): Uint8Array {
  return Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'))
}

export function concat (...parts: Uint8Array[]): Uint8Array {
  return Uint8Array.from(Buffer.concat(parts))
}

/** Every fixture of `protocol`; there must be at least one. */
export function fixtureVectors (protocol: string): Vector[] {
  const fixtures = loadFixtures(protocol)
  if (fixtures.length === 0) throw new Error(`no fixtures for ${protocol}`)
  return fixtures.map((f) => ({ name: `fixture ${f.name}`, bytes: Uint8Array.from(f.bytes), expect: 'match' }))
}

/** The raw bytes of one fixture. */
export function fixtureBytes (protocol: string, name: string): Uint8Array {
  const fixture = loadFixtures(protocol).find((f) => f.name === name)
  if (fixture === undefined) throw new Error(`no fixture ${protocol}/${name}`)
  return Uint8Array.from(fixture.bytes)
}

/** Vectors from a `{ name: bytes }` table, all with the same expected verdict. */
export function vectors (expect: Verdict, table: Record<string, Uint8Array | string>): Vector[] {
  return Object.entries(table).map(([name, bytes]) => ({
    name,
    bytes: typeof bytes === 'string' ? latin1(bytes) : bytes,
    expect
  }))
}

/** A deterministic stream of uniform random bytes (mulberry32): fast-check leans to small values. */
export function seededBytes (seed: number): (length: number) => Uint8Array {
  let state = seed >>> 0
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) & 0xff
  }
  return (length) => Uint8Array.from({ length }, next)
}
