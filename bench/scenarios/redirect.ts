/**
 * 4. Plaintext HTTP sent to the TLS port, answered with a 301 to https, a new connection
 *    each (`Connection: close`): portmux (`http: 'redirect'`) vs nginx's `error_page 497`
 *    redirect and vs @httptoolkit/httpolyglot with the redirect handler of its README;
 *    node:http answering the same 301 on a plaintext port is the Node reference.
 *
 * - saturating: `wrk -t1 -c32 -H 'Connection: close'` (wrk reconnects after every
 *   response); redirects/s;
 * - fixed offered rate: the bench client (`http-new`, status 301 checked) at 1,000/s;
 *   redirects per server CPU-second;
 * - simultaneous: portmux and the node:http 301, both on the server CPU, loaded at the same
 *   instant by one wrk each from the load CPU, so that both see the same machine (frequency,
 *   caches, neighbours); CPU per redirect from the nanoseconds each process's threads spent
 *   on CPU (`/proc/<pid>/task/* /schedstat`).
 */
import { join } from 'node:path'
import type { Row, Scenario } from '../lib/context.js'
import { busyNote, compare, cpuDuring, pause, series, startAll, stopAll, warn } from '../lib/measure.js'
import { alternate } from '../lib/rounds.js'
import { sameInstantRounds } from '../lib/same-cpu.js'
import { median } from '../lib/stats.js'
import { startNginxRedirect, startNode } from '../lib/servers.js'
import { client, wrk, type WrkResult } from '../lib/tools.js'

const RATE = 1000

interface Simultaneous { requests: number, errors: number, usPerRedirect: number }

