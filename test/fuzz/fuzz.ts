/**
 * A deterministic fuzzer for the sniffing code: random inputs and mutations of every captured
 * fixture go through every detector in `detectors`, `parseClientHello`, `parseProxyHeader`, and any extra target
 * registered in `extraFuzzTargets`. It counts
 *
 * - exceptions (a detector must never throw, whatever the bytes),
 * - hangs (a single call over `hangMs`, 50 ms by default, confirmed by running it again, so
 *   that one GC pause on a busy machine is not taken for one),
 * - invalid verdicts (anything but 'match' / 'no' / 'more'),
 * - monotonicity violations (a final verdict on a prefix that the whole input contradicts:
 *   the pipeline stops asking at the first final verdict, so it must hold),
 *
 * and reports the slowest call seen. Pure computation: no I/O, no timers.
 */
import { detectors } from '../../src/sniff/index.js'
import { parseClientHello } from '../../src/sniff/tls.js'
import { parseProxyHeader } from '../../src/sniff/proxy-header.js'
import { loadFixtures } from '../fixtures/index.js'
import { engineTarget } from './engine.js'

/** Something the fuzzer calls with arbitrary bytes. */
export interface FuzzTarget {
  readonly name: string
  /** Must return (anything) without throwing, quickly, for every input. */
  run: (bytes: Uint8Array) => unknown
  /**
   * For targets that decide: the verdict inside `run`'s result. The fuzzer then checks it is
   * one of the three, and that a final verdict on a prefix stays the verdict on the whole.
   */
  verdict?: (result: unknown) => unknown
}

/**
 * Extension point: targets added here are fuzzed along with the built-in ones (for example
 * the whole sniff engine, fed one input as a single chunk):
 *
 *     extraFuzzTargets.push({ name: 'engine', run: (bytes) => engine.decide(bytes) })
 */
export const extraFuzzTargets: FuzzTarget[] = []

/** Every detector, `parseClientHello`, `parseProxyHeader`, the whole sniff engine, then `extraFuzzTargets`. */
export function defaultFuzzTargets (): FuzzTarget[] {
  const builtIn: FuzzTarget[] = Object.values(detectors).map((detector) => ({
    name: detector.name,
    run: (bytes: Uint8Array) => detector.detect(bytes),
    verdict: (result: unknown) => result
  }))
  builtIn.push({
    name: 'parseClientHello',
    run: (bytes: Uint8Array) => parseClientHello(bytes),
    verdict: (result: unknown) => (typeof result === 'object' && result !== null && 'verdict' in result ? result.verdict : result)
  })
  builtIn.push({
    name: 'parseProxyHeader',
    run: (bytes: Uint8Array) => parseProxyHeader(bytes),
    verdict: (result: unknown) => (typeof result === 'object' && result !== null && 'verdict' in result ? result.verdict : result)
  })
  builtIn.push(engineTarget())
  return [...builtIn, ...extraFuzzTargets]
}

export interface FuzzOptions {
  /** What to call; `defaultFuzzTargets()` when absent. */
  targets?: FuzzTarget[]
  /** A call slower than this (ms), twice, is a hang. */
  hangMs?: number
  /** Failures kept in the report (all are counted). */
  maxFailures?: number
}

export interface FuzzFailure {
  kind: 'exception' | 'hang' | 'invalid-verdict' | 'monotonicity'
  target: string
  strategy: string
  detail: string
  /** The input, hex, cut at 256 bytes. */
  input: string
  length: number
}

export interface SlowestCall {
  target: string
  ms: number
  length: number
  strategy: string
}

export interface FuzzResult {
  seed: number
  hangMs: number
  inputs: number
  calls: number
  exceptions: number
  hangs: number
  invalidVerdicts: number
  monotonicityViolations: number
  slowest: SlowestCall | undefined
  failures: FuzzFailure[]
  /** How many inputs each strategy produced. */
  strategies: Record<string, number>
  /** Per deciding target, how often each verdict came out on whole inputs: a rough coverage. */
  verdicts: Record<string, Record<string, number>>
  /** Wall time of the whole run, ms. */
  ms: number
}

