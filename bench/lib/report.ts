/** BENCHMARKS.md: the machine, one table of ratios, and per-scenario method and notes. */
import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { Plan, Row, ScenarioResult } from './context.js'
import type { Environment } from './env.js'
import { fmt } from './stats.js'

function cell (s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\n/g, ' ')
}

function ratioCell (r: Row): string {
  if (r.ratio === null || !Number.isFinite(r.ratio.median)) return 'n/a'
  const d = r.item === '8' ? 4 : 2
  const m = r.ratio.median.toFixed(d)
  return r.ratio.n > 1 ? `**${m}** (${r.ratio.min.toFixed(d)}–${r.ratio.max.toFixed(d)}, n=${r.ratio.n})` : `**${m}**`
}

function targetCell (r: Row): string {
  if (r.target === undefined) return ''
  return `${r.better === 'lower' ? '≤' : '≥'} ${String(r.target)}`
}

function verdict (r: Row, quick: boolean): string {
  if (r.target === undefined || r.ratio === null || !Number.isFinite(r.ratio.median)) return ''
  const ok = r.better === 'lower' ? r.ratio.median <= r.target : r.ratio.median >= r.target
  return `${ok ? 'meets' : 'MISSES'}${quick ? ' (smoke)' : ''}`
}

export interface ReportInput {
  plan: Plan
  env: Environment
  loadAfter: string
  started: Date
  seconds: number
  pinning: string
  results: ScenarioResult[]
  failures: Array<{ id: string, title: string, error: string }>
  rawFile: string
  command: string
}

export function renderReport (o: ReportInput): string {
  const e = o.env
  const out: string[] = []
  out.push('# portmux benchmarks', '')
  if (o.plan.quick) {
    out.push(`> **SMOKE RUN (\`--quick\`)** — ${o.plan.rounds} alternating and ${o.plan.sameRounds} same-instant rounds, 2-second runs. These figures only show that every`,
      '> scenario runs end to end; they are not results. Run `npm run bench` (the full run) on a quiet machine.', '')
  }
  out.push(`Written by \`${o.command}\` (bench/run.ts) on ${o.started.toISOString().replace(/\.\d+Z$/, 'Z')}, in ${Math.round(o.seconds / 60)} min.`,
    'Every figure is a **ratio measured side by side in this one run**, portmux (the subject) over its peer, by one of two methods',
    'named in each row:',
    `- **alternating rounds** — one contender loaded at a time, the order rotating (A B, B A, …; ${o.plan.rounds} rounds for items 1–4,`,
    `  ${o.plan.bulkRounds} for the proxy items 5–6, ${o.plan.memRounds} for memory);`,
    `- **same core, same instant** — every contender pinned to the one server CPU and loaded at the same moment by its own identical`,
    `  load tool on the load CPU (${o.plan.sameRounds} rounds for items 1–4, ${o.plan.bulkRounds} for 5b), CPU in nanoseconds from schedstat; background noise falls on`,
    '  all contenders at once, so these ratios hold still where alternating ones swing.',
    'Either way the ratio is the median of the per-round ratios (min–max and the number of rounds in brackets). Absolute numbers are',
    'given for reading the ratios only: they drift by up to 25 % between runs on this kind of machine (see /work/shared/ANCHORS.md)',
    'and must not be compared across runs.', '')

  out.push('## Machine', '')
  out.push('| | |', '|---|---|')
  out.push(`| CPUs (nproc) | ${e.nproc} × ${cell(e.cpuModel)} |`)
  out.push(`| RAM | ${e.memGiB.toFixed(1)} GiB |`)
  out.push(`| OS, kernel | ${cell(e.os)}, ${e.kernel} |`)
  out.push(`| Node | ${e.node} |`)
  out.push(`| portmux | ${cell(e.portmux)} |`)
  out.push(`| fastify | ${e.fastify} |`)
  for (const [k, v] of Object.entries(e.versions)) out.push(`| ${cell(k)} | ${cell(v)} |`)
  out.push(`| pinning | ${cell(o.pinning)} |`)
  out.push(`| load average (1, 5, 15 min) | before ${e.loadBefore}; after ${o.loadAfter} |`)
  out.push('')

  out.push('## Results', '')
  out.push('`better`: which way of the ratio is good for portmux (or for the subject). `target`: from the issue, for the ratio subject ÷ peer.', '')
  out.push('| # | what | figure | subject | value | peer | value | ratio subject ÷ peer | better | target | verdict | note |')
  out.push('|---|---|---|---|---|---|---|---|---|---|---|---|')
  for (const r of o.results.flatMap((x) => x.rows)) {
    out.push(`| ${r.item} | ${cell(r.what)} | ${cell(r.figure)} | ${cell(r.subject)} | ${cell(r.subjectValue)} | ${cell(r.peer)} | ${cell(r.peerValue)} | ${ratioCell(r)} | ${r.better} | ${targetCell(r)} | ${verdict(r, o.plan.quick)} | ${cell(r.note ?? '')} |`)
  }
  for (const f of o.failures) out.push(`| ${f.title.split('.')[0]} | ${cell(f.title)} | — | — | — | — | — | FAILED | | | | ${cell(f.error.slice(0, 300))} |`)
  out.push('')

  out.push('## How each figure was measured', '')
  for (const r of o.results) {
    out.push(`### ${r.title}`, '', r.method, '', `Took ${fmt(r.seconds, 0)} s.`, '')
    for (const n of r.notes) out.push(n.startsWith('```') ? n : `- ${n}`)
    if (r.notes.length > 0) out.push('')
  }
  for (const f of o.failures) out.push(`### ${f.title}`, '', '```', f.error, '```', '')

  out.push('## Method, common to all', '',
    '- Each server under test and each peer runs in its own process; with `taskset` available, servers and proxies run on CPU 1 and',
    '  load tools, the bench client and the upstreams on CPU 0. HAProxy runs with `nbthread 1`, nginx with one process',
    '  (`master_process off`, `worker_processes 1`), sslh-select is single-threaded by design — one each, like one Node process.',
    '- Server CPU is the time on CPU of the server process (all its threads): utime+stime from /proc/<pid>/stat (10 ms ticks),',
    '  or, where the figure says schedstat, the nanoseconds of /proc/<pid>/task/*/schedstat — read before and after each run,',
    '  or over a window inside a load tool\'s measured period. At a fixed offered rate well under saturation it is steadier than',
    '  saturating throughput, so each saturating figure is paired with a "per server CPU-second" figure at a fixed rate; on one',
    '  pinned core, the latter is the throughput the server would reach if the CPU were the only limit.',
    '- Same instant: with both (or all) contenders saturated on the one core, the scheduler gives each an equal share, so the',
    '  ratio of their throughputs is the ratio of their efficiency; the rows note each one\'s share of the core.',
    '- Traffic goes to 127.0.0.1 only. Every child runs under `timeout -s KILL`, every load is bounded in time and count, and',
    '  the harness kills every child it started when it ends.',
    `- Raw per-round figures: \`${o.rawFile}\`.`, '')
  // The reading of the figures — where portmux misses and what bounds it — is written by hand
  // in bench/ANALYSIS.md and carried into every report.
  const analysis = fileURLToPath(new URL('../../../bench/ANALYSIS.md', import.meta.url))
  if (existsSync(analysis)) out.push(readFileSync(analysis, 'utf8'))
  return out.join('\n')
}
