/**
 * 5b. A proxy route against the bare Node pipe (`client.pipe(upstream); upstream.pipe(client)`),
 *     all pinned to the same core and loaded at the same instant by identical clients from
 *     the other core (bench/lib/same-cpu.ts). The route runs twice: under Fastify (the
 *     subject) and in portmux without Fastify (`createServer`), which tells the route's own
 *     cost from what the larger Fastify process adds (bulk and memory only: at the short
 *     and first-byte rates a third server would saturate the core). Per round, one after
 *     another, each load on all at once:
 *
 * - short connections (connect, hello line, the upstream's banner, close) at a fixed rate:
 *   CPU per connection (schedstat ns);
 * - the same, 32 at once back to back: cycles/s (on a shared core, the efficiency ratio) and
 *   failures;
 * - bulk, one connection each, flat out and at a fixed 100 MB/s: CPU per MiB;
 * - bulk the other way (upstream → client), one connection each, flat out: CPU per MiB;
 * - first byte (connect → first byte echoed by the upstream) at a fixed rate, with a direct
 *   client to the upstream at the same instant: the latency each proxy adds;
 * - then, one at a time, RSS per open proxied connection.
 */
import { join } from 'node:path'
import type { Ctx, Row, Scenario } from '../lib/context.js'
import { compare, pause, series, stopAll, warn } from '../lib/measure.js'
import { rssKiB, fdCount, run, sleep, stop } from '../lib/proc.js'
import { together } from '../lib/same-cpu.js'
import { startNode, startProxy, startUpstream, type Running } from '../lib/servers.js'
import { median } from '../lib/stats.js'
import { client, holdConnections, release } from '../lib/tools.js'
import type { ClientResult } from '../lib/client.js'

const SHORT_RATE = 500
const ECHO_RATE = 300
const BULK_RATE = 100
const MiB = 1 << 20
const HELD = 3000

interface Round {
  shortCpuUs: number
  c32Rate: number
  c32FailedPct: number
  bulkCpuNsPerMiB: number
  bulkMBps: number
  pacedCpuNsPerMiB: number
  downCpuNsPerMiB: number
  downMBps: number
  p50AddedUs: number
  p99AddedUs: number
  rssKiBPerConn: number
}

const CONTENDERS = ['portmux', 'portmux-node', 'node-pipe'] as const
type Contender = typeof CONTENDERS[number]
/**
 * Short connections and first byte: the subject and the pipe only. A third server at those
 * rates (and the direct client) would saturate the shared core and turn CPU per connection
 * and latency into queueing figures.
 */
const PAIR = ['portmux', 'node-pipe'] as const

async function startContender (ctx: Ctx, name: Contender, upstream: number, tag: string): Promise<Running> {
  if (name !== 'portmux-node') return await startProxy(ctx, name, upstream, {}, false, tag)
  return await startNode(ctx, `portmux-node-${tag}`, 'portmux-node-proxy.js', { tls: ctx.tls, upstream })
}

/** One download through `port` (the upstream's `source` listener behind it), from the load CPU. */
async function download (ctx: Ctx, port: number, bytes: number): Promise<{ mbps: number }> {
  const r = await run(process.execPath, [join(ctx.buildBench, 'scenarios', 'proxy-download-client.js'), JSON.stringify({ port, bytes })], { cpu: ctx.cpu.load, timeoutSeconds: 180 })
  const line = r.stdout.trim().split('\n').pop() ?? ''
  let parsed: { mbps?: number, error?: string } | undefined
  try { parsed = JSON.parse(line) as { mbps?: number, error?: string } } catch {}
  if (parsed?.mbps === undefined) throw new Error(`download client failed (${String(r.code)}): ${parsed?.error ?? line}\n${r.stderr.slice(-1000)}`)
  return { mbps: parsed.mbps }
}

