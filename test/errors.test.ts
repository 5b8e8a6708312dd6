/** The README's error table lists exactly the codes that exist. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('../../', import.meta.url))

test('README documents exactly the PORTMUX_ERR_* codes of src/errors.ts', () => {
  const source = readFileSync(root + 'src/errors.ts', 'utf8')
  const readme = readFileSync(root + 'README.md', 'utf8')
  const declared = new Set([...source.matchAll(/\| '(PORTMUX_ERR_[A-Z_]+)'/g)].map((m) => m[1]))
  const documented = new Set([...readme.matchAll(/^\| `(PORTMUX_ERR_[A-Z_]+)` \|/gm)].map((m) => m[1]))
  assert.ok(declared.size > 0)
  assert.deepEqual([...documented].sort(), [...declared].sort())
})
