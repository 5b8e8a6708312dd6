/**
 * Fuzz the sniffing code from the command line:
 *
 *     npx tsc -p tsconfig.sniff.json && node build-sniff/test/fuzz/cli.js [iterations] [seed]
 *
 * (or `build/test/fuzz/cli.js` after the full build). 1,000,000 inputs by default, seed 1.
 * Prints a summary; exits 1 on any exception, hang, invalid verdict or monotonicity violation.
 * Under the test runner, which loads every built file, it does nothing: the bounded run is
 * `test/fuzz/sniff.test.ts`.
 */
import { pathToFileURL } from 'node:url'
import { formatFuzzResult, fuzzDetectors, problemCount } from './fuzz.js'

const DEFAULT_ITERATIONS = 1_000_000
const DEFAULT_SEED = 1

function positiveInteger (text: string | undefined, fallback: number, what: string): number {
  if (text === undefined) return fallback
  const value = Number(text.replaceAll('_', ''))
  if (!Number.isSafeInteger(value) || value < 0) throw new Error(`${what} must be a non-negative integer, not ${text}`)
  return value
}

function main (argv: string[]): number {
  const iterations = positiveInteger(argv[0], DEFAULT_ITERATIONS, 'iterations')
  const seed = positiveInteger(argv[1], DEFAULT_SEED, 'seed')
  const result = fuzzDetectors(iterations, seed)
  console.log(formatFuzzResult(result))
  const problems = problemCount(result)
  console.log(problems === 0 ? 'fuzz: ok' : `fuzz: ${problems} problem(s)`)
  return problems === 0 ? 0 : 1
}

const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href
if (isMain && process.env.NODE_TEST_CONTEXT === undefined) {
  try {
    process.exitCode = main(process.argv.slice(2))
  } catch (error) {
    console.error(error instanceof Error ? error.message : error)
    process.exitCode = 2
  }
}
