/** Small statistics helpers: medians, percentiles and paired ratios. */

export function median (xs: readonly number[]): number {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b)
  if (v.length === 0) return NaN
  const mid = v.length >> 1
  return v.length % 2 === 1 ? v[mid] : (v[mid - 1] + v[mid]) / 2
}

/** Nearest-rank percentile (p in 0..100) of an already sorted array. */
export function percentileSorted (sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[rank]
}

export interface Spread {
  median: number
  min: number
  max: number
  n: number
}

export function spread (xs: readonly number[]): Spread {
  const v = xs.filter((x) => Number.isFinite(x))
  return { median: median(v), min: v.length > 0 ? Math.min(...v) : NaN, max: v.length > 0 ? Math.max(...v) : NaN, n: v.length }
}

/**
 * Ratios of paired runs: `a[i] / b[i]` for every round where both ran, summarised by their
 * median (a ratio per pair cancels the drift between rounds, which a ratio of medians keeps).
 */
export function pairedRatio (a: readonly number[], b: readonly number[]): Spread {
  const r: number[] = []
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (Number.isFinite(a[i]) && Number.isFinite(b[i]) && b[i] !== 0) r.push(a[i] / b[i])
  }
  return spread(r)
}

export function fmt (x: number, digits = 0): string {
  if (!Number.isFinite(x)) return 'n/a'
  return x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
}

/** Format with about three significant digits. */
export function sig (x: number): string {
  if (!Number.isFinite(x)) return 'n/a'
  const a = Math.abs(x)
  if (a >= 100) return fmt(x, 0)
  if (a >= 10) return fmt(x, 1)
  if (a >= 1) return fmt(x, 2)
  return fmt(x, 3)
}

export function fmtRatio (s: Spread): string {
  if (!Number.isFinite(s.median)) return 'n/a'
  return `**${s.median.toFixed(2)}** (${s.min.toFixed(2)}–${s.max.toFixed(2)}, n=${s.n})`
}
