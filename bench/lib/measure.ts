/** Measuring helpers shared by the scenarios. */
import type { Ctx, Row } from './context.js'
import { cpuJiffies, cpuSeconds, stop, sleep } from './proc.js'
import type { Running } from './servers.js'
import { fmt, median, pairedRatio, sig, spread, type Spread } from './stats.js'

export interface CpuWindow<T> {
  result: T
  /** CPU seconds the server process spent. */
  cpu: number
  wall: number
  /** Share of the server's time on CPU (cpu / wall). */
  serverBusy: number
  /** Share of the load CPU that was busy (every process on it), or NaN without pinning. */
  loadBusy: number
}

let loadCpu: string | null = null
/** The CPU whose business `cpuDuring` reports (the load tools' CPU). */
export function setLoadCpu (cpu: string | null): void {
  loadCpu = cpu
}

/**
 * Run `fn` and return its result with the CPU seconds `pid` spent meanwhile, and how busy
 * the load CPU was: a saturating run whose load CPU is ~100 % busy while the server is not
 * measured the client, not the server.
 */
export async function cpuDuring<T> (pid: number | null, fn: () => Promise<T>): Promise<CpuWindow<T>> {
  const before = pid === null ? 0 : cpuSeconds(pid)
  const j0 = cpuJiffies(loadCpu)
  const t0 = process.hrtime.bigint()
  const result = await fn()
  const wall = Number(process.hrtime.bigint() - t0) / 1e9
  const cpu = pid === null ? NaN : cpuSeconds(pid) - before
  const j1 = cpuJiffies(loadCpu)
  const loadBusy = j0 !== null && j1 !== null && j1.total > j0.total ? (j1.busy - j0.busy) / (j1.total - j0.total) : NaN
  return { result, cpu, wall, serverBusy: cpu / wall, loadBusy }
}

/** "load CPU 97 % / server 61 % busy" from per-round figures, with a warning when the client was the limit. */
export function busyNote (m: Map<string, Array<{ loadBusy: number, serverBusy: number }>>, names: string[]): string {
  const parts: string[] = []
  let clientBound = false
  for (const n of names) {
    const l = median(series(m, n, (r) => r.loadBusy))
    const s = median(series(m, n, (r) => r.serverBusy))
    if (!Number.isFinite(s)) continue
    parts.push(`${n}: server ${(100 * s).toFixed(0)} %${Number.isFinite(l) ? `, load CPU ${(100 * l).toFixed(0)} %` : ''}`)
    if (l > 0.9 && s < 0.85) clientBound = true
  }
  return `busy — ${parts.join('; ')}${clientBound ? '. LOAD-BOUND: the load CPU saturated before the server; the CPU-per-unit row tells servers apart' : ''}`
}

/** Start servers one after another; if one fails, stop those already started. */
export async function startAll (entries: Array<[string, () => Promise<Running>]>): Promise<Map<string, Running>> {
  const out = new Map<string, Running>()
  try {
    for (const [name, startOne] of entries) out.set(name, await startOne())
  } catch (err) {
    await stopAll(out)
    throw err
  }
  return out
}

export async function stopAll (servers: Map<string, Running> | Running[]): Promise<void> {
  const list = Array.isArray(servers) ? servers : [...servers.values()]
  await Promise.all(list.map(async (s) => await stop(s.child)))
}

/** Let the machine settle a little between runs (sockets closing, timers). */
export async function pause (ms = 300): Promise<void> {
  await sleep(ms)
}

/** Pick one numeric field out of per-round results. */
export function series<T> (m: Map<string, T[]>, name: string, pick: (t: T) => number): number[] {
  return (m.get(name) ?? []).map(pick)
}

/**
 * A comparison row: the subject's and the peer's per-round values, their medians, and the
 * median of the per-round ratios subject ÷ peer.
 */
