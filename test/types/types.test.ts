/**
 * The published types, as consumers compile them: the fixtures in test/types/fixtures import
 * `portmux` by name (resolved to dist/ through the package's `exports`, ESM and CommonJS).
 * They must compile as they are; and with their `// @ts-expect-error` directives removed,
 * exactly the lines after the directives must fail — so each directive is needed, and each
 * marks a real error rather than one elsewhere.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'

const fixtures = fileURLToPath(new URL('../../../test/types/fixtures/', import.meta.url))
const DIRECTIVE = /^\s*\/\/ @ts-expect-error\b.*$/

interface Diagnosed { file: string, line: number, message: string }

/** Compile the fixtures; `strip` removes the directives (keeping line numbers). */
function compile (strip: boolean): { diagnostics: Diagnosed[], directives: Diagnosed[] } {
  const configPath = path.join(fixtures, 'tsconfig.json')
  const config = ts.readConfigFile(configPath, (f) => ts.sys.readFile(f))
  assert.equal(config.error, undefined)
  const parsed = ts.parseJsonConfigFileContent(config.config, ts.sys, fixtures, undefined, configPath)
  assert.deepEqual(parsed.errors, [])
  const host = ts.createCompilerHost(parsed.options)
  const directives: Diagnosed[] = []
  const readFile = host.readFile.bind(host)
  const ownFile = (f: string): boolean => path.resolve(f).startsWith(fixtures)
  host.readFile = (f) => {
    const text = readFile(f)
    if (text === undefined || !ownFile(f)) return text
    const lines = text.split('\n')
    lines.forEach((l, i) => {
      if (DIRECTIVE.test(l)) directives.push({ file: path.basename(f), line: i + 2, message: l.trim() })
    })
    return strip ? lines.map((l) => DIRECTIVE.test(l) ? '' : l).join('\n') : text
  }
  const program = ts.createProgram(parsed.fileNames, parsed.options, host)
  const diagnostics = ts.getPreEmitDiagnostics(program).map((d) => {
    const message = ts.flattenDiagnosticMessageText(d.messageText, '\n')
    if (d.file === undefined || d.start === undefined) return { file: '', line: 0, message }
    return { file: path.basename(d.file.fileName), line: d.file.getLineAndCharacterOfPosition(d.start).line + 1, message }
  })
  return { diagnostics, directives }
}

const key = (d: Diagnosed): string => `${d.file}:${d.line}`

test('the consumer fixtures compile against the built package', { timeout: 120_000 }, () => {
  const files = readdirSync(fixtures).filter((f) => /\.c?ts$/.test(f))
  assert.ok(files.includes('fastify.ts') && files.includes('events.ts') && files.includes('commonjs.cts'))
  const { diagnostics, directives } = compile(false)
  assert.deepEqual(diagnostics.map((d) => `${key(d)} ${d.message}`), [])
  assert.ok(directives.length >= 15, `only ${directives.length} expected errors`)
})

test('each @ts-expect-error in the fixtures marks an error on its next line, and nothing else fails', { timeout: 120_000 }, () => {
  const { diagnostics, directives } = compile(true)
  const failing = new Set(diagnostics.map(key))
  const expected = new Set(directives.map(key))
  const missing = directives.filter((d) => !failing.has(key(d))).map((d) => `${key(d)} ${d.message}`)
  assert.deepEqual(missing, [], 'these directives mark code that compiles')
  const unexpected = diagnostics.filter((d) => !expected.has(key(d))).map((d) => `${key(d)} ${d.message}`)
  assert.deepEqual(unexpected, [], 'errors where no directive is')
})
