/**
 * Alternating rounds: every contender runs once per round, and the order rotates from
 * round to round (A B, B A, A B, …) so that neither side always runs first or in the
 * same stretch of background noise. Results are kept by round, so that ratios are taken
 * pair by pair.
 */
export async function alternate<T> (contenders: readonly string[], rounds: number, runOne: (name: string, round: number) => Promise<T>, log?: (msg: string) => void): Promise<Map<string, T[]>> {
  const out = new Map<string, T[]>(contenders.map((c) => [c, []]))
  for (let r = 0; r < rounds; r++) {
    const order = contenders.map((_, i) => contenders[(i + r) % contenders.length])
    for (const name of order) {
      const result = await runOne(name, r)
      out.get(name)?.push(result)
      log?.(`    round ${r + 1}/${rounds} ${name}: ${describe(result)}`)
    }
  }
  return out
}

/** Numeric fields of a round's figures, for the log. */
export function describe (x: unknown): string {
  if (typeof x === 'number') return x.toFixed(x >= 100 ? 0 : 3)
  if (typeof x === 'object' && x !== null) {
    return Object.entries(x).filter(([, v]) => typeof v === 'number').map(([k, v]) => `${k}=${(v as number).toFixed((v as number) >= 100 ? 0 : 3)}`).join(' ')
  }
  return String(x)
}
