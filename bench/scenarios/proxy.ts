/**
 * 5. A proxy route (`app.tcp('ssh', { match: 'ssh', proxy })` on portmux's TLS port) vs
 *    going direct to the upstream, sslh-select, HAProxy `mode tcp`, nginx `stream` and the
 *    naive Node pipe proxy. Target: ≥ sslh on bulk throughput and on connections/s.
 *
 * Every proxy runs alone on the server CPU; the upstream and the client share the load
 * CPU. Clients start with an SSH-like hello line (so that sslh's and portmux's SSH probes
 * decide at once; HAProxy and nginx forward without looking).
 *
 * - bulk: one connection sends the hello line and N bytes in 256 KiB chunks; the sink
 *   answers `OK` when all have arrived; MB/s (10^6 B/s) and proxy CPU-seconds per GiB;
 * - connection cycles (connect, hello, the upstream's banner, close), back to back on one
 *   connection at a time and on 32 at once; cycles/s, failures counted apart;
 * - the same cycles at a fixed 1,000/s: cycles per proxy CPU-second.
 */
import type { Ctx, Row, Scenario } from '../lib/context.js'
import { busyNote, compare, cpuDuring, pause, series, startAll, stopAll, warn } from '../lib/measure.js'
import { stop } from '../lib/proc.js'
import { alternate } from '../lib/rounds.js'
import { startProxy, startUpstream, type ProxyName, type Running } from '../lib/servers.js'
import { client } from '../lib/tools.js'
import { fmt } from '../lib/stats.js'

export const PROXIES: ProxyName[] = ['portmux', 'sslh-select', 'haproxy', 'nginx', 'node-pipe']
const PEERS = ['sslh-select', 'haproxy', 'nginx', 'node-pipe', 'direct']
const RATE = 1000
const GIB = 1 << 30

export function label (name: string): string {
  switch (name) {
    case 'nginx': return 'nginx stream'
    case 'haproxy': return 'haproxy mode tcp'
    case 'node-pipe': return 'naive Node pipe'
    default: return name
  }
}

export async function startProxies (ctx: Ctx, upstream: number, tag: string): Promise<Map<string, Running>> {
  const profile = ctx.profileDir !== null
  return await startAll(PROXIES.map((p) => [p, async () => await startProxy(ctx, p, upstream, {}, profile, tag)]))
}