const DEFAULT_HANG_MS = 50
const DEFAULT_MAX_FAILURES = 20
const HANG_RETRIES = 2
const MAX_RANDOM_LENGTH = 2048
/** maxSniffBytes' default: inputs as large as the engine will ever buffer. */
const MAX_INPUT_LENGTH = 16384
const HEX_SHOWN = 256
const VERDICTS: ReadonlySet<unknown> = new Set(['match', 'no', 'more'])

/** Values that sit on the edges of 1-, 2- and 4-byte length fields. */
const BOUNDARY_VALUES = [
  0, 1, 2, 7, 8, 9, 0x0e, 0x10, 0x7f, 0x80, 0xfe, 0xff, 0x100, 0x101, 0x3fff, 0x4000,
  0x7fff, 0x8000, 0xfffe, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff
]
/** Bytes that mean something to some parser: NUL, CR, LF, space, `<`, `:`, `-`, `?`, 0x7f, 0xff. */
const INTERESTING_BYTES = [0x00, 0x0d, 0x0a, 0x20, 0x3c, 0x3a, 0x2d, 0x3f, 0x7f, 0x80, 0xff]

/** mulberry32: small, fast, seeded. */
class Random {
  private state: number
  constructor (seed: number) { this.state = seed >>> 0 }
  next (): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0
    let t = this.state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }

  /** An integer in [0, n). */
  int (n: number): number { return Math.floor(this.next() * n) }
  byte (): number { return this.int(256) }
  pick<T> (items: readonly T[]): T { return items[this.int(items.length)] }
  /** Mostly short, sometimes long: lengths below 64 half of the time. */
  length (max: number): number { return this.next() < 0.5 ? this.int(Math.min(64, max + 1)) : this.int(max + 1) }
  bytes (n: number): Uint8Array {
    const out = new Uint8Array(n)
    for (let i = 0; i < n; i++) out[i] = this.byte()
    return out
  }
}

type Mutation = (input: Uint8Array, random: Random, corpus: readonly Uint8Array[]) => Uint8Array

function flipBits (input: Uint8Array, random: Random): Uint8Array {
  if (input.length === 0) return input
  const out = Uint8Array.from(input)
  const flips = 1 + random.int(4)
  for (let i = 0; i < flips; i++) out[random.int(out.length)] ^= 1 << random.int(8)
  return out
}

function insertBytes (input: Uint8Array, random: Random): Uint8Array {
  const at = random.int(input.length + 1)
  const inserted = random.next() < 0.5 ? Uint8Array.of(random.pick(INTERESTING_BYTES)) : random.bytes(1 + random.int(8))
  const out = new Uint8Array(input.length + inserted.length)
  out.set(input.subarray(0, at), 0)
  out.set(inserted, at)
  out.set(input.subarray(at), at + inserted.length)
  return out
}

function deleteBytes (input: Uint8Array, random: Random): Uint8Array {
  if (input.length === 0) return input
  const at = random.int(input.length)
  const count = 1 + random.int(Math.min(8, input.length - at))
  const out = new Uint8Array(input.length - count)
  out.set(input.subarray(0, at), 0)
  out.set(input.subarray(at + count), at)
  return out
}

function truncate (input: Uint8Array, random: Random): Uint8Array {
  return input.subarray(0, random.int(input.length + 1))
}

function overwriteInteresting (input: Uint8Array, random: Random): Uint8Array {
  if (input.length === 0) return input
  const out = Uint8Array.from(input)
  out[random.int(out.length)] = random.pick(INTERESTING_BYTES)
  return out
}

/** A prefix of one corpus entry followed by a suffix of another. */
function splice (input: Uint8Array, random: Random, corpus: readonly Uint8Array[]): Uint8Array {
  const other = random.pick(corpus)
  const head = input.subarray(0, random.int(input.length + 1))
  const tail = other.subarray(random.int(other.length + 1))
  const out = new Uint8Array(head.length + tail.length)
  out.set(head, 0)
  out.set(tail, head.length)
  return out
}

