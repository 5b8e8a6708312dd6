/**
 * 3. New HTTPS connections/s: a TLS 1.3 full handshake (ECDSA P-256 certificate, no
 *    session offered, so never resumed) and one request per connection, no keep-alive.
 *    portmux (Fastify + serverFactory) vs plain Fastify https. Target ≥ 0.97 per CPU (≥ 0.95 saturating,
 *    which measures the load tool).
 *
 * - saturating: `openssl s_time -new -tls1_3 -www /` (full handshakes one after another,
 *   `GET / HTTP/1.0`), 4 copies at once on the load CPU; connections/s;
 * - fixed offered rate: the bench client (`tls-new`, HTTP/1.1 `Connection: close`, the
 *   status checked, resumption checked to be 0) at 200 connections/s; connections per
 *   server CPU-second;
 * - same core, same instant (bench/lib/same-cpu.ts): portmux and Fastify on the server
 *   CPU, each loaded by its own bench client (`tls-new` at 200/s) from the load CPU, both
 *   started together; CPU per connection from schedstat nanoseconds over a window inside
 *   the clients' measured period.
 */
import type { ClientResult } from '../lib/client.js'
import type { Row, Scenario } from '../lib/context.js'
import { busyNote, compare, cpuDuring, pause, perCpuRow, series, sharedBusyNote, startAll, stopAll, warn } from '../lib/measure.js'
import { alternate } from '../lib/rounds.js'
import { sameInstantRounds } from '../lib/same-cpu.js'
import { startNode } from '../lib/servers.js'
import { client, sTime } from '../lib/tools.js'

const RATE = 200
const PARALLEL = 4

