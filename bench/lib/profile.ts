/**
 * Summary of a V8 `.cpuprofile` (from `node --cpu-prof`): where the samples fall by area
 * (portmux, Fastify and other packages, Node internals, native/GC/idle), the functions with
 * the most self samples, and the portmux functions with the most inclusive samples.
 *
 *     node build/bench/lib/profile.js file.cpuprofile [...]
 */
import { readFileSync } from 'node:fs'
import { basename } from 'node:path'
import { fileURLToPath } from 'node:url'

interface CallFrame { functionName: string, url: string, lineNumber: number }
interface ProfileNode { id: number, callFrame: CallFrame, hitCount?: number, children?: number[] }
interface CpuProfile { nodes: ProfileNode[], samples?: number[], startTime: number, endTime: number }

function key (f: CallFrame): string {
  const name = f.functionName === '' ? '(anonymous)' : f.functionName
  if (f.url === '') return name
  const url = f.url.replace(/^file:\/\//, '').replace(/^.*\/(build|node_modules)\//, '$1/')
  return `${name}  ${url}:${f.lineNumber + 1}`
}

export function area (f: CallFrame): string {
  const u = f.url
  if (u.includes('/build/src/') || u.includes('/dist/')) return 'portmux (src/)'
  if (u.includes('/build/bench/')) return 'bench server code'
  if (u.includes('/node_modules/')) {
    const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(u)
    return `package ${m?.[1] ?? '?'}`
  }
  if (u.startsWith('node:')) {
    const m = /^node:(?:internal\/)?([^/]+)/.exec(u)
    return `node:${m?.[1] ?? '?'}`
  }
  if (f.functionName === '(idle)') return '(idle)'
  if (f.functionName === '(garbage collector)') return '(garbage collector)'
  if (f.functionName === '(program)') return '(program: native, not attributed)'
  return 'native/builtin (no url)'
}

export function summarize (file: string, top = 30): string {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile
  const byId = new Map<number, ProfileNode>(p.nodes.map((n) => [n.id, n]))
  const self = new Map<number, number>()
  if (p.samples !== undefined && p.samples.length > 0) {
    for (const s of p.samples) self.set(s, (self.get(s) ?? 0) + 1)
  } else {
    for (const n of p.nodes) self.set(n.id, n.hitCount ?? 0)
  }
  let total = 0
  let idle = 0
  for (const [id, c] of self) {
    total += c
    if (byId.get(id)?.callFrame.functionName === '(idle)') idle += c
  }
  const busy = Math.max(1, total - idle)

  const areas = new Map<string, number>()
  const selfByFn = new Map<string, number>()
  for (const [id, c] of self) {
    const f = byId.get(id)?.callFrame
    if (f === undefined || f.functionName === '(idle)') continue
    areas.set(area(f), (areas.get(area(f)) ?? 0) + c)
    selfByFn.set(key(f), (selfByFn.get(key(f)) ?? 0) + c)
  }

  // Inclusive samples per function, each function counted once per stack.
  const inclusive = new Map<string, number>()
  const parentOf = new Map<number, number>()
  for (const n of p.nodes) for (const c of n.children ?? []) parentOf.set(c, n.id)
  for (const [id, c] of self) {
    if (byId.get(id)?.callFrame.functionName === '(idle)') continue
    const seen = new Set<string>()
    for (let cur: number | undefined = id; cur !== undefined; cur = parentOf.get(cur)) {
      const f = byId.get(cur)?.callFrame
      if (f === undefined) break
      const k = key(f)
      if (seen.has(k)) continue
      seen.add(k)
      inclusive.set(k, (inclusive.get(k) ?? 0) + c)
    }
  }

  const pct = (c: number): string => `${(100 * c / busy).toFixed(1).padStart(5)} %`
  const lines: string[] = []
  lines.push(`${basename(file)}: ${total} samples over ${((p.endTime - p.startTime) / 1e6).toFixed(1)} s, ${idle} idle; percentages are of the ${busy} busy samples`)
  lines.push('', 'by area (self samples):')
  for (const [a, c] of [...areas].sort((x, y) => y[1] - x[1])) lines.push(`  ${pct(c)}  ${a}`)
  lines.push('', `top ${top} functions by self samples:`)
  for (const [k, c] of [...selfByFn].sort((x, y) => y[1] - x[1]).slice(0, top)) lines.push(`  ${pct(c)}  ${k}`)
  lines.push('', 'portmux functions by inclusive samples (self + what they call):')
  for (const [k, c] of [...inclusive].filter(([k]) => k.includes('build/src/')).sort((x, y) => y[1] - x[1]).slice(0, 25)) lines.push(`  ${pct(c)}  ${k}`)
  return lines.join('\n')
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  for (const f of process.argv.slice(2)) console.log(summarize(f) + '\n')
}
