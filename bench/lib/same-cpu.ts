/**
 * Same CPU, same instant: contenders pinned to one core and loaded at the same moment by
 * identical clients from the other core. Saturating, the scheduler gives each an equal share
 * of the core, so the throughput ratio is the efficiency ratio; at a fixed rate, CPU per
 * operation comes from the scheduler's own nanosecond counts (`/proc/<pid>/task/<tid>/schedstat`,
 * first field: time on CPU) rather than from utime+stime in 10 ms ticks. Background noise
 * falls on both at once instead of on whichever ran in that stretch.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { cpuJiffies, sleep } from './proc.js'
import { describe } from './rounds.js'

/** Nanoseconds on CPU of every live thread of `pid`. */
export function cpuNs (pid: number): number {
  let total = 0
  let tids: string[] = []
  try {
    tids = readdirSync(`/proc/${pid}/task`)
  } catch {
    return NaN
  }
  for (const tid of tids) {
    try {
      total += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'latin1').split(' ')[0])
    } catch {}
  }
  return total
}

export interface Together<T> {
  results: T[]
  /** CPU nanoseconds each pid spent during the window (NaN for null). */
  cpu: number[]
  /** Length of the window: the whole run, or the `window` asked for. */
  wallSeconds: number
  /** Share of each CPU of `cpus` that was busy (every process on it) over the window; NaN when not known. */
  busy: { server: number, load: number }
}

/**
 * Where the CPU is read, when not over the whole run: from `startMs` after the loads began,
 * for `lengthMs` — inside a load tool's measured period (after its warm-up, before it ends),
 * so that connection set-up and a client starting a little later stay out of it.
 */
export interface Window { startMs: number, lengthMs: number }

export interface TogetherOptions {
  window?: Window
  /** CPU numbers (taskset lists of one CPU) whose business is reported in `busy`. */
  cpus?: { server: string | null, load: string | null }
}

function busyShare (a: { busy: number, total: number } | null, b: { busy: number, total: number } | null): number {
  return a !== null && b !== null && b.total > a.total ? (b.busy - a.busy) / (b.total - a.total) : NaN
}

/** Run every load at once; CPU of each contender's pid over the same window. */
export async function together<T> (pids: Array<number | null>, loads: Array<() => Promise<T>>, o: TogetherOptions = {}): Promise<Together<T>> {
  const sample = (): { cpu: number[], at: bigint, server: ReturnType<typeof cpuJiffies>, load: ReturnType<typeof cpuJiffies> } => ({
    cpu: pids.map((p) => p === null ? NaN : cpuNs(p)),
    at: process.hrtime.bigint(),
    server: cpuJiffies(o.cpus?.server ?? null),
    load: cpuJiffies(o.cpus?.load ?? null)
  })
  let before = sample()
  const pending = Promise.all(loads.map(async (f) => await f()))
  let after: ReturnType<typeof sample> | undefined
  if (o.window !== undefined) {
    // A load that fails while the window is open is reported by the await below.
    pending.catch(() => {})
    await sleep(o.window.startMs)
    before = sample()
    await sleep(o.window.lengthMs)
    after = sample()
  }
  const results = await pending
  const end = after ?? sample()
  return {
    results,
    cpu: pids.map((p, i) => p === null ? NaN : end.cpu[i] - before.cpu[i]),
    wallSeconds: Number(end.at - before.at) / 1e9,
    busy: { server: busyShare(before.server, end.server), load: busyShare(before.load, end.load) }
  }
}

export interface SameInstantRounds<R> {
  /** Per-round figures by contender. */
  byName: Map<string, R[]>
  /** How busy the server and the load CPU were, per round. */
  busy: Array<{ server: number, load: number }>
}

/**
 * `rounds` rounds of `together`: every contender's load at once, each round starting the
 * loads in a rotated order (A B, B A, …); `measure` turns a contender's load result and its
 * CPU nanoseconds over the window into that round's figures.
 */
export async function sameInstantRounds<T, R> (o: {
  names: readonly string[]
  pids: ReadonlyArray<number | null>
  rounds: number
  load: (name: string) => Promise<T>
  measure: (name: string, result: T, cpuNs: number, windowSeconds: number) => R
  window?: Window
  cpus?: { server: string | null, load: string | null }
  /** Between rounds (sockets closing, timers). */
  pause?: () => Promise<void>
  log?: (msg: string) => void
}): Promise<SameInstantRounds<R>> {
  const byName = new Map<string, R[]>(o.names.map((n) => [n, []]))
  const busy: Array<{ server: number, load: number }> = []
  const n = o.names.length
  for (let r = 0; r < o.rounds; r++) {
    const order = o.names.map((_, i) => (i + r) % n)
    const t = await together(order.map((i) => o.pids[i]), order.map((i) => async () => await o.load(o.names[i])), { window: o.window, cpus: o.cpus })
    const parts: string[] = []
    for (const [k, i] of order.entries()) {
      const name = o.names[i]
      const figures = o.measure(name, t.results[k], t.cpu[k], t.wallSeconds)
      byName.get(name)?.push(figures)
      parts.push(`${name}: ${describe(figures)}`)
    }
    busy.push(t.busy)
    const b = (x: number): string => Number.isFinite(x) ? `${(100 * x).toFixed(0)} %` : '?'
    o.log?.(`    round ${r + 1}/${o.rounds} (same instant; server CPU ${b(t.busy.server)}, load CPU ${b(t.busy.load)} busy) ${parts.join('; ')}`)
    await o.pause?.()
  }
  return { byName, busy }
}