export const tlsHandshake: Scenario = {
  id: 'tls-handshake',
  title: '3. New HTTPS connections (TLS 1.3 full handshake + 1 request)',
  method: 'ECDSA P-256 certificate, TLS 1.3 only, no session offered (never resumed: checked). Saturating (portmux and Fastify only): 4 × `openssl s_time -new -tls1_3 -www /` at once on the load CPU (each a sequential loop of full handshake + `GET / HTTP/1.0`), connections over the wall time. Fixed rate: the bench client (`bench/lib/client.ts`, `tls-new`: handshake, `GET /` with `Connection: close`, status checked) at 200 connections/s. Alternating rounds: one server at a time, connections per server CPU-second (utime+stime over the run). Same core, same instant: portmux and Fastify both on CPU 1, each loaded by its own bench client at 200 connections/s from CPU 0, both started together; server CPU from /proc/<pid>/task/*/schedstat (ns) over a window inside the run (from 0.6 s to 0.3 s before the end), as connections per server CPU-second (µs of CPU per connection in brackets); the ratio is the median of per-round ratios portmux ÷ Fastify (min–max over the rounds).',
  run: async (ctx) => {
    const notes: string[] = []
    const plan = ctx.plan
    const profile = ctx.profileDir !== null
    const servers = await startAll([
      ['portmux', async () => await startNode(ctx, 'portmux', 'portmux-fastify.js', { tls: ctx.tls, http: 'redirect' }, { profile })],
      ['fastify https', async () => await startNode(ctx, 'fastify-https', 'fastify-https.js', { tls: ctx.tls }, { profile })],
      ['portmux (http2: false)', async () => await startNode(ctx, 'portmux-h1', 'portmux-fastify.js', { tls: ctx.tls, http: 'redirect', http2: false }, { profile })]
    ])
    const names = [...servers.keys()]
    const port = (name: string): number => servers.get(name)?.port ?? 0
    const pid = (name: string): number | null => servers.get(name)?.child.pid ?? null
    try {
      for (const name of names) {
        const check = await client(ctx, { mode: 'tls-new', port: port(name), count: 1, expectStatus: 200 })
        if (check.completed !== 1 || check.reused !== 0) throw new Error(`${name}: TLS check failed: ${JSON.stringify(check)}`)
        // Warm-up.
        await client(ctx, { mode: 'tls-new', port: port(name), concurrency: 4, duration: plan.quick ? 1 : 2 })
      }

      ctx.log(`  saturating: openssl s_time -new -tls1_3 ×${PARALLEL}, ${plan.satSeconds} s, ${plan.rounds} rounds`)
      const sat = await alternate(['portmux', 'fastify https'], plan.rounds, async (name) => {
        const { result, cpu, serverBusy, loadBusy } = await cpuDuring(pid(name), async () => await sTime(ctx, port(name), { seconds: plan.satSeconds, parallel: PARALLEL }))
        await pause()
        return { rate: result.rate, cpuMsPerConn: cpu / result.connections * 1e3, serverBusy, loadBusy }
      }, ctx.log)

      const rows: Row[] = []
      const figures: Record<string, number> = {}
      for (const subject of ['portmux']) {
        rows.push(compare({
          item: '3',
          what: `New TLS 1.3 connections + 1 request, saturating, alternating rounds (openssl s_time -new ×${PARALLEL}, ${plan.satSeconds} s)`,
          figure: 'connections/s',
          subject,
          peer: 'fastify https',
          a: series(sat, subject, (r) => r.rate),
          b: series(sat, 'fastify https', (r) => r.rate),
          better: 'higher',
          target: 0.95,
          note: busyNote(sat, [subject, 'fastify https'])
        }))
      }
      if (profile) return { rows, notes, raw: { saturating: Object.fromEntries(sat) }, figures }

      // portmux and the peer only: with the third server too, the one core came close to
      // saturation on a busy machine (≈ 1 ms of CPU per connection each).
      const pair = ['portmux', 'fastify https']
      ctx.log(`  same instant, fixed rate: ${pair.join(' and ')} on one core, bench client tls-new at ${RATE}/s each, ${plan.rateSeconds} s, ${plan.sameRounds} rounds`)
      const load = async (name: string): Promise<ClientResult> => {
        const result = await client(ctx, { mode: 'tls-new', port: port(name), rate: RATE, duration: plan.rateSeconds, maxInFlight: 64 })
        if (result.failed > 0 || result.missed > 0) warn(ctx, `${name}: ${result.failed} failed, ${result.missed} missed (${JSON.stringify(result.errors)}; same instant)`, notes)
        if (result.reused > 0) warn(ctx, `${name}: ${result.reused} TLS sessions were resumed (same instant)`, notes)
        return result
      }
      const shared = await sameInstantRounds({
        names: pair,
        pids: pair.map(pid),
        rounds: plan.sameRounds,
        load,
        // The CPU window lies inside the clients' run (after their start, before their end);
        // connections in it = the client's measured rate × the window's length. (The client's
        // own warm-up runs flat out, not at the rate: not used here.)
        measure: (_name, r: ClientResult, ns, s) => ({ cpuUsPerConn: ns / 1e3 / (r.rate * s), rate: r.rate }),
        window: { startMs: 600, lengthMs: (plan.rateSeconds - 0.9) * 1000 },
        cpus: ctx.cpu,
        pause,
        log: ctx.log
      })
      rows.push(perCpuRow({
        item: '3',
        what: `New TLS 1.3 connections + 1 request, server CPU at ${RATE}/s offered each, both on one core at the same instant (bench client, no resumption, ${plan.rateSeconds} s)`,
        unit: 'connections',
        source: 'schedstat',
        subject: 'portmux',
        peer: 'fastify https',
        a: series(shared.byName, 'portmux', (r) => r.cpuUsPerConn),
        b: series(shared.byName, 'fastify https', (r) => r.cpuUsPerConn),
        target: 0.97,
        note: sharedBusyNote(shared.busy)
      }))

      ctx.log(`  fixed rate: bench client tls-new at ${RATE}/s, ${plan.rateSeconds} s, ${plan.rounds} rounds`)
      const fixed = await alternate(names, plan.rounds, async (name) => {
        const { result, cpu } = await cpuDuring(pid(name), async () => await client(ctx, { mode: 'tls-new', port: port(name), rate: RATE, duration: plan.rateSeconds, maxInFlight: 64 }))
        if (result.failed > 0 || result.missed > 0) warn(ctx, `${name}: ${result.failed} failed, ${result.missed} missed (${JSON.stringify(result.errors)})`, notes)
        if (result.reused > 0) warn(ctx, `${name}: ${result.reused} TLS sessions were resumed`, notes)
        await pause()
        return { perCpuSecond: result.completed / cpu, cpuMsPerConn: cpu / result.completed * 1e3, p50us: result.latency.p50 }
      }, ctx.log)
      for (const subject of ['portmux', 'portmux (http2: false)']) {
        rows.push(compare({
          item: '3',
          what: `New TLS 1.3 connections + 1 request, server CPU at ${RATE}/s offered, alternating rounds (bench client, no resumption, ${plan.rateSeconds} s)`,
          figure: 'connections per server CPU-second (utime+stime)',
          subject,
          peer: 'fastify https',
          a: series(fixed, subject, (r) => r.perCpuSecond),
          b: series(fixed, 'fastify https', (r) => r.perCpuSecond),
          better: 'higher',
          target: 0.97,
          note: `server CPU per connection (ms): ${series(fixed, subject, (r) => r.cpuMsPerConn).map((x) => x.toFixed(2)).join('/')} vs ${series(fixed, 'fastify https', (r) => r.cpuMsPerConn).map((x) => x.toFixed(2)).join('/')}`
        }))
      }
      const cpuPortmux = series(fixed, 'portmux', (r) => r.cpuMsPerConn).sort((x, y) => x - y)
      figures['portmux.cpuUsPerConn'] = cpuPortmux.length > 0 ? cpuPortmux[cpuPortmux.length >> 1] * 1000 : NaN
      return { rows, notes, raw: { saturating: Object.fromEntries(sat), fixedRate: Object.fromEntries(fixed), sameInstantFixedRate: Object.fromEntries(shared.byName) }, figures }
    } finally {
      await stopAll(servers)
    }
  }
}
