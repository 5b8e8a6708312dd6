/**
 * The package as npm would publish it: what `npm pack` puts in, that every `exports` entry
 * and every source map points at a packed file, that `require()` gets a real CommonJS build
 * (no require(esm), which Node 20.18 lacks) with the same exports as `import`, and that the
 * README documents every export and every public method of MuxServer.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'

const root = fileURLToPath(new URL('../../', import.meta.url))
const run = promisify(execFile)
const T = { timeout: 120_000 }

interface PackResult { files: Array<{ path: string }> }

let packed: Promise<Set<string>> | undefined
/** The files `npm pack` would publish (the build is already there: no prepack). */
function packList (): Promise<Set<string>> {
  packed ??= run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, maxBuffer: 16 * 1024 * 1024 })
    .then(({ stdout }) => new Set((JSON.parse(stdout) as PackResult[])[0].files.map((f) => f.path)))
  return packed
}

const pkg = JSON.parse(readFileSync(root + 'package.json', 'utf8')) as {
  main: string
  types: string
  engines: { node: string }
  exports: Record<string, string | Record<string, Record<string, string>>>
  peerDependencies: Record<string, string>
  peerDependenciesMeta: Record<string, { optional?: boolean }>
}

test('npm pack ships the builds, their types and maps\' sources, LICENSE, README and CHANGELOG, and nothing of tests or build output', T, async () => {
  const files = await packList()
  for (const f of ['package.json', 'LICENSE', 'README.md', 'CHANGELOG.md',
    'dist/index.js', 'dist/index.d.ts', 'dist/fastify.d.ts', 'dist/core/events.d.ts', 'dist/metrics.js', 'dist/cluster.js',
    'dist/cjs/package.json', 'dist/cjs/index.js', 'dist/cjs/index.d.ts', 'dist/cjs/metrics.js', 'dist/cjs/cluster.js',
    'src/index.ts']) {
    assert.ok(files.has(f), `${f} is packed`)
  }
  const stray = [...files].filter((f) => /^(test|bench|build|build-sniff|examples|scratch|node_modules|\.ci)\//.test(f) ||
    /\.test\.|tsconfig|\.tgz$|\.log$/.test(f))
  assert.deepEqual(stray, [])
  assert.deepEqual([...files].filter((f) => !/^(dist|src)\//.test(f)).sort(), ['CHANGELOG.md', 'LICENSE', 'README.md', 'package.json'])
  assert.equal(JSON.parse(readFileSync(root + 'dist/cjs/package.json', 'utf8')).type, 'commonjs')
  assert.match(readFileSync(root + 'LICENSE', 'utf8'), /^MIT License\n\nCopyright \(c\) \d{4} portmux contributors\n/)
  assert.match(readFileSync(root + 'CHANGELOG.md', 'utf8'), /^## 0\.1\.0\b/m)
})

test('every exports entry, main and types point at packed files', T, async () => {
  const files = await packList()
  const targets: string[] = [pkg.main, pkg.types]
  for (const [subpath, entry] of Object.entries(pkg.exports)) {
    if (typeof entry === 'string') {
      targets.push(entry)
      continue
    }
    assert.deepEqual(Object.keys(entry), ['import', 'require'], `${subpath}: import and require`)
    for (const condition of Object.values(entry)) {
      assert.deepEqual(Object.keys(condition), ['types', 'default'], `${subpath}: types first`)
      targets.push(...Object.values(condition))
    }
  }
  for (const t of targets) assert.ok(files.has(t.replace(/^\.\//, '')), `${t} is packed`)
  assert.ok('./metrics' in pkg.exports)
  assert.equal(pkg.peerDependenciesMeta['prom-client']?.optional, true)
  assert.ok(pkg.peerDependencies['prom-client'] !== undefined)
})

test('every source map in the package resolves to packed sources', T, async () => {
  const files = await packList()
  const maps = [...files].filter((f) => f.endsWith('.map'))
  assert.ok(maps.length > 20)
  for (const map of maps) {
    const { sources } = JSON.parse(readFileSync(root + map, 'utf8')) as { sources: string[] }
    for (const s of sources) {
      const resolved = path.posix.normalize(path.posix.join(path.posix.dirname(map), s))
      assert.ok(files.has(resolved), `${map} → ${resolved} is packed`)
    }
  }
})

/** Run `code` with Node as a CommonJS script from the package's root (the package resolves itself by name). */
async function node (args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, args, { cwd: root })
  return stdout
}

test('require() gets the CommonJS build, without require(esm), with the same exports as import', T, async () => {
  const script = `
    const entries = ['portmux', 'portmux/cluster', 'portmux/metrics']
    const out = {}
    for (const e of entries) out[e] = { file: require.resolve(e), keys: Object.keys(require(e)).sort() }
    const { serverFactory, createServer, default: plugin, portmux } = require('portmux')
    const server = createServer()
    out.ok = typeof serverFactory === 'function' && plugin === portmux && typeof server.route === 'function'
    process.stdout.write(JSON.stringify(out))`
  const cjs = JSON.parse(await node(['--no-experimental-require-module', '-e', script])) as Record<string, { file: string, keys: string[] }> & { ok: boolean }
  assert.equal(cjs.ok, true)
  const esm = JSON.parse(await node(['--input-type=module', '-e', `
    const out = {}
    for (const e of ['portmux', 'portmux/cluster', 'portmux/metrics']) out[e] = Object.keys(await import(e)).sort()
    process.stdout.write(JSON.stringify(out))`])) as Record<string, string[]>
  for (const e of ['portmux', 'portmux/cluster', 'portmux/metrics']) {
    assert.equal(path.relative(root, cjs[e].file), path.join('dist', 'cjs', e === 'portmux' ? 'index.js' : e.slice('portmux/'.length) + '.js'))
    assert.deepEqual(cjs[e].keys, esm[e], `${e}: the same exports both ways`)
  }
  assert.ok(esm.portmux.includes('default') && esm.portmux.includes('serverFactory'))
})

test('engines names the oldest Node the CommonJS build is for', () => {
  assert.equal(pkg.engines.node, '>=20.18.1')
})

/** The names a module exports, values and types alike. */
function exportedNames (file: string): string[] {
  const source = ts.createSourceFile(file, readFileSync(root + file, 'utf8'), ts.ScriptTarget.ES2022)
  const names: string[] = []
  for (const statement of source.statements) {
    if (ts.isExportDeclaration(statement) && statement.exportClause !== undefined && ts.isNamedExports(statement.exportClause)) {
      for (const e of statement.exportClause.elements) if (e.name.text !== 'default') names.push(e.name.text)
    }
    const modifiers = ts.canHaveModifiers(statement) ? ts.getModifiers(statement) : undefined
    if (modifiers?.some((m) => m.kind === ts.SyntaxKind.ExportKeyword) === true) {
      if ((ts.isFunctionDeclaration(statement) || ts.isClassDeclaration(statement) || ts.isInterfaceDeclaration(statement) || ts.isTypeAliasDeclaration(statement)) && statement.name !== undefined) {
        names.push(statement.name.text)
      } else if (ts.isVariableStatement(statement)) {
        for (const d of statement.declarationList.declarations) if (ts.isIdentifier(d.name)) names.push(d.name.text)
      }
    }
  }
  return names
}

const readme = readFileSync(root + 'README.md', 'utf8')
const mentioned = (name: string): boolean => new RegExp('`' + name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&') + '\\b[^`]*`').test(readme)

test('the README mentions every export of portmux and portmux/metrics', () => {
  const names = [...exportedNames('src/index.ts'), ...exportedNames('src/metrics.ts')]
  assert.ok(names.includes('serverFactory') && names.includes('devCertificate') && names.includes('registerMetrics') && names.includes('MuxEvents'))
  assert.deepEqual(names.filter((n) => !mentioned(n)), [])
})

test('the README mentions every public method and property of MuxServer', () => {
  const source = ts.createSourceFile('server.ts', readFileSync(root + 'src/server.ts', 'utf8'), ts.ScriptTarget.ES2022)
  const members = new Set<string>()
  ts.forEachChild(source, (node) => {
    if (!ts.isClassDeclaration(node) || node.name?.text !== 'MuxServer') return
    for (const m of node.members) {
      if (m.name === undefined || !ts.isIdentifier(m.name) || ts.isConstructorDeclaration(m)) continue
      const modifiers = ts.canHaveModifiers(m) ? ts.getModifiers(m) : undefined
      if (modifiers?.some((x) => x.kind === ts.SyntaxKind.PrivateKeyword || x.kind === ts.SyntaxKind.ProtectedKeyword) === true) continue
      members.add(m.name.text)
    }
  })
  // EventEmitter's own methods, typed by MuxEvents: the README lists the events instead.
  for (const e of ['on', 'addListener', 'prependListener', 'removeListener', 'off', 'removeAllListeners', 'emit']) members.delete(e)
  assert.ok(members.has('route') && members.has('closeHttp2Sessions') && members.has('tlsOptions'))
  assert.deepEqual([...members].filter((n) => !mentioned(n)), [])
})

/** The property names of an interface in src/types.ts, with those of the interfaces it extends there. */
function interfaceKeys (name: string): string[] {
  const source = ts.createSourceFile('types.ts', readFileSync(root + 'src/types.ts', 'utf8'), ts.ScriptTarget.ES2022)
  const keys: string[] = []
  ts.forEachChild(source, (node) => {
    if (!ts.isInterfaceDeclaration(node) || node.name.text !== name) return
    for (const clause of node.heritageClauses ?? []) {
      for (const t of clause.types) if (ts.isIdentifier(t.expression)) keys.push(...interfaceKeys(t.expression.text))
    }
    for (const m of node.members) if (m.name !== undefined && ts.isIdentifier(m.name)) keys.push(m.name.text)
  })
  return keys
}

test('every MuxOptions option and every route field is in a README table', () => {
  const rows = readme.split('\n').filter((l) => l.startsWith('|')).join('\n')
  const options = interfaceKeys('MuxOptions')
  assert.ok(options.includes('tls') && options.includes('keepAliveTimeout'))
  assert.deepEqual(options.filter((k) => !rows.includes('`' + k + '`')), [])
  const fields = [...interfaceKeys('HandlerRoute'), ...interfaceKeys('ProxyRoute'), ...interfaceKeys('ProxyTarget').map((k) => `proxy.${k}`)]
  assert.ok(fields.includes('idleTimeout') && fields.includes('proxy.port'))
  assert.deepEqual(fields.filter((k) => !rows.includes('`' + k + '`')), [])
})
