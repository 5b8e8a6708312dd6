/**
 * 6. Latency a proxied route adds before the first byte: the bench client connects, sends
 *    the SSH-like hello line and times connect() → the first byte echoed by the upstream,
 *    at a fixed 500 connections/s (new connection each). p50 and p99 per run; medians over
 *    alternating rounds; vs going direct to the echo upstream, with sslh-select, HAProxy,
 *    nginx stream and the naive Node pipe for context.
 */
import type { Row, Scenario } from '../lib/context.js'
import { compare, pause, series, stopAll, warn } from '../lib/measure.js'
import { stop } from '../lib/proc.js'
import { alternate } from '../lib/rounds.js'
import { startUpstream } from '../lib/servers.js'
import { median } from '../lib/stats.js'
import { client } from '../lib/tools.js'
import { label, PROXIES, startProxies } from './proxy.js'

const RATE = 500

export const proxyLatency: Scenario = {
  id: 'proxy-latency',
  title: '6. Latency added before the first byte (proxied route)',
  method: 'New connection each at a fixed 500/s: connect, send the hello line, time to the first byte echoed by the upstream (measured in the bench client). p50 and p99 of each run; the table gives the medians over rounds and the median per-round ratio to direct; the note gives the median added microseconds.',
  run: async (ctx) => {
    const notes: string[] = []
    const plan = ctx.plan
    const rows: Row[] = []
    const upstream = await startUpstream(ctx)
    try {
      const proxies = await startProxies(ctx, upstream.ports.echo, 'latency')
      try {
        const contenders = ['direct', ...PROXIES]
        const port = (name: string): number => name === 'direct' ? upstream.ports.echo : proxies.get(name)?.port ?? 0
        for (const name of contenders) await client(ctx, { mode: 'echo', port: port(name), rate: RATE, duration: 1 })
        ctx.log(`  echo first byte at ${RATE}/s, ${plan.latencySeconds} s, ${plan.bulkRounds} rounds`)
        const lat = await alternate(contenders, plan.bulkRounds, async (name) => {
          const r = await client(ctx, { mode: 'echo', port: port(name), rate: RATE, duration: plan.latencySeconds, maxInFlight: 64, timeoutMs: 3000 })
          if (r.failed > 0 || r.missed > 0) warn(ctx, `${name}: ${r.failed} failed, ${r.missed} missed (${JSON.stringify(r.errors)})`, notes)
          await pause()
          return { p50: r.latency.p50, p99: r.latency.p99, n: r.latency.n }
        }, ctx.log)
        for (const subject of PROXIES) {
          for (const p of ['p50', 'p99'] as const) {
            const a = series(lat, subject, (r) => r[p])
            const b = series(lat, 'direct', (r) => r[p])
            const added = median(a.map((x, i) => x - b[i]))
            rows.push(compare({
              item: '6',
              what: `First byte through the proxy, ${p} (connect → first echoed byte, ${RATE} new connections/s)`,
              figure: `${p} µs`,
              subject: label(subject),
              peer: 'direct',
              a,
              b,
              better: 'lower',
              unit: 'µs',
              digits: 0,
              note: `added ${added.toFixed(0)} µs (median of per-round differences)`
            }))
          }
        }
        return { rows, notes, raw: Object.fromEntries(lat), figures: {} }
      } finally {
        await stopAll(proxies)
      }
    } finally {
      await stop(upstream.child)
    }
  }
}
