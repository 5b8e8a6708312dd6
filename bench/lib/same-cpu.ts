/**
 * Same CPU, same instant: contenders pinned to one core and loaded at the same moment by
 * identical clients from the other core. Saturating, the scheduler gives each an equal share
 * of the core, so the throughput ratio is the efficiency ratio; at a fixed rate, CPU per
 * operation comes from the scheduler's own nanosecond counts (`/proc/<pid>/task/<tid>/schedstat`,
 * first field: time on CPU) rather than from utime+stime in 10 ms ticks. Background noise
 * falls on both at once instead of on whichever ran in that stretch.
 */
import { readdirSync, readFileSync } from 'node:fs'

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
  wallSeconds: number
}

/** Run every load at once; CPU of each contender's pid over the same window. */
export async function together<T> (pids: Array<number | null>, loads: Array<() => Promise<T>>): Promise<Together<T>> {
  const before = pids.map((p) => p === null ? NaN : cpuNs(p))
  const t0 = process.hrtime.bigint()
  const results = await Promise.all(loads.map(async (f) => await f()))
  const wallSeconds = Number(process.hrtime.bigint() - t0) / 1e9
  const cpu = pids.map((p, i) => p === null ? NaN : cpuNs(p) - before[i])
  return { results, cpu, wallSeconds }
}