export const proxy: Scenario = {
  id: 'proxy',
  title: '5. Proxy route: bulk throughput and connection cycles',
  method: 'portmux route `{ match: \'ssh\', proxy }` on its TLS port (Fastify + serverFactory) vs sslh-select (`-F` temp config, ssh probe, foreground), HAProxy `mode tcp` (`nbthread 1`, `-db`), nginx `stream` (one process), the naive Node `pipe` proxy and direct. Proxies on the server CPU, the upstream (bench/servers/upstream.ts) and the client on the load CPU. Bulk: one connection, hello line + N bytes in 256 KiB chunks, the sink answers `OK` once all arrived; MB/s and proxy CPU-s per GiB. Cycles: connect, hello line, read the upstream\'s banner, close; back to back with 1 and 32 at once (cycles/s; failures counted apart), and at a fixed 1,000/s (cycles per proxy CPU-second).',
  run: async (ctx) => {
    const notes: string[] = []
    const plan = ctx.plan
    const rows: Row[] = []
    const figures: Record<string, number> = {}
    const raw: Record<string, unknown> = {}
    const upstream = await startUpstream(ctx)
    const contenders = ['direct', ...PROXIES]
    try {
      // ---- bulk ---------------------------------------------------------------
      let proxies = await startProxies(ctx, upstream.ports.sink, 'bulk')
      const portFor = (m: Map<string, Running>, name: string, role: string): number => name === 'direct' ? upstream.ports[role] : m.get(name)?.port ?? 0
      const pidOf = (m: Map<string, Running>, name: string): number | null => name === 'direct' ? null : m.get(name)?.child.pid ?? null
      try {
        const warmBytes = 64 << 20
        for (const name of contenders) await client(ctx, { mode: 'bulk', port: portFor(proxies, name, 'sink'), bytes: warmBytes })
        ctx.log(`  bulk: ${fmt(plan.bulkBytes / (1 << 20))} MiB, ${plan.bulkRounds} rounds`)
        const bulk = await alternate(contenders, plan.bulkRounds, async (name) => {
          const { result, cpu, serverBusy, loadBusy } = await cpuDuring(pidOf(proxies, name), async () => await client(ctx, { mode: 'bulk', port: portFor(proxies, name, 'sink'), bytes: plan.bulkBytes }))
          await pause()
          return { mbps: result.mbps ?? NaN, cpuPerGiB: cpu / (plan.bulkBytes / GIB), serverBusy, loadBusy }
        }, ctx.log)
        raw.bulk = Object.fromEntries(bulk)
        for (const peer of PEERS) {
          rows.push(compare({
            item: '5',
            what: `Proxy bulk ${fmt(plan.bulkBytes / (1 << 20))} MiB, one connection`,
            figure: 'MB/s',
            subject: 'portmux',
            peer: label(peer),
            a: series(bulk, 'portmux', (r) => r.mbps),
            b: series(bulk, peer, (r) => r.mbps),
            better: 'higher',
            target: peer === 'sslh-select' ? 1 : undefined,
            note: busyNote(bulk, ['portmux', peer])
          }))
        }
        for (const peer of PEERS.filter((p) => p !== 'direct')) {
          rows.push(compare({
            item: '5',
            what: 'Proxy bulk, proxy CPU per GiB',
            figure: 'CPU-s/GiB',
            subject: 'portmux',
            peer: label(peer),
            a: series(bulk, 'portmux', (r) => r.cpuPerGiB),
            b: series(bulk, peer, (r) => r.cpuPerGiB),
            better: 'lower',
            digits: 2
          }))
        }
      } finally {
        await stopAll(proxies)
      }

      // ---- connection cycles -------------------------------------------------
      proxies = await startProxies(ctx, upstream.ports.banner, 'cycles')
      try {
        for (const name of contenders) await client(ctx, { mode: 'banner', port: portFor(proxies, name, 'banner'), concurrency: 8, duration: 1 })
        // Profiling: one load shape only (32 at once), so that the profile is about it.
        for (const concurrency of ctx.profileDir === null ? [1, 32] : [32]) {
          ctx.log(`  connection cycles, ${concurrency} at once, ${plan.cycleSeconds} s, ${plan.bulkRounds} rounds`)
          const cyc = await alternate(contenders, plan.bulkRounds, async (name) => {
            const { result, cpu, serverBusy, loadBusy } = await cpuDuring(pidOf(proxies, name), async () => await client(ctx, { mode: 'banner', port: portFor(proxies, name, 'banner'), concurrency, duration: plan.cycleSeconds, timeoutMs: 3000 }))
            await pause(500)
            return { rate: result.rate, failedPct: 100 * result.failed / Math.max(1, result.completed + result.failed), cpuUsPerConn: cpu / result.completed * 1e6, serverBusy, loadBusy }
          }, ctx.log)
          raw[`cycles-c${concurrency}`] = Object.fromEntries(cyc)
          for (const peer of PEERS) {
            const fa = series(cyc, 'portmux', (r) => r.failedPct)
            const fb = series(cyc, peer, (r) => r.failedPct)
            rows.push(compare({
              item: '5',
              what: `Proxy connect + banner + close, ${concurrency === 1 ? 'sequential' : `${concurrency} concurrent`} (${plan.cycleSeconds} s)`,
              figure: 'cycles/s',
              subject: 'portmux',
              peer: label(peer),
              a: series(cyc, 'portmux', (r) => r.rate),
              b: series(cyc, peer, (r) => r.rate),
              better: 'higher',
              target: peer === 'sslh-select' ? 1 : undefined,
              note: (fa.some((x) => x > 0) || fb.some((x) => x > 0) ? `failed %: ${fa.map((x) => x.toFixed(1)).join('/')} vs ${fb.map((x) => x.toFixed(1)).join('/')}; ` : '') + busyNote(cyc, ['portmux', peer])
            }))
          }
        }

        if (ctx.profileDir !== null) return { rows, notes, raw, figures }
        ctx.log(`  connection cycles at ${RATE}/s, ${plan.cycleSeconds} s, ${plan.bulkRounds} rounds`)
        const fixed = await alternate(PROXIES, plan.bulkRounds, async (name) => {
          const { result, cpu } = await cpuDuring(pidOf(proxies, name), async () => await client(ctx, { mode: 'banner', port: portFor(proxies, name, 'banner'), rate: RATE, duration: plan.cycleSeconds, maxInFlight: 128, timeoutMs: 3000 }))
          if (result.failed > 0 || result.missed > 0) warn(ctx, `${name}: ${result.failed} failed, ${result.missed} missed at ${RATE}/s (${JSON.stringify(result.errors)})`, notes)
          await pause(500)
          return { perCpuSecond: result.completed / cpu, cpuUsPerConn: cpu / result.completed * 1e6 }
        }, ctx.log)
        raw.cyclesFixedRate = Object.fromEntries(fixed)
        for (const peer of PEERS.filter((p) => p !== 'direct')) {
          rows.push(compare({
            item: '5',
            what: `Proxy connect + banner + close, proxy CPU at ${RATE}/s offered (${plan.cycleSeconds} s)`,
            figure: 'cycles per proxy CPU-second',
            subject: 'portmux',
            peer: label(peer),
            a: series(fixed, 'portmux', (r) => r.perCpuSecond),
            b: series(fixed, peer, (r) => r.perCpuSecond),
            better: 'higher',
            target: peer === 'sslh-select' ? 1 : undefined,
            note: `proxy CPU per connection (µs): ${series(fixed, 'portmux', (r) => r.cpuUsPerConn).map((x) => x.toFixed(0)).join('/')} vs ${series(fixed, peer, (r) => r.cpuUsPerConn).map((x) => x.toFixed(0)).join('/')}`
          }))
        }
        const cpu = series(fixed, 'portmux', (r) => r.cpuUsPerConn).sort((x, y) => x - y)
        figures['portmux.cpuUsPerConn'] = cpu.length > 0 ? cpu[cpu.length >> 1] : NaN
      } finally {
        await stopAll(proxies)
      }
    } finally {
      await stop(upstream.child)
    }
    return { rows, notes, raw, figures }
  }
}