export const redirect: Scenario = {
  id: 'redirect',
  title: '4. Plaintext → https redirects (new connection each)',
  method: 'Plain HTTP sent to the TLS port, answered 301 with `Connection: close`. portmux `http: \'redirect\'`; nginx `listen … ssl` + `error_page 497 =301 https://$host:$server_port$request_uri` (one process, `master_process off`, no access log); @httptoolkit/httpolyglot with its README\'s redirect handler; node:http on a plaintext port with the same 301 as the Node floor. Saturating: `wrk -t1 -c32 -H \'Connection: close\'`. Fixed rate: bench client `http-new` at 1,000/s (status 301 checked); redirects per server CPU-second. Simultaneous: portmux and the node:http 301 loaded at the same instant, one wrk each, both servers on CPU 1 and both wrk on CPU 0; CPU per redirect from /proc/<pid>/task/*/schedstat.',
  run: async (ctx) => {
    const notes: string[] = []
    const plan = ctx.plan
    const profile = ctx.profileDir !== null
    const module = join(ctx.depsDir, 'node_modules', '@httptoolkit', 'httpolyglot', 'dist', 'index.js')
    const servers = await startAll([
      ['portmux', async () => await startNode(ctx, 'portmux', 'portmux-fastify.js', { tls: ctx.tls, http: 'redirect' }, { profile })],
      ['nginx error_page 497', async () => await startNginxRedirect(ctx)],
      ['httpolyglot', async () => await startNode(ctx, 'httpolyglot', 'httpolyglot.js', { tls: ctx.tls, module }, { profile })],
      ['node:http, plain port', async () => await startNode(ctx, 'node-redirect', 'node-baseline.js', { mode: 'redirect' }, { profile })]
    ])
    const names = [...servers.keys()]
    const port = (name: string): number => servers.get(name)?.port ?? 0
    const pid = (name: string): number | null => servers.get(name)?.child.pid ?? null
    try {
      for (const name of names) {
        const check = await client(ctx, { mode: 'http-new', port: port(name), count: 1, expectStatus: 301, path: '/a?b=1' })
        if (check.completed !== 1) throw new Error(`${name}: redirect check failed: ${JSON.stringify(check)}`)
        await wrk(ctx, `http://127.0.0.1:${port(name)}/`, { connections: 32, seconds: 1, headers: ['Connection: close'] })
      }

      const node = 'node:http, plain port'
      ctx.log(`  simultaneous: portmux and ${node} loaded at once (wrk -t1 -c32 Connection: close each, ${plan.satSeconds} s), ${plan.rounds} rounds`)
      const pair = ['portmux', node]
      const together = (await sameInstantRounds<WrkResult, Simultaneous>({
        names: pair,
        pids: pair.map(pid),
        rounds: plan.rounds,
        load: async (name) => await wrk(ctx, `http://127.0.0.1:${port(name)}/`, { connections: 32, seconds: plan.satSeconds, headers: ['Connection: close'] }),
        measure: (name, r, ns) => {
          const errors = r.errors + r.badStatus
          if (errors > 0) warn(ctx, `${name}: wrk saw ${errors} errors or bad statuses (simultaneous)`, notes)
          return { requests: r.requests, errors, usPerRedirect: ns / 1000 / r.requests }
        },
        cpus: ctx.cpu,
        pause,
        log: ctx.log
      })).byName

      ctx.log(`  saturating: wrk -t1 -c32 -H 'Connection: close' -d${plan.satSeconds}s, ${plan.rounds} rounds`)
      const sat = await alternate(names, plan.rounds, async (name) => {
        const { result, cpu, serverBusy, loadBusy } = await cpuDuring(pid(name), async () => await wrk(ctx, `http://127.0.0.1:${port(name)}/`, { connections: 32, seconds: plan.satSeconds, headers: ['Connection: close'] }))
        if (result.errors > 0 || result.badStatus > 0) warn(ctx, `${name}: wrk saw ${result.errors} socket errors, ${result.badStatus} bad statuses`, notes)
        await pause()
        return { rps: result.rps, cpuUsPerReq: cpu / result.requests * 1e6, serverBusy, loadBusy }
      }, ctx.log)

      const peers = names.slice(1)
      const rows: Row[] = []
      const figures: Record<string, number> = {}
      rows.push(compare({
        item: '4',
        what: `Plain HTTP → 301, new connection each, both servers on one CPU and loaded at the same instant (wrk -t1 -c32 Connection: close each, ${plan.satSeconds} s)`,
        figure: 'server CPU per redirect (µs, schedstat)',
        subject: 'portmux',
        peer: node,
        a: series(together, 'portmux', (r) => r.usPerRedirect),
        b: series(together, node, (r) => r.usPerRedirect),
        better: 'lower',
        unit: 'µs',
        target: 0.8,
        digits: 1
      }))
      figures['portmux.simultaneousUsPerRedirect'] = median(series(together, 'portmux', (r) => r.usPerRedirect))
      for (const peer of peers) {
        rows.push(compare({
          item: '4',
          what: `Plain HTTP → 301, new connection each, saturating (wrk -t1 -c32 Connection: close, ${plan.satSeconds} s)`,
          figure: 'redirects/s',
          subject: 'portmux',
          peer,
          a: series(sat, 'portmux', (r) => r.rps),
          b: series(sat, peer, (r) => r.rps),
          better: 'higher',
          note: busyNote(sat, ['portmux', peer])
        }))
      }
      if (profile) return { rows, notes, raw: { simultaneous: Object.fromEntries(together), saturating: Object.fromEntries(sat) }, figures }

      ctx.log(`  fixed rate: bench client http-new at ${RATE}/s, ${plan.rateSeconds} s, ${plan.rounds} rounds`)
      const fixed = await alternate(names, plan.rounds, async (name) => {
        const { result, cpu } = await cpuDuring(pid(name), async () => await client(ctx, { mode: 'http-new', port: port(name), rate: RATE, duration: plan.rateSeconds, maxInFlight: 128, expectStatus: 301 }))
        if (result.failed > 0 || result.missed > 0) warn(ctx, `${name}: ${result.failed} failed, ${result.missed} missed (${JSON.stringify(result.errors)})`, notes)
        await pause()
        return { perCpuSecond: result.completed / cpu, cpuUsPerReq: cpu / result.completed * 1e6 }
      }, ctx.log)
      for (const peer of peers) {
        rows.push(compare({
          item: '4',
          what: `Plain HTTP → 301, new connection each, server CPU at ${RATE}/s offered (bench client, ${plan.rateSeconds} s)`,
          figure: 'redirects per server CPU-second',
          subject: 'portmux',
          peer,
          a: series(fixed, 'portmux', (r) => r.perCpuSecond),
          b: series(fixed, peer, (r) => r.perCpuSecond),
          better: 'higher',
          note: `server CPU per redirect (µs): ${series(fixed, 'portmux', (r) => r.cpuUsPerReq).map((x) => x.toFixed(0)).join('/')} vs ${series(fixed, peer, (r) => r.cpuUsPerReq).map((x) => x.toFixed(0)).join('/')}`
        }))
      }
      const cpu = series(fixed, 'portmux', (r) => r.cpuUsPerReq).sort((x, y) => x - y)
      figures['portmux.cpuUsPerConn'] = cpu.length > 0 ? cpu[cpu.length >> 1] : NaN
      return { rows, notes, raw: { simultaneous: Object.fromEntries(together), saturating: Object.fromEntries(sat), fixedRate: Object.fromEntries(fixed) }, figures }
    } finally {
      await stopAll(servers)
    }
  }
}
