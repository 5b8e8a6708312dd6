/**
 * `npm run bench`: the benchmark orchestrator. Installs what it needs (Debian packages,
 * npm packages into bench/.deps), makes an ECDSA P-256 certificate, runs every scenario of
 * bench/scenarios in turn — servers in their own pinned processes, contenders in
 * alternating rounds — and writes BENCHMARKS.md with every figure as a ratio.
 *
 *     node build/bench/run.js [--quick] [--only=id,id] [--skip-install] [--out=FILE] [--profile]
 *
 * --quick         3 rounds (alternating and same-instant), 2-second runs, 256 MiB bulk: a
 *                 smoke test of a few minutes.
 *                 Writes bench/results/BENCHMARKS.quick.md unless --out says otherwise.
 * --only=…        scenario ids: https-keepalive, h2-keepalive, plain-keepalive, tls-handshake,
 *                 redirect, proxy, proxy-same-cpu, proxy-latency, memory, sniffers.
 * --skip-install  use what is installed.
 * --profile       one round of the chosen scenarios' saturating loads with the Node servers
 *                 under `--cpu-prof`; writes profile summaries to bench/results/profiles/
 *                 instead of a report.
 *
 * Everything is bounded: a watchdog ends the run (and every child) after 75 minutes
 * (20 with --quick).
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { FULL, QUICK, type Ctx, type Plan, type Scenario, type ScenarioResult } from './lib/context.js'
import { environment, loadAverage } from './lib/env.js'
import { installApt, installNpm } from './lib/install.js'
import { setLoadCpu } from './lib/measure.js'
import { canPin, killAll, liveCount } from './lib/proc.js'
import { summarize } from './lib/profile.js'
import { renderReport } from './lib/report.js'
import { h2KeepAlive } from './scenarios/h2-keepalive.js'
import { httpsKeepAlive } from './scenarios/https-keepalive.js'
import { memory } from './scenarios/memory.js'
import { plainKeepAlive } from './scenarios/plain-keepalive.js'
import { proxyLatency } from './scenarios/proxy-latency.js'
import { proxy } from './scenarios/proxy.js'
import { proxySameCpu } from './scenarios/proxy-same-cpu.js'
import { redirect } from './scenarios/redirect.js'
import { sniffers } from './scenarios/sniffers.js'
import { tlsHandshake } from './scenarios/tls-handshake.js'
import { arg } from './lib/args.js'

const SCENARIOS: Scenario[] = [httpsKeepAlive, h2KeepAlive, plainKeepAlive, tlsHandshake, redirect, proxy, proxySameCpu, proxyLatency, memory, sniffers]

const started = new Date()
const t0 = Date.now()
function log (msg: string): void {
  const s = ((Date.now() - t0) / 1000).toFixed(0).padStart(5)
  process.stdout.write(`[${s}s] ${msg}\n`)
}

let tmp: string | null = null
function cleanup (): void {
  killAll()
  if (tmp !== null) {
    try { rmSync(tmp, { recursive: true, force: true }) } catch {}
    tmp = null
  }
}
process.on('exit', cleanup)
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    log(`${sig}: stopping every child`)
    cleanup()
    process.exit(130)
  })
}

function makeCertificate (dir: string): { key: string, cert: string } {
  const key = join(dir, 'key.pem')
  const cert = join(dir, 'cert.pem')
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', key, '-out', cert, '-days', '7', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { stdio: 'ignore' })
  return { key, cert }
}

async function main (): Promise<void> {
  const quick = arg('quick') !== undefined
  const profiling = arg('profile') !== undefined
  const only = arg('only')?.split(',').map((s) => s.trim()).filter((s) => s !== '')
  const plan: Plan = { ...(quick ? QUICK : FULL) }
  if (profiling) Object.assign(plan, { rounds: 1, bulkRounds: 1, memRounds: 1, satSeconds: Math.max(plan.satSeconds, 5), bulkBytes: 1 << 30 })

  const watchdog = setTimeout(() => {
    log('watchdog: the run took too long; stopping every child')
    cleanup()
    process.exit(3)
  }, (quick ? 20 : 75) * 60_000)
  watchdog.unref()

  const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')
  const buildBench = join(root, 'build', 'bench')
  const depsDir = join(root, 'bench', '.deps')
  const resultsDir = join(root, 'bench', 'results')
  mkdirSync(resultsDir, { recursive: true })

  const selected = only === undefined ? SCENARIOS : SCENARIOS.filter((s) => only.includes(s.id))
  if (only !== undefined && selected.length !== only.length) {
    throw new Error(`unknown scenario in --only; known: ${SCENARIOS.map((s) => s.id).join(', ')}`)
  }

  if (arg('skip-install') === undefined) {
    installApt(log)
    installNpm(depsDir, log)
  }

  tmp = mkdtempSync(join(os.tmpdir(), 'portmux-bench-'))
  const tls = makeCertificate(tmp)
  const pinned = canPin()
  const profileDir = profiling ? join(resultsDir, 'profiles', started.toISOString().replace(/[:.]/g, '-')) : null
  if (profileDir !== null) mkdirSync(profileDir, { recursive: true })
  const ctx: Ctx = {
    plan,
    root,
    buildBench,
    depsDir,
    tmp,
    tls,
    cpu: pinned ? { server: '1', load: '0' } : { server: null, load: null },
    profileDir,
    log,
    results: new Map()
  }
  setLoadCpu(ctx.cpu.load)
  const env = environment(root, depsDir)
  log(`${quick ? 'QUICK (smoke) run' : 'full run'}${profiling ? ', profiling' : ''}: ${selected.map((s) => s.id).join(', ')}`)
  log(`machine: ${env.nproc} × ${env.cpuModel}, ${env.memGiB.toFixed(1)} GiB; node ${env.node}; load ${env.loadBefore}; pinning ${pinned ? 'servers CPU 1, load CPU 0' : 'none (taskset unavailable or 1 CPU)'}`)

  const results: ScenarioResult[] = []
  const failures: Array<{ id: string, title: string, error: string }> = []
  for (const s of selected) {
    log(`${s.title}`)
    const st = Date.now()
    try {
      const r = await s.run(ctx)
      const result: ScenarioResult = { id: s.id, title: s.title, method: s.method, seconds: (Date.now() - st) / 1000, ...r }
      results.push(result)
      ctx.results.set(s.id, result)
      for (const row of r.rows) {
        const ratio = row.ratio === null ? 'n/a' : row.ratio.median.toFixed(row.item === '8' ? 4 : 3)
        log(`  => ${row.what} | ${row.figure}: ${row.subject} ${row.subjectValue} vs ${row.peer} ${row.peerValue} → ${ratio}`)
      }
    } catch (err) {
      const e = err as Error
      log(`  FAILED: ${e.stack ?? String(e)}`)
      failures.push({ id: s.id, title: s.title, error: e.stack ?? String(e) })
    }
    if (liveCount() > 0) {
      log(`  (${liveCount()} children still running after ${s.id}; killing them)`)
      killAll()
    }
  }

  const stamp = started.toISOString().replace(/[:.]/g, '-')
  if (profileDir !== null) {
    const files = readdirSync(profileDir).filter((f) => f.endsWith('.cpuprofile'))
    for (const f of files) {
      const text = summarize(join(profileDir, f))
      writeFileSync(join(profileDir, f.replace(/\.cpuprofile$/, '.txt')), text + '\n')
      log(`profile ${f}:\n${text}\n`)
    }
    log(`profiles in ${relative(root, profileDir)}`)
  } else {
    const rawFile = join(resultsDir, `run-${quick ? 'quick-' : ''}${stamp}.json`)
    writeFileSync(rawFile, JSON.stringify({ plan, env, results, failures }, null, 2))
    const out = arg('out') ?? (quick ? join(resultsDir, 'BENCHMARKS.quick.md') : join(root, 'BENCHMARKS.md'))
    const cmd = `node build/bench/run.js${process.argv.slice(2).length > 0 ? ' ' + process.argv.slice(2).join(' ') : ''}`
    writeFileSync(out, renderReport({
      plan,
      env,
      loadAfter: loadAverage(),
      started,
      seconds: (Date.now() - t0) / 1000,
      pinning: pinned ? 'servers and proxies `taskset -c 1`; load tools, bench client and upstreams `taskset -c 0`' : 'none (taskset unavailable)',
      results,
      failures,
      rawFile: relative(root, rawFile),
      command: cmd
    }))
    log(`wrote ${relative(root, out)} and ${relative(root, rawFile)}`)
  }
  clearTimeout(watchdog)
  cleanup()
  if (failures.length > 0) process.exitCode = 1
}

main().catch((err: unknown) => {
  log(`fatal: ${(err as Error).stack ?? String(err)}`)
  cleanup()
  process.exit(2)
})
