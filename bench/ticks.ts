/**
 * Check: `process.nextTick` stays a small share of a portmux server's CPU profile under
 * HTTP keep-alive load (see src/core/tick-maps.ts and bench/ANALYSIS.md, "process.nextTick
 * under keep-alive load").
 *
 * Each server is a child process built as a user would build it (Fastify with
 * `serverFactory({ tls, http: 'serve' })`, `await app.register(portmux)`, then `listen`),
 * run with `--cpu-prof`. Before it says it is ready it opens, on purpose, the gap that left
 * nextTick's stores megamorphic: nextTick is called often enough for V8 to give it feedback,
 * then a full GC runs while no tick object is alive (what the first full GC after a heavy
 * startup, or the memory reducer's once the process idles, does at a moment nobody chooses).
 * Then `h2load --h1` loads it at a fixed rate, once over HTTPS and once in plaintext on the
 * same TLS port, and the share of the samples taken during the load that have nextTick on
 * the stack is read from the profile. Exits 1 when a share is above the limit.
 *
 *   npm run build && node build/bench/ticks.js [--seconds=8] [--rate=100] [--clients=16] [--max=3] [--natural] [--keep=DIR]
 *
 *   --natural   no provoked GC: whatever the startup does by itself
 *   --keep=DIR  write the profiles to DIR (for bench/lib/profile.js) instead of a scratch folder
 *
 * Needs h2load (Debian nghttp2-client). Traffic goes to 127.0.0.1 only; every run is bounded.
 */
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import Fastify from 'fastify'
import portmux, { devCertificate, serverFactory } from '../src/index.js'
import { BODY, exitOnSignal, portOf, ready } from './lib/child.js'
import { canPin, killAll, run, start, stop, waitForLine } from './lib/proc.js'
import { arg, num } from './lib/args.js'

const self = fileURLToPath(import.meta.url)

// ---- --role=server: the app, as a user would write it ----------------------------------

function noop (): void {}

async function serverRole (): Promise<void> {
  exitOnSignal()
  const app = Fastify({ logger: false, serverFactory: serverFactory({ tls: await devCertificate(), http: 'serve' }) })
  await app.register(portmux)
  app.get('/', async () => BODY)
  await app.listen({ port: 0, host: '127.0.0.1' })
  if (arg('natural') === undefined) {
    const gc = (globalThis as { gc?: () => void }).gc
    if (gc === undefined) throw new Error('the server role needs --expose-gc')
    // Enough calls for V8 to allocate nextTick's feedback (a few dozen), then a full GC
    // with no tick object alive: from a timer callback, where the tick queue is empty and
    // no frame of Node's tick loop (whose registers may still hold the last tick object)
    // is on the stack.
    for (let i = 0; i < 64; i++) process.nextTick(noop, i)
    await new Promise<void>((resolve) => {
      setTimeout(() => {
        gc()
        resolve()
      }, 100)
    })
  }
  ready({ port: portOf(app.server) })
}

// ---- the profile ------------------------------------------------------------------------

interface CallFrame { functionName: string, url: string }
interface ProfileNode { id: number, callFrame: CallFrame, children?: number[] }
interface CpuProfile { nodes: ProfileNode[], samples: number[], timeDeltas: number[], startTime: number }

/** The monotonic clock of V8's profiles and of `process.hrtime`, in µs. */
function nowUs (): number {
  return Number(process.hrtime.bigint() / 1000n)
}

/**
 * Busy samples taken between `from` and `to` (µs, `process.hrtime`'s clock, which is the
 * profile's), and those with Node's own `nextTick` anywhere on the stack.
 */
