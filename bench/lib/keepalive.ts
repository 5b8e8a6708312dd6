/**
 * Keep-alive HTTP/1.1 request throughput, two ways, both in alternating rounds:
 *
 * - saturating: `wrk -t1 -c32 -dD --latency`, requests/s (noisy on a shared 2-core
 *   machine: the anchors saw 0.7×–1.5× between identical servers);
 * - fixed offered rate: `h2load --h1 -c16 --rps 100 -D D` (1,600 requests/s, well under
 *   saturation), server CPU time from /proc before and after; the figure is requests
 *   per server CPU-second — what the server would serve at saturation on that one core,
 *   without the saturation noise (the anchors saw it stay within ±10 %).
 */
import type { Ctx, Row } from './context.js'
import { busyNote, compare, cpuDuring, pause, series, startAll, stopAll, warn } from './measure.js'
import { cpuSeconds, sleep } from './proc.js'
import { alternate } from './rounds.js'
import type { Running } from './servers.js'
import { h2load, wrk } from './tools.js'

export interface KeepAliveSpec {
  item: string
  scheme: 'http' | 'https'
  /** The first contender is portmux; the peer is `peer`; others are variants of portmux. */
  contenders: Array<[string, () => Promise<Running>]>
  peer: string
  target: number
  label: string
}

interface Round { rps: number, satCpuPerReq: number, p99ms: number, errors: number, serverBusy: number, loadBusy: number }
interface RateRound { perCpuSecond: number, cpuUsPerReq: number, succeeded: number, failed: number }

export async function keepAlive (ctx: Ctx, spec: KeepAliveSpec): Promise<{ rows: Row[], notes: string[], raw: unknown, figures: Record<string, number> }> {
  const notes: string[] = []
  const plan = ctx.plan
  const names = spec.contenders.map(([n]) => n)
  const servers = await startAll(spec.contenders)
  try {
    const url = (name: string): string => `${spec.scheme}://127.0.0.1:${servers.get(name)?.port ?? 0}/`
    // Warm-up: JIT, TLS session state, connection pools.
    for (const name of names) await wrk(ctx, url(name), { connections: 32, seconds: plan.quick ? 1 : 2 })

    // Saturating runs compare portmux with the peer only (variants get the CPU figure), to
    // keep the full run within its time budget.
    ctx.log(`  saturating: wrk -t1 -c32 -d${plan.satSeconds}s, ${plan.rounds} rounds`)
    const sat = await alternate<Round>(names.slice(0, 2), plan.rounds, async (name) => {
      const pid = servers.get(name)?.child.pid ?? null
      const { result, cpu, serverBusy, loadBusy } = await cpuDuring(pid, async () => await wrk(ctx, url(name), { connections: 32, seconds: plan.satSeconds }))
      if (result.errors > 0 || result.badStatus > 0) warn(ctx, `${name}: wrk saw ${result.errors} socket errors, ${result.badStatus} bad statuses`, notes)
      await pause()
      return { rps: result.rps, satCpuPerReq: cpu / result.requests * 1e6, p99ms: result.p99ms, errors: result.errors + result.badStatus, serverBusy, loadBusy }
    }, ctx.log)

    const rows: Row[] = []
    const figures: Record<string, number> = {}
    const portmux = names[0]
    rows.push(compare({
      item: spec.item,
      what: `${spec.label}, saturating (wrk -t1 -c32, ${plan.satSeconds} s)`,
      figure: 'requests/s',
      subject: portmux,
      peer: spec.peer,
      a: series(sat, portmux, (r) => r.rps),
      b: series(sat, spec.peer, (r) => r.rps),
      better: 'higher',
      target: spec.target,
      note: busyNote(sat, [portmux, spec.peer])
    }))

    if (ctx.profileDir === null) {
      const rate = 100
      const clients = 16
      ctx.log(`  fixed rate: h2load --h1 -c${clients} --rps ${rate} --warm-up-time=1 -D ${plan.rateSeconds}, ${plan.rounds} rounds`)
      const fixed = await alternate<RateRound>(names, plan.rounds, async (name) => {
        const pid = servers.get(name)?.child.pid ?? 0
        // The CPU window lies inside h2load's measured period (after its 1 s warm-up, in
        // which the connections and their handshakes are made, and before it stops);
        // requests in the window = h2load's measured rate × the window's length.
        const pending = h2load(ctx, url(name), { clients, rps: rate, seconds: plan.rateSeconds, h1: true, warmup: 1 })
        await sleep(1300)
        const c0 = cpuSeconds(pid)
        const w0 = process.hrtime.bigint()
        await sleep((plan.rateSeconds - 0.6) * 1000)
        const cpu = cpuSeconds(pid) - c0
        const window = Number(process.hrtime.bigint() - w0) / 1e9
        const result = await pending
        if (result.failed > 0) warn(ctx, `${name}: h2load saw ${result.failed} failed requests`, notes)
        if (result.rps < clients * rate * 0.95) warn(ctx, `${name}: h2load reached ${result.rps.toFixed(0)} of ${clients * rate} req/s offered`, notes)
        await pause()
        const requests = result.rps * window
        return { perCpuSecond: requests / cpu, cpuUsPerReq: cpu / requests * 1e6, succeeded: result.succeeded, failed: result.failed }
      }, ctx.log)
      for (const variant of [portmux, ...names.slice(2)]) {
        const a = series(fixed, variant, (r) => r.perCpuSecond)
        const b = series(fixed, spec.peer, (r) => r.perCpuSecond)
        rows.push(compare({
          item: spec.item,
          what: `${spec.label}, server CPU at ${clients * rate} req/s offered (h2load --h1 -c${clients} --rps ${rate}, ${plan.rateSeconds} s after 1 s warm-up)`,
          figure: 'requests per server CPU-second',
          subject: variant,
          peer: spec.peer,
          a,
          b,
          better: 'higher',
          target: spec.target,
          note: `CPU per request: ${series(fixed, variant, (r) => r.cpuUsPerReq).map((x) => x.toFixed(0)).join('/')} µs vs ${series(fixed, spec.peer, (r) => r.cpuUsPerReq).map((x) => x.toFixed(0)).join('/')} µs`
        }))
        figures[`${variant}.cpuUsPerReq`] = a.length > 0 ? 1e6 / (a.slice().sort((x, y) => x - y)[a.length >> 1]) : NaN
      }
      return { rows, notes, raw: { saturating: Object.fromEntries(sat), fixedRate: Object.fromEntries(fixed) }, figures }
    }
    return { rows, notes, raw: { saturating: Object.fromEntries(sat) }, figures }
  } finally {
    await stopAll(servers)
  }
}