export function compare (o: {
  item: string
  what: string
  figure: string
  subject: string
  peer: string
  a: number[]
  b: number[]
  better: 'higher' | 'lower'
  unit?: string
  target?: number
  note?: string
  digits?: number
}): Row {
  const a = spread(o.a)
  const b = spread(o.b)
  const show = (s: Spread): string => `${o.digits !== undefined ? fmt(s.median, o.digits) : sig(s.median)}${o.unit !== undefined ? ' ' + o.unit : ''}`
  return {
    item: o.item,
    what: o.what,
    figure: o.figure,
    subject: o.subject,
    subjectValue: show(a),
    peer: o.peer,
    peerValue: show(b),
    ratio: pairedRatio(o.a, o.b),
    better: o.better,
    target: o.target,
    note: o.note
  }
}

export function warn (ctx: Ctx, msg: string, notes: string[]): void {
  ctx.log(`  ! ${msg}`)
  notes.push(`⚠ ${msg}`)
}

/**
 * A "work per server CPU-second" row (higher is better, ratio portmux ÷ peer, so a target
 * reads as "at least this share of the peer's efficiency"), with the CPU per operation the
 * figure comes from in the value cells and per round in the note.
 */
export function perCpuRow (o: {
  item: string
  what: string
  /** What is counted: 'requests', 'connections'. */
  unit: string
  /** Where the CPU figure comes from, for the figure's name ('schedstat', 'utime+stime'). */
  source: string
  subject: string
  peer: string
  /** Microseconds of server CPU per operation, per round. */
  a: number[]
  b: number[]
  target?: number
  note?: string
}): Row {
  const row = compare({
    item: o.item,
    what: o.what,
    figure: `${o.unit} per server CPU-second (${o.source}; µs of CPU per operation in brackets)`,
    subject: o.subject,
    peer: o.peer,
    a: o.a.map((us) => 1e6 / us),
    b: o.b.map((us) => 1e6 / us),
    better: 'higher',
    target: o.target
  })
  const us = (xs: number[]): string => median(xs).toFixed(1)
  row.subjectValue += ` (${us(o.a)} µs)`
  row.peerValue += ` (${us(o.b)} µs)`
  const rounds = `µs per operation by round: ${o.a.map((x) => x.toFixed(1)).join('/')} vs ${o.b.map((x) => x.toFixed(1)).join('/')}`
  row.note = o.note === undefined ? rounds : `${rounds}; ${o.note}`
  return row
}

/**
 * "whole server CPU 41 %, whole load CPU 38 % busy" from per-round CPU shares (same-instant
 * rounds): every process on those CPUs counts, other users' included, so these say how
 * quiet the machine was, not which side was the limit.
 */
export function sharedBusyNote (busy: Array<{ server: number, load: number }>): string {
  const s = median(busy.map((b) => b.server))
  const l = median(busy.map((b) => b.load))
  if (!Number.isFinite(s) && !Number.isFinite(l)) return ''
  return `whole CPUs busy (every process on them, medians) — server CPU ${(100 * s).toFixed(0)} %, load CPU ${(100 * l).toFixed(0)} %`
}

/**
 * Each contender's share of the one server core per round, for a saturating same-instant
 * row; `NOT SATURATED` when together they used little of it: the servers were waiting for
 * their load tools (a busy load CPU) or lost the core to other processes on it — in the
 * first case the ratio is not the efficiency ratio.
 */
export function coreShareNote (m: Map<string, Array<{ coreShare: number }>>, names: string[]): string {
  const per = names.map((n) => series(m, n, (r) => r.coreShare))
  const sums = per[0]?.map((_, i) => per.reduce((a, xs) => a + (xs[i] ?? NaN), 0)) ?? []
  const low = median(sums) < 0.9
  return `share of the core by round: ${per.map((xs) => xs.map((x) => (100 * x).toFixed(0)).join('/') + ' %').join(' vs ')}${low ? ` — NOT SATURATED: together they used ${(100 * median(sums)).toFixed(0)} % of it (load tools the limit, or other processes on the core)` : ''}`
}