export function nextTickShare (file: string, from = 0, to = Infinity): { busy: number, nextTick: number } {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile
  const byId = new Map(p.nodes.map((n) => [n.id, n]))
  const parent = new Map<number, number>()
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const inTick = new Map<number, boolean>()
  const under = (id: number): boolean => {
    const known = inTick.get(id)
    if (known !== undefined) return known
    const f = byId.get(id)?.callFrame
    const up = parent.get(id)
    const v = f !== undefined && ((f.functionName === 'nextTick' && f.url === 'node:internal/process/task_queues') || (up !== undefined && under(up)))
    inTick.set(id, v)
    return v
  }
  let busy = 0
  let nextTick = 0
  let t = p.startTime
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i] ?? 0
    if (t < from || t > to) continue
    const s = p.samples[i]
    if (byId.get(s)?.callFrame.functionName === '(idle)') continue
    busy++
    if (under(s)) nextTick++
  }
  return { busy, nextTick }
}

// ---- the check ---------------------------------------------------------------------------

async function measure (scheme: 'https' | 'http', dir: string, o: { seconds: number, rate: number, clients: number, pinned: boolean }): Promise<{ share: number, busy: number, requests: number }> {
  const name = `ticks-${scheme}.cpuprofile`
  const flags = ['--expose-gc', '--cpu-prof', '--cpu-prof-interval=100', `--cpu-prof-dir=${dir}`, `--cpu-prof-name=${name}`]
  const roleArgs = ['--role=server', ...(arg('natural') !== undefined ? ['--natural'] : [])]
  const child = await start(`server-${scheme}`, process.execPath, [...flags, self, ...roleArgs], {
    cpu: o.pinned ? '1' : null,
    limitSeconds: o.seconds + 120,
    env: { ...process.env, NODE_ENV: 'production' }
  })
  try {
    const m = await waitForLine(child, /^READY (.*)$/, 30_000)
    const port = (JSON.parse(m[1]) as { port: number }).port
    const from = nowUs()
    const r = await run('h2load', ['--h1', '-t', '1', '-c', String(o.clients), '--rps', String(o.rate), '-D', String(o.seconds), `${scheme}://127.0.0.1:${port}/`], {
      cpu: o.pinned ? '0' : null,
      timeoutSeconds: o.seconds + 30
    })
    const done = /(\d+) succeeded, (\d+) failed/.exec(r.stdout)
    const to = nowUs()
    if (r.code !== 0 || done === null) throw new Error(`h2load failed (${String(r.code)}): ${r.stdout}\n${r.stderr}`)
    await stop(child)
    const file = join(dir, name)
    if (!readdirSync(dir).includes(name)) throw new Error(`no profile from the ${scheme} server; stderr: ${child.stderrTail()}`)
    const { busy, nextTick } = nextTickShare(file, from, to)
    return { share: busy === 0 ? 0 : 100 * nextTick / busy, busy, requests: Number(done[1]) }
  } finally {
    await stop(child)
  }
}

async function main (): Promise<void> {
  const max = num('max', 3)
  const o = { seconds: num('seconds', 8), rate: num('rate', 100), clients: num('clients', 16), pinned: canPin() }
  const keep = arg('keep')
  const dir = keep !== undefined && keep !== '' ? keep : mkdtempSync(join(tmpdir(), 'portmux-ticks-'))
  mkdirSync(dir, { recursive: true })
  let failed = false
  try {
    console.log(`nextTick share of busy CPU samples, portmux under h2load --h1 -c${o.clients} --rps ${o.rate} for ${o.seconds} s` +
      `${arg('natural') !== undefined ? '' : ', after a full GC that once left nextTick megamorphic'}; limit ${max} %`)
    for (const scheme of ['https', 'http'] as const) {
      const r = await measure(scheme, dir, o)
      const ok = r.share <= max
      failed ||= !ok
      console.log(`  ${scheme.padEnd(5)}  ${r.share.toFixed(2).padStart(6)} %  of ${r.busy} busy samples, ${r.requests} requests  ${ok ? 'ok' : 'FAIL'}`)
    }
  } finally {
    if (dir !== keep) rmSync(dir, { recursive: true, force: true })
  }
  console.log(failed ? 'FAIL: nextTick above the limit' : 'ok')
  process.exitCode = failed ? 1 : 0
}

process.on('exit', killAll)
if (arg('role') === 'server') {
  await serverRole()
} else {
  await main()
}
