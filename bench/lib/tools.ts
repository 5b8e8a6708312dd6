/**
 * Load tools, run pinned to the load CPU and parsed: wrk (saturating keep-alive and
 * `Connection: close` loads), h2load (`--rps`: a fixed offered rate), `openssl s_time -new`
 * (sequential full handshakes) and the bench's own client (bench/lib/client.ts).
 */
import { join } from 'node:path'
import type { ClientConfig, ClientResult } from './client.js'
import type { Ctx } from './context.js'
import { run, start, waitForLine, type Child } from './proc.js'

export interface WrkResult { requests: number, seconds: number, rps: number, errors: number, badStatus: number, p50ms: number, p99ms: number, raw: string }

function ms (v: string, unit: string): number {
  const x = Number(v)
  return unit === 'us' ? x / 1000 : unit === 's' ? x * 1000 : unit === 'm' ? x * 60000 : x
}

/** `wrk -t1 -cC -dD --latency URL` (one thread: the load CPU is one core). */
export async function wrk (ctx: Ctx, url: string, o: { connections: number, seconds: number, headers?: string[] }): Promise<WrkResult> {
  const args = ['-t1', `-c${o.connections}`, `-d${o.seconds}s`, '--latency', '--timeout', '5s']
  for (const h of o.headers ?? []) args.push('-H', h)
  args.push(url)
  const r = await run('wrk', args, { cpu: ctx.cpu.load, timeoutSeconds: o.seconds + 30 })
  const out = r.stdout
  const total = /(\d+) requests in ([\d.]+)(ms|s|m)/.exec(out)
  if (r.code !== 0 || total === null) throw new Error(`wrk failed (${String(r.code)}): ${out}\n${r.stderr}`)
  const seconds = ms(total[2], total[3]) / 1000
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out)
  const errors = sock === null ? 0 : sock.slice(1).reduce((a, b) => a + Number(b), 0)
  const bad = /Non-2xx or 3xx responses: (\d+)/.exec(out)
  const lat = (p: string): number => {
    const m = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s)`, 'm').exec(out)
    return m === null ? NaN : ms(m[1], m[2])
  }
  const requests = Number(total[1])
  return { requests, seconds, rps: requests / seconds, errors, badStatus: bad === null ? 0 : Number(bad[1]), p50ms: lat('50'), p99ms: lat('99'), raw: out }
}

export interface H2loadResult {
  succeeded: number
  failed: number
  seconds: number
  rps: number
  /** The application protocol h2load says it spoke (`h2`, `http/1.1`), or '' when it does not say. */
  protocol: string
  raw: string
}

/**
 * `h2load [--h1] -c C [-m M] [--rps R] -D D URL`: with `rps`, a fixed offered rate of C×R
 * requests/s; without, saturating. `streams` is the concurrent streams per HTTP/2 connection.
 */
export async function h2load (ctx: Ctx, url: string, o: { clients: number, rps?: number, seconds: number, h1: boolean, streams?: number, warmup?: number }): Promise<H2loadResult> {
  const args = ['-t', '1', '-c', String(o.clients), '-D', String(o.seconds)]
  if (o.streams !== undefined) args.push('-m', String(o.streams))
  if (o.warmup !== undefined) args.push(`--warm-up-time=${o.warmup}`)
  if (o.rps !== undefined) args.push('--rps', String(o.rps))
  if (o.h1) args.push('--h1')
  args.push(url)
  const r = await run('h2load', args, { cpu: ctx.cpu.load, timeoutSeconds: o.seconds + (o.warmup ?? 0) + 30 })
  const out = r.stdout
  const fin = /finished in ([\d.]+)(ms|s), ([\d.]+) req\/s/.exec(out)
  const req = /requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored/.exec(out)
  if (fin === null || req === null) throw new Error(`h2load failed (${String(r.code)}): ${out}\n${r.stderr}`)
  // With --warm-up-time, h2load counts the requests of the main duration only but reports
  // "finished in" warm-up + duration: the rate is over the main duration.
  const seconds = o.warmup !== undefined ? o.seconds : ms(fin[1], fin[2]) / 1000
  const succeeded = Number(req[1])
  const protocol = /Application protocol: (\S+)/.exec(out)?.[1] ?? ''
  return { succeeded, failed: Number(req[2]) + Number(req[3]), seconds, rps: succeeded / seconds, protocol, raw: out }
}

export interface STimeResult { connections: number, seconds: number, rate: number }

/**
 * `openssl s_time -new -tls1_3 -www /`: full handshakes one after another, each with one
 * `GET / HTTP/1.0`. `parallel` copies run at once (all on the load CPU); the rate is their
 * connections over the wall time of the slowest (s_time's own clock has 1 s resolution).
 */
export async function sTime (ctx: Ctx, port: number, o: { seconds: number, parallel: number }): Promise<STimeResult> {
  const runs = await Promise.all(Array.from({ length: o.parallel }, async () =>
    await run('openssl', ['s_time', '-connect', `127.0.0.1:${port}`, '-new', '-tls1_3', '-www', '/', '-time', String(o.seconds)], { cpu: ctx.cpu.load, timeoutSeconds: o.seconds + 30 })))
  let connections = 0
  let seconds = 0
  for (const r of runs) {
    const m = /(\d+) connections in [\d.]+ real seconds, (\d+) bytes read per connection/.exec(r.stdout)
    if (r.code !== 0 || m === null) throw new Error(`openssl s_time failed (${String(r.code)}): ${r.stdout.slice(-500)}\n${r.stderr}`)
    if (Number(m[2]) < 50) throw new Error(`openssl s_time read only ${m[2]} bytes per connection`)
    connections += Number(m[1])
    seconds = Math.max(seconds, r.wallSeconds)
  }
  return { connections, seconds, rate: connections / seconds }
}

/** Run the bench client to completion. */
export async function client (ctx: Ctx, c: ClientConfig, timeoutSeconds?: number): Promise<ClientResult> {
  const limit = timeoutSeconds ?? (c.duration ?? 0) + (c.warmup ?? 0) + 60
  const r = await run(process.execPath, [join(ctx.buildBench, 'lib', 'client.js'), JSON.stringify(c)], { cpu: ctx.cpu.load, timeoutSeconds: limit, raiseNofile: true })
  const line = r.stdout.trim().split('\n').pop() ?? ''
  let parsed: (ClientResult & { error?: string }) | undefined
  try { parsed = JSON.parse(line) as ClientResult & { error?: string } } catch {}
  if (parsed === undefined || parsed.error !== undefined) throw new Error(`bench client failed (${String(r.code)}): ${parsed?.error ?? r.stdout.slice(-500)}\n${r.stderr.slice(-1000)}`)
  return parsed
}

/** Start the bench client in `hold` mode; resolves once the connections are held. */
export async function holdConnections (ctx: Ctx, c: ClientConfig): Promise<{ child: Child, held: number, failed: number, errors: Record<string, number> }> {
  const child = await start('hold-client', process.execPath, [join(ctx.buildBench, 'lib', 'client.js'), JSON.stringify({ ...c, mode: 'hold' })], {
    cpu: ctx.cpu.load, limitSeconds: (c.holdSeconds ?? 120) + 120, raiseNofile: true
  })
  const m = await waitForLine(child, /^(\{"held".*)$/, 120_000)
  const info = JSON.parse(m[1]) as { held: number, failed: number, errors: Record<string, number> }
  return { child, ...info }
}

/** Let a holding client go and wait for it to exit. */
export async function release (child: Child): Promise<void> {
  child.proc.stdin?.write('release\n')
  child.proc.stdin?.end()
  const timer = setTimeout(() => { try { process.kill(child.pid, 'SIGKILL') } catch {} }, 30_000)
  await child.exited
  clearTimeout(timer)
}
