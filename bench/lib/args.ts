/** Command-line flags of the bench entry points: `--name`, `--name=value`. */

/** The value of `--name=value`, `''` for a bare `--name`, `undefined` when absent. */
export function arg (name: string): string | undefined {
  const a = process.argv.find((x) => x === `--${name}` || x.startsWith(`--${name}=`))
  if (a === undefined) return undefined
  return a.includes('=') ? a.slice(a.indexOf('=') + 1) : ''
}

/** `--name=N` as a number, or `fallback` when absent. */
export function num (name: string, fallback: number): number {
  const v = arg(name)
  return v === undefined ? fallback : Number(v)
}
