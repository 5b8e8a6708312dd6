/**
 * 8. The sniffer micro-benchmarks of bench/sniff.ts (run as it is, compiled, pinned to the
 *    server CPU), in the same table. Each figure is also given as a ratio: its ns/op over
 *    the server CPU that the matching whole connection cost portmux in this run (new TLS
 *    connection: item 3; redirect: item 4; proxied connection: item 5), i.e. the share of
 *    a connection's CPU that the sniffing takes.
 */
import { join } from 'node:path'
import type { Ctx, Row, Scenario } from '../lib/context.js'
import { run } from '../lib/proc.js'
import { fmt, spread } from '../lib/stats.js'

interface SniffCase { name: string, bytes: number, opsPerSecond: number, nsPerOp: number, heap: string, arrayBuffers: string }

export function parseSniffOutput (out: string): SniffCase[] {
  const cases: SniffCase[] = []
  const lines = out.split('\n')
  const start = lines.findIndex((l) => /^-+(\s+-+)+\s*$/.test(l))
  if (start < 0) return cases
  for (const line of lines.slice(start + 1)) {
    if (line.trim() === '') break
    const cells = line.trim().split(/\s{2,}/)
    if (cells.length < 4) continue
    const num = (s: string): number => Number(s.replace(/,/g, ''))
    cases.push({ name: cells[0], bytes: num(cells[1]), opsPerSecond: num(cells[2]), nsPerOp: num(cells[3]), heap: cells[4] ?? '', arrayBuffers: cells[5] ?? '' })
  }
  return cases
}

function reference (ctx: Ctx, name: string): { label: string, us: number } {
  const fig = (id: string): number => ctx.results.get(id)?.figures['portmux.cpuUsPerConn'] ?? NaN
  if (/tls|ClientHello/i.test(name)) return { label: 'portmux CPU per new TLS connection (item 3)', us: fig('tls-handshake') }
  if (/http/i.test(name)) return { label: 'portmux CPU per redirect (item 4)', us: fig('redirect') }
  return { label: 'portmux CPU per proxied connection (item 5)', us: fig('proxy') }
}

export const sniffers: Scenario = {
  id: 'sniffers',
  title: '8. Sniffer micro-benchmarks (bench/sniff.ts)',
  method: '`node build/bench/sniff.js` as it is (pinned to the server CPU). The ratio is the case\'s ns/op over the server CPU per connection that portmux spent in this run on the matching path (item 3 for TLS, 4 for HTTP, 5 for the rest).',
  run: async (ctx) => {
    const notes: string[] = []
    const r = await run(process.execPath, [join(ctx.buildBench, 'sniff.js')], { cpu: ctx.cpu.server, timeoutSeconds: 300 })
    const cases = parseSniffOutput(r.stdout)
    if (r.code !== 0 || cases.length === 0) {
      notes.push(`bench/sniff.js did not produce its table (exit ${String(r.code)}):\n\n\`\`\`\n${(r.stdout + r.stderr).slice(-2000)}\n\`\`\``)
      return { rows: [], notes, raw: { stdout: r.stdout, stderr: r.stderr }, figures: {} }
    }
    const rows: Row[] = cases.map((c) => {
      const ref = reference(ctx, c.name)
      const share = c.nsPerOp / (ref.us * 1000)
      return {
        item: '8',
        what: `sniff: ${c.name}`,
        figure: 'ns/op (share of the connection\'s server CPU)',
        subject: 'portmux sniffer',
        subjectValue: `${fmt(c.nsPerOp)} ns (${fmt(c.opsPerSecond / 1e6, 2)} M ops/s, heap ${c.heap} B/op, arrayBuffers ${c.arrayBuffers} B/op)`,
        peer: ref.label,
        peerValue: Number.isFinite(ref.us) ? `${fmt(ref.us, 0)} µs` : 'not measured in this run',
        ratio: Number.isFinite(share) ? spread([share]) : null,
        better: 'lower'
      }
    })
    notes.push('```\n' + r.stdout.trim() + '\n```')
    return { rows, notes, raw: { cases, stdout: r.stdout }, figures: {} }
  }
}
