/**
 * Keep-alive request throughput, HTTP/1.1 or HTTP/2, by two methods.
 *
 * Alternating rounds (A B, B A, …; one contender loaded at a time):
 * - saturating: HTTP/1.1 `wrk -t1 -c32 -dD --latency`, HTTP/2 `h2load -c32 -m10 -D D`;
 *   requests/s (noisy on a shared 2-core machine: 0.4×–1.6× between identical servers);
 * - fixed offered rate (HTTP/1.1): `h2load --h1 -c16 --rps 100 -D D` (1,600 requests/s, well
 *   under saturation), server CPU in schedstat nanoseconds over a window inside h2load's
 *   measured period; the figure is requests per server CPU-second.
 *
 * Same core, same instant (bench/lib/same-cpu.ts): every contender on the server CPU, each
 * loaded by its own identical load tool from the load CPU, all started together:
 * - fixed offered rate (every contender, variants included), the one core well below
 *   saturation: CPU per request (schedstat) → requests per server CPU-second;
 * - saturating (portmux and the peer): the scheduler gives each half the core, so the ratio of
 *   requests/s is the ratio of efficiency.
 */
import type { Ctx, Row } from './context.js'
import { busyNote, compare, coreShareNote, pause, perCpuRow, series, sharedBusyNote, startAll, stopAll, warn } from './measure.js'
import { alternate } from './rounds.js'
import { sameInstantRounds, together, type Window } from './same-cpu.js'
import type { Running } from './servers.js'
import { h2load, wrk, type H2loadResult } from './tools.js'

export interface KeepAliveSpec {
  item: string
  scheme: 'http' | 'https'
  /** HTTP/1.1 keep-alive (wrk, h2load --h1) or HTTP/2 over TLS (h2load, ALPN h2). */
  protocol: 'h1' | 'h2'
  /** The first contender is portmux; the peer is `peer`; others are variants of portmux. */
  contenders: Array<[string, () => Promise<Running>]>
  peer: string
  target: number
  label: string
}

/** One saturating load's outcome, whichever tool made it. */
interface Load { requests: number, rps: number, errors: number, p99ms: number, what: string }

interface SatRound { rps: number, cpuUsPerReq: number, serverBusy: number, loadBusy: number, p99ms: number }
interface RateRound { cpuUsPerReq: number, rps: number }
interface SharedSatRound { rps: number, cpuUsPerReq: number, coreShare: number }

const SAT = { h1: { connections: 32 }, h2: { clients: 32, streams: 10 } }
const RATE = { h1: { clients: 16, rps: 100 }, h2: { clients: 32, streams: 10, rps: 50 } }

/** How the scenarios built on `keepAlive` measure, for the report (the plan's round counts are in its header). */
export const KEEPALIVE_METHOD = {
  h1: 'Two methods. Alternating rounds (one server loaded at a time): saturating `wrk -t1 -c32 --latency`, requests/s; and a fixed rate, `h2load --h1 -c16 --rps 100` (1,600 req/s offered, well under saturation), server CPU from /proc/<pid>/task/*/schedstat (ns) over a window inside h2load\'s measured period, as requests per server CPU-second. Same core, same instant (every server on CPU 1, each loaded by its own identical load tool on CPU 0, all started together, so background noise falls on all at once): the same fixed rate for every server at once, requests per server CPU-second (µs of CPU per request in brackets); and portmux and the peer saturated at once with one `wrk -t1 -c32` each — each gets half of the one core, so the ratio of requests/s is the ratio of efficiency. Same-instant ratios are medians of per-round ratios portmux ÷ peer (min–max over the rounds).',
  h2: 'Two methods. Alternating rounds (one server loaded at a time): saturating `h2load -c32 -m10` (32 connections, 10 concurrent streams each), requests/s. Same core, same instant (both servers on CPU 1, each loaded by its own identical h2load on CPU 0, started together): a fixed rate, `h2load -c32 -m10 --rps 50` (1,600 req/s offered each, well under saturation), server CPU from /proc/<pid>/task/*/schedstat (ns) over a window inside h2load\'s measured period, as requests per server CPU-second (µs of CPU per request in brackets); and both saturated at once with `h2load -c32 -m10` each — each gets half of the one core, so the ratio of requests/s is the ratio of efficiency. Ratios are medians of per-round ratios portmux ÷ peer (min–max over the rounds).'
}

function satLabel (p: 'h1' | 'h2', seconds: number): string {
  return p === 'h1' ? `wrk -t1 -c${SAT.h1.connections}, ${seconds} s` : `h2load -c${SAT.h2.clients} -m${SAT.h2.streams}, ${seconds} s`
}