export const proxySameCpu: Scenario = {
  id: 'proxy-same-cpu',
  title: '5b. Proxy route vs the bare Node pipe, same core, same instant',
  method: `portmux (Fastify + serverFactory, route \`{ match: 'ssh', proxy }\` on its TLS port), the same route in portmux without Fastify (\`createServer\`, bench/servers/portmux-node-proxy.ts) and the bare Node pipe proxy (bench/servers/node-baseline.ts, \`pipe\` mode) all pinned to the server CPU and loaded at the same instant (the short-connection and first-byte loads on portmux and the pipe only) by identical bench clients on the load CPU (with the upstream). CPU is the processes' time on CPU in ns from /proc/<pid>/task/*/schedstat over the common window. Per round: short connections (connect, hello line, banner, close) at ${SHORT_RATE}/s each for the cycle time → CPU per connection; the same 32 at once back to back → cycles/s and failures; one bulk connection each, flat out (¼ of the bulk size) and paced at ${BULK_RATE} MB/s for the cycle time → CPU per MiB; one download each (upstream → client, the upstream's \`source\` listener, ¼ of the bulk size) → CPU per MiB; first byte echoed by the upstream at ${ECHO_RATE} new connections/s each, with a direct client at the same instant → p50/p99 added over direct; then, one proxy at a time, RSS per open proxied connection (${HELD} held, hello echoed). Ratios are medians of per-round ratios portmux ÷ pipe (and portmux without Fastify ÷ pipe).`,
  run: async (ctx) => {
    const notes: string[] = []
    const plan = ctx.plan
    const rows: Row[] = []
    const upstream = await startUpstream(ctx)
    const out = new Map<string, Round[]>(CONTENDERS.map((c) => [c, []]))
    try {
      const bulkBytes = Math.max(64 * MiB, plan.bulkBytes / 4)
      const pacedBytes = BULK_RATE * 1e6 * plan.cycleSeconds
      for (let round = 0; round < plan.bulkRounds; round++) {
        const servers = new Map<string, Running>()
        for (const name of PAIR) servers.set(name, await startContender(ctx, name, upstream.ports.banner, 'banner'))
        const echoServers = new Map<string, Running>()
        for (const name of CONTENDERS) echoServers.set(name, await startContender(ctx, name, upstream.ports.echo, 'echo'))
        const sinkServers = new Map<string, Running>()
        for (const name of CONTENDERS) sinkServers.set(name, await startContender(ctx, name, upstream.ports.sink, 'sink'))
        const sourceServers = new Map<string, Running>()
        for (const name of CONTENDERS) sourceServers.set(name, await startContender(ctx, name, upstream.ports.source, 'source'))
        try {
          const pid = (m: Map<string, Running>, n: string): number => m.get(n)?.child.pid ?? 0
          const port = (m: Map<string, Running>, n: string): number => m.get(n)?.port ?? 0
          // Warm up every server (JIT, pools) with a little of each load.
          await Promise.all(CONTENDERS.map(async (n) => {
            if (servers.has(n)) await client(ctx, { mode: 'banner', port: port(servers, n), concurrency: 8, duration: 1 })
            await client(ctx, { mode: 'echo', port: port(echoServers, n), rate: ECHO_RATE, duration: 1 })
            await client(ctx, { mode: 'bulk', port: port(sinkServers, n), bytes: 32 * MiB })
            await download(ctx, port(sourceServers, n), 32 * MiB)
          }))
          await pause(500)

          const short = await together(PAIR.map((n) => pid(servers, n)), PAIR.map((n) => async () => await client(ctx, { mode: 'banner', port: port(servers, n), rate: SHORT_RATE, duration: plan.cycleSeconds, maxInFlight: 128, timeoutMs: 3000 })))
          await pause(500)
          const c32 = await together(PAIR.map((n) => pid(servers, n)), PAIR.map((n) => async () => await client(ctx, { mode: 'banner', port: port(servers, n), concurrency: 32, duration: plan.cycleSeconds, timeoutMs: 3000 })))
          await pause(500)
          const bulk = await together(CONTENDERS.map((n) => pid(sinkServers, n)), CONTENDERS.map((n) => async () => await client(ctx, { mode: 'bulk', port: port(sinkServers, n), bytes: bulkBytes })))
          await pause(500)
          const paced = await together(CONTENDERS.map((n) => pid(sinkServers, n)), CONTENDERS.map((n) => async () => await client(ctx, { mode: 'bulk', port: port(sinkServers, n), bytes: pacedBytes, rate: BULK_RATE })))
          await pause(500)
          const down = await together(CONTENDERS.map((n) => pid(sourceServers, n)), CONTENDERS.map((n) => async () => await download(ctx, port(sourceServers, n), bulkBytes)))
          await pause(500)
          const echoLoads: Array<() => Promise<ClientResult>> = [...PAIR.map((n) => async () => await client(ctx, { mode: 'echo', port: port(echoServers, n), rate: ECHO_RATE, duration: plan.latencySeconds, maxInFlight: 64, timeoutMs: 3000 })),
            async () => await client(ctx, { mode: 'echo', port: upstream.ports.echo, rate: ECHO_RATE, duration: plan.latencySeconds, maxInFlight: 64, timeoutMs: 3000 })]
          const echo = await together([...PAIR.map((n) => pid(echoServers, n)), null], echoLoads)
          const direct = echo.results[PAIR.length]
          for (const [i, n] of CONTENDERS.entries()) {
            // Index in the pair's loads, -1 for a contender that had none.
            const j = (PAIR as readonly string[]).indexOf(n)
            const loads: Array<[string, ClientResult]> = [['paced', paced.results[i]]]
            if (j >= 0) loads.push(['short', short.results[j]], ['echo', echo.results[j]])
            for (const [what, r] of loads) {
              if (r.failed > 0 || r.missed > 0) warn(ctx, `${n} ${what}: ${r.failed} failed, ${r.missed} missed (${JSON.stringify(r.errors)})`, notes)
            }
            const r: Round = {
              shortCpuUs: j < 0 ? NaN : short.cpu[j] / 1e3 / short.results[j].completed,
              c32Rate: j < 0 ? NaN : c32.results[j].rate,
              c32FailedPct: j < 0 ? NaN : 100 * c32.results[j].failed / Math.max(1, c32.results[j].completed + c32.results[j].failed),
              bulkCpuNsPerMiB: bulk.cpu[i] / (bulkBytes / MiB),
              bulkMBps: bulk.results[i].mbps ?? NaN,
              pacedCpuNsPerMiB: paced.cpu[i] / (pacedBytes / MiB),
              downCpuNsPerMiB: down.cpu[i] / (bulkBytes / MiB),
              downMBps: down.results[i].mbps,
              p50AddedUs: j < 0 ? NaN : echo.results[j].latency.p50 - direct.latency.p50,
              p99AddedUs: j < 0 ? NaN : echo.results[j].latency.p99 - direct.latency.p99,
              rssKiBPerConn: NaN
            }
            out.get(n)?.push(r)
            ctx.log(`    round ${round + 1}/${plan.bulkRounds} ${n}: short ${r.shortCpuUs.toFixed(0)} µs/conn, c32 ${r.c32Rate.toFixed(0)}/s (${r.c32FailedPct.toFixed(1)} % failed), bulk ${(r.bulkCpuNsPerMiB / 1e3).toFixed(0)} µs/MiB ${r.bulkMBps.toFixed(0)} MB/s, paced ${(r.pacedCpuNsPerMiB / 1e3).toFixed(0)} µs/MiB, download ${(r.downCpuNsPerMiB / 1e3).toFixed(0)} µs/MiB ${r.downMBps.toFixed(0)} MB/s, first byte +${r.p50AddedUs.toFixed(0)}/+${r.p99AddedUs.toFixed(0)} µs`)
          }
        } finally {
          await stopAll([...servers.values(), ...sinkServers.values(), ...sourceServers.values()])
        }

        // Memory, one proxy at a time, on the echo servers (fresh, little used).
        if (round < plan.memRounds) {
          for (const n of CONTENDERS) {
            const s = echoServers.get(n)
            if (s === undefined) continue
            const p = s.child.pid
            const fd0 = fdCount(p)
            const rss0 = rssKiB(p)
            const h = await holdConnections(ctx, { mode: 'hold', port: s.port, count: HELD, confirm: true, parallel: 100, holdSeconds: 60, timeoutMs: 20_000 })
            try {
              const end = Date.now() + 10_000
              while (fdCount(p) < fd0 + 2 * h.held && Date.now() < end) await sleep(100)
              await sleep(1500)
              const per = (rssKiB(p) - rss0) / h.held
              const list = out.get(n) ?? []
              list[list.length - 1].rssKiBPerConn = per
              ctx.log(`    round ${round + 1} ${n}: ${per.toFixed(2)} KiB per open proxied connection (${h.held} held, ${h.failed} failed)`)
            } finally {
              await release(h.child)
            }
          }
        }
        await stopAll([...echoServers.values()])
      }
    } finally {
      await stop(upstream.child)
    }

    const row = (what: string, figure: string, pick: (r: Round) => number, better: 'higher' | 'lower', digits: number, unit?: string, scale = 1, subject: Contender = 'portmux'): void => {
      const a = series(out, subject, pick).map((x) => x * scale).filter(Number.isFinite)
      const b = series(out, 'node-pipe', pick).map((x) => x * scale).filter(Number.isFinite)
      if (a.length === 0 || b.length === 0) return
      const label = subject === 'portmux' ? 'portmux' : 'portmux without Fastify'
      rows.push(compare({ item: '5b', what, figure, subject: label, peer: 'bare Node pipe', a, b, better, digits, unit, note: `per round: ${a.map((x) => x.toFixed(digits)).join('/')} vs ${b.map((x) => x.toFixed(digits)).join('/')}` }))
    }
    row(`Short connection (connect, hello, banner, close) at ${SHORT_RATE}/s each, same instant`, 'CPU µs per connection', (r) => r.shortCpuUs, 'lower', 0, 'µs')
    row('Short connections, 32 concurrent each, same core (efficiency ratio)', 'cycles/s', (r) => r.c32Rate, 'higher', 0)
    row('Short connections, 32 concurrent each: failed', 'failed %', (r) => r.c32FailedPct, 'lower', 2, '%')
    row(`Bulk, one connection each, flat out (${bulkLabel(plan.bulkBytes)})`, 'CPU µs per MiB', (r) => r.bulkCpuNsPerMiB, 'lower', 0, 'µs', 1e-3)
    row('Bulk, one connection each, flat out', 'MB/s', (r) => r.bulkMBps, 'higher', 0)
    row(`Bulk, one connection each, paced at ${BULK_RATE} MB/s`, 'CPU µs per MiB', (r) => r.pacedCpuNsPerMiB, 'lower', 0, 'µs', 1e-3)
    row(`Bulk upstream → client, one connection each, flat out (${bulkLabel(plan.bulkBytes)})`, 'CPU µs per MiB', (r) => r.downCpuNsPerMiB, 'lower', 0, 'µs', 1e-3)
    row('Bulk upstream → client, one connection each, flat out', 'MB/s', (r) => r.downMBps, 'higher', 0)
    row(`First byte added over direct, p50 (${ECHO_RATE} new connections/s each)`, 'µs added', (r) => r.p50AddedUs, 'lower', 0, 'µs')
    row(`First byte added over direct, p99 (${ECHO_RATE} new connections/s each)`, 'µs added', (r) => r.p99AddedUs, 'lower', 0, 'µs')
    row(`RSS per open proxied connection (${HELD} held)`, 'KiB/connection', (r) => r.rssKiBPerConn, 'lower', 2, 'KiB')
    // The same route without Fastify: what the route costs by itself.
    row(`Bulk, one connection each, flat out (${bulkLabel(plan.bulkBytes)})`, 'CPU µs per MiB', (r) => r.bulkCpuNsPerMiB, 'lower', 0, 'µs', 1e-3, 'portmux-node')
    row(`Bulk, one connection each, paced at ${BULK_RATE} MB/s`, 'CPU µs per MiB', (r) => r.pacedCpuNsPerMiB, 'lower', 0, 'µs', 1e-3, 'portmux-node')
    row(`Bulk upstream → client, one connection each, flat out (${bulkLabel(plan.bulkBytes)})`, 'CPU µs per MiB', (r) => r.downCpuNsPerMiB, 'lower', 0, 'µs', 1e-3, 'portmux-node')
    row(`RSS per open proxied connection (${HELD} held)`, 'KiB/connection', (r) => r.rssKiBPerConn, 'lower', 2, 'KiB', 1, 'portmux-node')
    const figures: Record<string, number> = { 'portmux.shortCpuUs': median(series(out, 'portmux', (r) => r.shortCpuUs)) }
    return { rows, notes, raw: Object.fromEntries(out), figures }
  }
}

function bulkLabel (bytes: number): string {
  return `${Math.max(64, bytes / 4 / MiB)} MiB`
}
