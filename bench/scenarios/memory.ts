/**
 * 7. Memory: the server child's RSS before and after opening N connections, per connection.
 *
 * - idle sniffing connections (connected, silent: portmux holds them in the sniffing state,
 *   with `sniffTimeout` and `maxPending` raised so that none is closed meanwhile) vs a
 *   plain `net.Server` that accepts and holds sockets, and vs httpolyglot (also waiting
 *   for a first byte);
 * - open proxied connections (the hello line echoed back through the proxy, so the
 *   upstream side is connected too) vs the naive Node pipe, HAProxy and nginx stream.
 *   sslh-select cannot hold them: it aborts at about 510 forwarded connections
 *   (FD_SETSIZE; see ANCHORS.md).
 *
 * Each run starts a fresh server, opens and closes 200 connections to warm it up, reads
 * VmRSS, opens N connections, waits until the server holds their descriptors, lets it
 * settle 1.5 s, reads VmRSS again. A proxy needs two descriptors per connection, so N is
 * capped below half the hard open-files limit children get (`ulimit -Hn`).
 */
import { join } from 'node:path'
import type { Row, Scenario } from '../lib/context.js'
import { compare, pause, series, warn } from '../lib/measure.js'
import { fdCount, hardNofile, rssKiB, sleep, stop } from '../lib/proc.js'
import { alternate } from '../lib/rounds.js'
import { startNode, startProxy, startUpstream, type ProxyName, type Running } from '../lib/servers.js'
import { fmt } from '../lib/stats.js'
import { holdConnections, release } from '../lib/tools.js'
import { label } from './proxy.js'

interface MemRound { kibPerConn: number, held: number, rss0: number, rss1: number }

async function measure (ctx: Parameters<Scenario['run']>[0], server: Running, port: number, n: number, confirm: boolean, fdsPerConn: number, notes: string[]): Promise<MemRound> {
  const pid = server.child.pid
  const warm = await holdConnections(ctx, { mode: 'hold', port, count: 200, confirm, parallel: 50, holdSeconds: 30 })
  await release(warm.child)
  await sleep(1000)
  const fd0 = fdCount(pid)
  const rss0 = rssKiB(pid)
  const h = await holdConnections(ctx, { mode: 'hold', port, count: n, confirm, parallel: 200, holdSeconds: 120, timeoutMs: 30_000 })
  try {
    if (h.failed > 0) warn(ctx, `${server.name}: ${h.failed} of ${n} connections failed (${JSON.stringify(h.errors)})`, notes)
    const want = fd0 + Math.floor(h.held * fdsPerConn * 0.99)
    const end = Date.now() + 20_000
    while (fdCount(pid) < want && Date.now() < end) await sleep(100)
    await sleep(1500)
    const fds = fdCount(pid) - fd0
    if (fds < h.held * fdsPerConn * 0.99) warn(ctx, `${server.name}: holds ${fds} descriptors for ${h.held} connections`, notes)
    const rss1 = rssKiB(pid)
    return { kibPerConn: (rss1 - rss0) / h.held, held: h.held, rss0, rss1 }
  } finally {
    await release(h.child)
  }
}

export const memory: Scenario = {
  id: 'memory',
  title: '7. Memory per connection',
  method: 'Fresh server per run; 200 connections opened and closed to warm it up; VmRSS read; N connections opened by the bench client and held (idle: connected and silent — portmux keeps them in the sniffing state, `sniffTimeout` 600 s and `maxPending` 50,000 for this; proxied: hello line echoed back through the proxy); wait until the server holds their descriptors, settle 1.5 s, VmRSS again. Figure: (RSS after − RSS before) / N. The children\'s open-files soft limit is raised to the hard limit (`ulimit -n $(ulimit -Hn)`).',
  run: async (ctx) => {
    const notes: string[] = []
    const plan = ctx.plan
    const rows: Row[] = []
    const limit = hardNofile()
    const nIdle = Math.min(plan.memConnections, limit - 200)
    const nProxied = Math.min(plan.memConnections, Math.floor((limit - 200) / 2))
    if (nProxied < plan.memConnections) notes.push(`Proxied connections capped at ${fmt(nProxied)} (not ${fmt(plan.memConnections)}): the hard open-files limit here is ${fmt(limit)} and a proxy needs two descriptors per connection; \`prlimit\`/\`ulimit -n\` cannot raise a hard limit without CAP_SYS_RESOURCE.`)
    const module = join(ctx.depsDir, 'node_modules', '@httptoolkit', 'httpolyglot', 'dist', 'index.js')

    // ---- idle sniffing connections ----------------------------------------------
    const idleStarters: Record<string, () => Promise<Running>> = {
      portmux: async () => await startNode(ctx, 'portmux', 'portmux-proxy.js', { tls: ctx.tls, upstream: 9, sniffTimeout: 600_000, maxPending: 50_000 }),
      'node net.Server': async () => await startNode(ctx, 'node-idle', 'node-baseline.js', { mode: 'idle' }),
      httpolyglot: async () => await startNode(ctx, 'httpolyglot', 'httpolyglot.js', { tls: ctx.tls, module })
    }
    ctx.log(`  idle: ${fmt(nIdle)} silent connections, ${plan.memRounds} rounds`)
    const idle = await alternate(Object.keys(idleStarters), plan.memRounds, async (name) => {
      const server = await idleStarters[name]()
      try {
        return await measure(ctx, server, server.port, nIdle, false, 1, notes)
      } finally {
        await stop(server.child)
        await pause(500)
      }
    }, ctx.log)
    for (const peer of ['node net.Server', 'httpolyglot']) {
      rows.push(compare({
        item: '7',
        what: `RSS per idle connection being sniffed (${fmt(nIdle)} held)`,
        figure: 'KiB/connection',
        subject: 'portmux',
        peer,
        a: series(idle, 'portmux', (r) => r.kibPerConn),
        b: series(idle, peer, (r) => r.kibPerConn),
        better: 'lower',
        unit: 'KiB',
        digits: 2
      }))
    }

    // ---- open proxied connections -----------------------------------------------
    const upstream = await startUpstream(ctx)
    const proxied: ProxyName[] = ['portmux', 'node-pipe', 'haproxy', 'nginx']
    let prox: Map<string, MemRound[]>
    try {
      ctx.log(`  proxied: ${fmt(nProxied)} open connections, ${plan.memRounds} rounds`)
      prox = await alternate(proxied, plan.memRounds, async (name) => {
        const server = await startProxy(ctx, name as ProxyName, upstream.ports.echo)
        try {
          return await measure(ctx, server, server.port, nProxied, true, 2, notes)
        } finally {
          await stop(server.child)
          await pause(500)
        }
      }, ctx.log)
    } finally {
      await stop(upstream.child)
    }
    for (const peer of proxied.slice(1)) {
      rows.push(compare({
        item: '7',
        what: `RSS per open proxied connection (${fmt(nProxied)} held)`,
        figure: 'KiB/connection',
        subject: 'portmux',
        peer: label(peer),
        a: series(prox, 'portmux', (r) => r.kibPerConn),
        b: series(prox, peer, (r) => r.kibPerConn),
        better: 'lower',
        unit: 'KiB',
        digits: 2
      }))
    }
    notes.push('sslh-select: not measured at this scale — it aborts at about 510 forwarded connections (glibc FD_SETSIZE), see ANCHORS.md.')
    return { rows, notes, raw: { idle: Object.fromEntries(idle), proxied: Object.fromEntries(prox) }, figures: {} }
  }
}