function rateLabel (p: 'h1' | 'h2', seconds: number): string {
  const r = RATE[p]
  const tool = p === 'h1' ? `h2load --h1 -c${r.clients}` : `h2load -c${RATE.h2.clients} -m${RATE.h2.streams}`
  return `${r.clients * r.rps} req/s offered (${tool} --rps ${r.rps}, ${seconds} s after 1 s warm-up)`
}

export async function keepAlive (ctx: Ctx, spec: KeepAliveSpec): Promise<{ rows: Row[], notes: string[], raw: unknown, figures: Record<string, number> }> {
  const notes: string[] = []
  const plan = ctx.plan
  const p = spec.protocol
  const names = spec.contenders.map(([n]) => n)
  const pair = names.slice(0, 2)
  const portmux = names[0]
  const servers = await startAll(spec.contenders)
  const url = (name: string): string => `${spec.scheme}://127.0.0.1:${servers.get(name)?.port ?? 0}/`
  const pid = (name: string): number | null => servers.get(name)?.child.pid ?? null
  const expected = p === 'h2' ? 'h2' : spec.scheme === 'https' ? 'http/1.1' : ''
  const checkProtocol = (name: string, r: H2loadResult): void => {
    if (expected !== '' && r.protocol !== expected) throw new Error(`${name}: h2load spoke ${r.protocol === '' ? 'no protocol' : r.protocol}, not ${expected}`)
  }

  const saturate = async (name: string, seconds: number): Promise<Load> => {
    if (p === 'h1') {
      const r = await wrk(ctx, url(name), { connections: SAT.h1.connections, seconds })
      if (r.errors > 0 || r.badStatus > 0) warn(ctx, `${name}: wrk saw ${r.errors} socket errors, ${r.badStatus} bad statuses`, notes)
      return { requests: r.requests, rps: r.rps, errors: r.errors + r.badStatus, p99ms: r.p99ms, what: 'wrk' }
    }
    const r = await h2load(ctx, url(name), { clients: SAT.h2.clients, streams: SAT.h2.streams, seconds, h1: false })
    checkProtocol(name, r)
    if (r.failed > 0) warn(ctx, `${name}: h2load saw ${r.failed} failed requests`, notes)
    return { requests: r.succeeded, rps: r.rps, errors: r.failed, p99ms: NaN, what: 'h2load' }
  }
  const offer = async (name: string): Promise<H2loadResult> => {
    const r = p === 'h1'
      ? await h2load(ctx, url(name), { clients: RATE.h1.clients, rps: RATE.h1.rps, seconds: plan.rateSeconds, h1: true, warmup: 1 })
      : await h2load(ctx, url(name), { clients: RATE.h2.clients, streams: RATE.h2.streams, rps: RATE.h2.rps, seconds: plan.rateSeconds, h1: false, warmup: 1 })
    checkProtocol(name, r)
    const offered = RATE[p].clients * RATE[p].rps
    if (r.failed > 0) warn(ctx, `${name}: h2load saw ${r.failed} failed requests`, notes)
    if (r.rps < offered * 0.95) warn(ctx, `${name}: h2load reached ${r.rps.toFixed(0)} of ${offered} req/s offered`, notes)
    return r
  }
  // The CPU window of a fixed-rate run lies inside h2load's measured period (after its 1 s
  // warm-up, in which the connections and their handshakes are made, and before it stops);
  // requests in the window = h2load's measured rate × the window's length.
  const rateWindow: Window = { startMs: 1300, lengthMs: (plan.rateSeconds - 0.6) * 1000 }
  // A saturating window leaves out the tools' start and connection set-up.
  const satWindow: Window = { startMs: 300, lengthMs: (plan.satSeconds - 0.6) * 1000 }
  const cpus = ctx.cpu

  try {
    // Warm-up: JIT, TLS session state, connection pools.
    for (const name of names) await saturate(name, plan.quick ? 1 : 2)

    const rows: Row[] = []
    const figures: Record<string, number> = {}
    const raw: Record<string, unknown> = {}

    // Saturating runs compare portmux with the peer only (variants get the CPU figures), to
    // keep the full run within its time budget.
    ctx.log(`  alternating, saturating: ${satLabel(p, plan.satSeconds)}, ${plan.rounds} rounds`)
    const sat = await alternate<SatRound>(pair, plan.rounds, async (name) => {
      const t = await together([pid(name)], [async () => await saturate(name, plan.satSeconds)], { window: satWindow, cpus })
      const r = t.results[0]
      await pause()
      return { rps: r.rps, cpuUsPerReq: t.cpu[0] / 1e3 / (r.rps * t.wallSeconds), serverBusy: t.cpu[0] / 1e9 / t.wallSeconds, loadBusy: t.busy.load, p99ms: r.p99ms }
    }, ctx.log)
    raw.saturating = Object.fromEntries(sat)
    rows.push(compare({
      item: spec.item,
      what: `${spec.label}, saturating, alternating rounds (${satLabel(p, plan.satSeconds)})`,
      figure: 'requests/s',
      subject: portmux,
      peer: spec.peer,
      a: series(sat, portmux, (r) => r.rps),
      b: series(sat, spec.peer, (r) => r.rps),
      better: 'higher',
      target: spec.target,
      note: busyNote(sat, pair)
    }))
    if (ctx.profileDir !== null) return { rows, notes, raw, figures }

    ctx.log(`  same instant, saturating: ${pair.join(' and ')} on one core, ${satLabel(p, plan.satSeconds)} each, ${plan.sameRounds} rounds`)
    const shared = await sameInstantRounds<Load, SharedSatRound>({
      names: pair,
      pids: pair.map(pid),
      rounds: plan.sameRounds,
      load: async (name) => await saturate(name, plan.satSeconds),
      measure: (_name, r, ns, s) => ({ rps: r.rps, cpuUsPerReq: ns / 1e3 / (r.rps * s), coreShare: ns / 1e9 / s }),
      window: satWindow,
      cpus,
      pause,
      log: ctx.log
    })
    raw.sameInstantSaturating = Object.fromEntries(shared.byName)
    const sharedSeries = (name: string, pick: (r: SharedSatRound) => number): number[] => series(shared.byName, name, pick)
    rows.push(compare({
      item: spec.item,
      what: `${spec.label}, saturating, both on one core at the same instant (${satLabel(p, plan.satSeconds)} each; equal core share, so the ratio is the efficiency ratio)`,
      figure: 'requests/s',
      subject: portmux,
      peer: spec.peer,
      a: sharedSeries(portmux, (r) => r.rps),
      b: sharedSeries(spec.peer, (r) => r.rps),
      better: 'higher',
      target: spec.target,
      note: `${coreShareNote(shared.byName, pair)}; CPU per request: ${pair.map((n) => sharedSeries(n, (r) => r.cpuUsPerReq).map((x) => x.toFixed(1)).join('/') + ' µs').join(' vs ')}; ${sharedBusyNote(shared.busy)}`
    }))

    if (p === 'h1') {
      ctx.log(`  alternating, fixed rate: ${rateLabel(p, plan.rateSeconds)}, ${plan.rounds} rounds`)
      const fixed = await alternate<RateRound>(names, plan.rounds, async (name) => {
        const t = await together([pid(name)], [async () => await offer(name)], { window: rateWindow })
        await pause()
        return { cpuUsPerReq: t.cpu[0] / 1e3 / (t.results[0].rps * t.wallSeconds), rps: t.results[0].rps }
      }, ctx.log)
      raw.fixedRate = Object.fromEntries(fixed)
      for (const variant of [portmux, ...names.slice(2)]) {
        rows.push(perCpuRow({
          item: spec.item,
          what: `${spec.label}, server CPU at ${rateLabel(p, plan.rateSeconds)}, alternating rounds`,
          unit: 'requests',
          source: 'schedstat',
          subject: variant,
          peer: spec.peer,
          a: series(fixed, variant, (r) => r.cpuUsPerReq),
          b: series(fixed, spec.peer, (r) => r.cpuUsPerReq),
          target: spec.target
        }))
      }
    }

    ctx.log(`  same instant, fixed rate: ${names.join(', ')} on one core, ${rateLabel(p, plan.rateSeconds)} each, ${plan.sameRounds} rounds`)
    const rate = await sameInstantRounds<H2loadResult, RateRound>({
      names,
      pids: names.map(pid),
      rounds: plan.sameRounds,
      load: offer,
      measure: (_name, r, ns, s) => ({ cpuUsPerReq: ns / 1e3 / (r.rps * s), rps: r.rps }),
      window: rateWindow,
      cpus,
      pause,
      log: ctx.log
    })
    raw.sameInstantFixedRate = Object.fromEntries(rate.byName)
    for (const variant of [portmux, ...names.slice(2)]) {
      const a = series(rate.byName, variant, (r) => r.cpuUsPerReq)
      rows.push(perCpuRow({
        item: spec.item,
        what: `${spec.label}, server CPU at ${rateLabel(p, plan.rateSeconds)} each, ${names.length === 2 ? 'both' : `all ${names.length}`} on one core at the same instant`,
        unit: 'requests',
        source: 'schedstat',
        subject: variant,
        peer: spec.peer,
        a,
        b: series(rate.byName, spec.peer, (r) => r.cpuUsPerReq),
        target: spec.target,
        note: sharedBusyNote(rate.busy)
      }))
      figures[`${variant}.cpuUsPerReq`] = a.length > 0 ? a.slice().sort((x, y) => x - y)[a.length >> 1] : NaN
    }
    return { rows, notes, raw, figures }
  } finally {
    await stopAll(servers)
  }
}