/** Overwrite a 1-, 2- or 4-byte field, big- or little-endian, mostly in the first 16 bytes. */
function lengthBoundary (input: Uint8Array, random: Random): Uint8Array {
  const width = random.pick([1, 2, 4])
  if (input.length < width) return input
  const out = Uint8Array.from(input)
  const span = out.length - width + 1
  const at = random.next() < 0.75 ? random.int(Math.min(16, span)) : random.int(span)
  const base = random.next() < 0.8 ? random.pick(BOUNDARY_VALUES) : input.length
  const value = (base + random.pick([-1, 0, 0, 0, 1])) >>> 0
  const littleEndian = random.next() < 0.3
  for (let i = 0; i < width; i++) {
    const shift = 8 * (littleEndian ? i : width - 1 - i)
    out[at + i] = shift >= 32 ? 0 : (value >>> shift) & 0xff
  }
  return out
}

/** The input repeated up to the sniff buffer's size: long inputs, for time bounds. */
function repeat (input: Uint8Array, random: Random): Uint8Array {
  if (input.length === 0) return input
  const target = random.int(MAX_INPUT_LENGTH) + 1
  const out = new Uint8Array(Math.max(target, input.length))
  for (let i = 0; i < out.length; i += input.length) out.set(input.subarray(0, Math.min(input.length, out.length - i)), i)
  return out
}

const MUTATIONS: ReadonlyArray<readonly [string, Mutation]> = [
  ['bit-flip', flipBits],
  ['insert', insertBytes],
  ['delete', deleteBytes],
  ['truncate', truncate],
  ['interesting-byte', overwriteInteresting],
  ['splice', splice],
  ['length-boundary', lengthBoundary],
  ['repeat', repeat]
]

/** One input and the name of how it was made. */
function generate (random: Random, corpus: readonly Uint8Array[]): [string, Uint8Array] {
  if (corpus.length === 0 || random.next() < 0.15) return ['random', random.bytes(random.length(MAX_RANDOM_LENGTH))]
  let input = random.pick(corpus)
  const rounds = 1 + (random.next() < 0.3 ? random.int(3) : 0)
  let name = ''
  for (let i = 0; i < rounds; i++) {
    const [mutationName, mutate] = random.pick(MUTATIONS)
    input = mutate(input, random, corpus)
    name = name === '' ? mutationName : `${name}+${mutationName}`
  }
  if (input.length > MAX_INPUT_LENGTH) input = input.subarray(0, MAX_INPUT_LENGTH)
  return [rounds === 1 ? name : 'chain', input]
}

function hexOf (bytes: Uint8Array): string {
  return Buffer.from(bytes.subarray(0, HEX_SHOWN)).toString('hex') + (bytes.length > HEX_SHOWN ? '…' : '')
}

