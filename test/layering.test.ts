/**
 * The tree's layering, read from the sources' own import lines: data flows one way.
 * - src/sniff imports nothing of the project outside src/sniff, and no Node module that does
 *   I/O or keeps time;
 * - src/core imports no handler and not the server that puts core and handlers together;
 * - src/handlers import nothing from core or the server.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('../../', import.meta.url))
const src = path.join(root, 'src')

function sources (dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => path.join(e.parentPath ?? (e as unknown as { path: string }).path, e.name))
}

/** Every module a source file imports or re-exports from, resolved to a path under src/ when relative. */
function imports (file: string): string[] {
  const text = readFileSync(file, 'utf8')
  const out: string[] = []
  for (const m of text.matchAll(/^\s*(?:import|export)\b[^'"]*?from\s+'([^']+)'/gm)) {
    const spec = m[1]
    out.push(spec.startsWith('.') ? path.relative(src, path.resolve(path.dirname(file), spec)).replace(/\.js$/, '.ts') : spec)
  }
  return out
}

function offending (dir: string, bad: (spec: string) => boolean): string[] {
  const found: string[] = []
  for (const file of sources(path.join(src, dir))) {
    for (const spec of imports(file)) if (bad(spec)) found.push(`${path.relative(src, file)} → ${spec}`)
  }
  return found
}

test('the import reader sees the imports it is meant to judge', () => {
  const pipeline = imports(path.join(src, 'core', 'pipeline.ts'))
  assert.ok(pipeline.includes(path.join('core', 'classify.ts')), pipeline.join(', '))
  assert.ok(pipeline.includes('node:net'))
  const server = imports(path.join(src, 'server.ts'))
  assert.ok(server.includes(path.join('handlers', 'http.ts')) && server.includes(path.join('core', 'pipeline.ts')), server.join(', '))
})

test('src/sniff: pure — only its own files, and no Node module for I/O or time', () => {
  const allowedNode = new Set(['node:net', 'node:buffer'])
  assert.deepEqual(offending('sniff', (spec) => spec.startsWith('node:') ? !allowedNode.has(spec) : !spec.startsWith('sniff' + path.sep)), [])
})

test('src/core imports no handler and not the server', () => {
  assert.deepEqual(offending('core', (spec) => spec.startsWith('handlers' + path.sep) || spec === 'server.ts' || spec === 'fastify.ts' || spec === 'node.ts'), [])
})

test('src/handlers import nothing from core or the server', () => {
  assert.deepEqual(offending('handlers', (spec) => spec.startsWith('core' + path.sep) || spec === 'server.ts' || spec === 'fastify.ts' || spec === 'node.ts'), [])
})