/** Run `fuzzDetectors` over `iterations` inputs made from `seed`; see the module comment. */
export function fuzzDetectors (iterations: number, seed = 1, options: FuzzOptions = {}): FuzzResult {
  const targets = options.targets ?? defaultFuzzTargets()
  const hangMs = options.hangMs ?? DEFAULT_HANG_MS
  const maxFailures = options.maxFailures ?? DEFAULT_MAX_FAILURES
  const corpus = loadFixtures().map((f) => Uint8Array.from(f.bytes))
  const random = new Random(seed)
  const result: FuzzResult = {
    seed,
    hangMs,
    inputs: 0,
    calls: 0,
    exceptions: 0,
    hangs: 0,
    invalidVerdicts: 0,
    monotonicityViolations: 0,
    slowest: undefined,
    failures: [],
    strategies: {},
    verdicts: {},
    ms: 0
  }
  const started = performance.now()

  const fail = (failure: Omit<FuzzFailure, 'input' | 'length'>, input: Uint8Array): void => {
    if (result.failures.length < maxFailures) result.failures.push({ ...failure, input: hexOf(input), length: input.length })
  }

  /** One guarded call: the result, or `undefined` after counting what went wrong. */
  const call = (target: FuzzTarget, input: Uint8Array, strategy: string): { value: unknown } | undefined => {
    result.calls++
    const before = performance.now()
    let value: unknown
    try {
      value = target.run(input)
    } catch (error) {
      result.exceptions++
      fail({ kind: 'exception', target: target.name, strategy, detail: error instanceof Error ? (error.stack ?? error.message) : String(error) }, input)
      return undefined
    }
    const ms = performance.now() - before
    if (result.slowest === undefined || ms > result.slowest.ms) result.slowest = { target: target.name, ms, length: input.length, strategy }
    if (ms > hangMs && confirmSlow(target, input, hangMs)) {
      result.hangs++
      fail({ kind: 'hang', target: target.name, strategy, detail: `${ms.toFixed(1)} ms` }, input)
    }
    return { value }
  }

  for (let n = 0; n < iterations; n++) {
    const [strategy, input] = generate(random, corpus)
    result.inputs++
    result.strategies[strategy] = (result.strategies[strategy] ?? 0) + 1
    // A random cut, for the monotonicity check of deciding targets.
    const cut = input.length === 0 ? 0 : random.int(input.length) + 1
    for (const target of targets) {
      const whole = call(target, input, strategy)
      if (whole === undefined || target.verdict === undefined) continue
      const verdict = target.verdict(whole.value)
      const tally = (result.verdicts[target.name] ??= {})
      tally[String(verdict)] = (tally[String(verdict)] ?? 0) + 1
      if (!VERDICTS.has(verdict)) {
        result.invalidVerdicts++
        fail({ kind: 'invalid-verdict', target: target.name, strategy, detail: String(verdict) }, input)
        continue
      }
      if (cut === input.length) continue
      const prefix = call(target, input.subarray(0, cut), strategy)
      if (prefix === undefined) continue
      const early = target.verdict(prefix.value)
      if (early !== 'more' && early !== verdict) {
        result.monotonicityViolations++
        fail({ kind: 'monotonicity', target: target.name, strategy, detail: `${String(early)} at ${cut} bytes, ${String(verdict)} at ${input.length}` }, input)
      }
    }
  }
  result.ms = performance.now() - started
  return result
}

/** A slow call counts as a hang only if it is slow every time it is run again. */
function confirmSlow (target: FuzzTarget, input: Uint8Array, hangMs: number): boolean {
  for (let i = 0; i < HANG_RETRIES; i++) {
    const before = performance.now()
    try { target.run(input) } catch {}
    if (performance.now() - before <= hangMs) return false
  }
  return true
}

/** Everything that makes a run fail. */
export function problemCount (result: FuzzResult): number {
  return result.exceptions + result.hangs + result.invalidVerdicts + result.monotonicityViolations
}

/** A human-readable summary of a run. */
export function formatFuzzResult (result: FuzzResult): string {
  const lines = [
    `fuzz: ${result.inputs} inputs, ${result.calls} calls, seed ${result.seed}, ${(result.ms / 1000).toFixed(1)} s`,
    `  exceptions:              ${result.exceptions}`,
    `  hangs (> ${result.hangMs} ms, twice): ${result.hangs}`,
    `  invalid verdicts:        ${result.invalidVerdicts}`,
    `  monotonicity violations: ${result.monotonicityViolations}`,
    `  slowest call:            ${result.slowest === undefined ? '-' : `${result.slowest.ms.toFixed(3)} ms in ${result.slowest.target} (${result.slowest.length} bytes, ${result.slowest.strategy})`}`,
    `  inputs by strategy:      ${Object.entries(result.strategies).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k} ${v}`).join(', ')}`,
    '  verdicts on whole inputs (match / more / no):',
    ...Object.entries(result.verdicts).map(([name, t]) =>
      `    ${name.padEnd(18)} ${String(t.match ?? 0).padStart(8)} ${String(t.more ?? 0).padStart(8)} ${String(t.no ?? 0).padStart(8)}`)
  ]
  for (const f of result.failures) {
    lines.push(`  ${f.kind} in ${f.target} (${f.strategy}, ${f.length} bytes): ${f.detail.split('\n')[0]}\n    input: ${f.input}`)
  }
  return lines.join('\n')
}
