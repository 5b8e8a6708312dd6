/**
 * Zero-drop restarts, measured: a client opens connections without pause (new
 * connections only, mixed HTTPS/1.1, HTTPS/2, plain HTTP answered by the redirect, and the
 * raw ECHO route) while every server process is replaced, one at a time, again and again.
 * Every connection is checked end to end; failures are counted by error code.
 *
 *   npm run build && node build/bench/cluster-restart.js [options]
 *
 *   (default)          node:cluster through `portmux/cluster`: rolling restarts of the workers
 *   --reuse-port       N independent processes listening with `reusePort: true` (Node >= 22.12),
 *                      replaced one by one: the new one listens, then the old one closes
 *   --workers=N        processes (default 2)
 *   --connections=N    connections in all (default 12000)
 *   --concurrency=N    connections at once (default 32)
 *   --pause=MS         pause between two rolling restarts (default 250)
 *   --fastify-503      keep Fastify's default `return503OnClosing: true`
 *   --timeout=S        watchdog: end everything after S seconds (default 600)
 *
 * Traffic goes to 127.0.0.1 only; the run is bounded by --connections and the watchdog.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import net, { type AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import Fastify, { type FastifyInstance } from 'fastify'
import portmux, { serverFactory } from 'portmux'
import { runCluster, type RestartReport } from 'portmux/cluster'
import { startLoad, type LoadResult } from '../test/cluster/load.js'
import { arg, num } from './lib/args.js'

const self = fileURLToPath(import.meta.url)
const role = arg('role') ?? 'main'

// ---- the app, as a user would write it -------------------------------------------

async function buildApp (listen: { port: number, host: string, reusePort?: boolean }): Promise<FastifyInstance> {
  const app = Fastify({
    return503OnClosing: arg('fastify-503') !== undefined,
    serverFactory: serverFactory({ tls: 'dev', http: 'redirect' })
  })
  await app.register(portmux)
  app.get('/', async (request) => ({ protocol: request.protocol, pid: process.pid }))
  app.tcp('echo', {
    match: { prefix: 'ECHO ' },
    handler: (socket) => {
      socket.on('error', () => socket.destroy())
      socket.pipe(socket)
    }
  })
  // Silence the development-certificate warning: it is expected here.
  process.removeAllListeners('warning')
  await app.listen(listen)
  return app
}

// ---- --role=cluster: the primary (and its workers) under portmux/cluster -----------

async function clusterRole (): Promise<void> {
  const c = await runCluster({
    workers: num('workers', 2),
    signals: false,
    onEvent: (e) => {
      if (e.type === 'exit' && !e.expected) process.stderr.write(`unexpected exit of worker ${e.pid}\n`)
      if (e.type === 'error') process.stderr.write(`${e.error.message}\n`)
    },
    start: async () => await buildApp({ port: 0, host: '127.0.0.1' })
  })
  if (!c.isPrimary) return
  // The driver gone (crashed, killed): take the workers down with this primary.
  process.once('disconnect', () => { c.stop().then(() => process.exit(0), () => process.exit(1)) })
  process.send?.({ port: c.addresses[0].port, pids: c.pids() })
  process.on('message', (m: { cmd?: string }) => {
    if (m.cmd === 'restart') {
      c.restart().then((report) => process.send?.({ report, pids: c.pids() }), (err: Error) => process.send?.({ error: err.message }))
    } else if (m.cmd === 'stop') {
      c.stop().then(() => process.exit(0), () => process.exit(1))
    }
  })
}

// ---- --role=reuseport: one independent process with reusePort ----------------------

async function reusePortRole (): Promise<void> {
  const app = await buildApp({ port: num('port', 0), host: '127.0.0.1', reusePort: true })
  process.once('disconnect', () => { app.close().then(() => process.exit(0), () => process.exit(1)) })
  process.send?.({ port: (app.server.address() as AddressInfo).port })
  process.once('message', () => {
    // The same retirement as a cluster worker's: stop accepting and let the connections
    // already accepted send their first request (when the server can), then close.
    const mux = app.portmux as unknown as { quiesce?: () => Promise<void> }
    Promise.resolve(mux.quiesce?.())
      .then(async () => { await app.close() })
      .then(() => process.exit(0), () => process.exit(1))
  })
}

/** Whether this Node binds two sockets to one port with `reusePort` (Node >= 22.12 / 23.1 on Linux). */
async function reusePortSupported (): Promise<boolean> {
  const [major, minor] = process.versions.node.split('.').map(Number)
  if (major < 22 || (major === 22 && minor < 12)) return false
  const a = net.createServer()
  const b = net.createServer()
  try {
    a.listen({ port: 0, host: '127.0.0.1', reusePort: true } as net.ListenOptions)
    await once(a, 'listening')
    b.listen({ port: (a.address() as AddressInfo).port, host: '127.0.0.1', reusePort: true } as net.ListenOptions)
    await once(b, 'listening')
    return true
  } catch {
    return false
  } finally {
    a.close()
    b.close()
  }
}

// ---- main: drive the load and the restarts ----------------------------------------

const children = new Set<ChildProcess>()

function spawnRole (args: string[]): ChildProcess {
  const child = fork(self, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  children.add(child)
  child.once('exit', () => children.delete(child))
  return child
}

async function message<T> (child: ChildProcess): Promise<T> {
  const [m] = await once(child, 'message') as [T]
  return m
}

interface Driver {
  port: number
  /** Replace every server process, one at a time; per process, ms until the new one was ready and until the old one had exited. */
  restart (): Promise<Array<{ readyMs: number, drainMs: number }>>
  stop (): Promise<void>
}

async function clusterDriver (workers: number): Promise<Driver> {
  const primary = spawnRole(['--role=cluster', `--workers=${workers}`, ...process.argv.slice(2).filter((a) => a === '--fastify-503')])
  const { port } = await message<{ port: number }>(primary)
  return {
    port,
    restart: async () => {
      primary.send({ cmd: 'restart' })
      const m = await message<{ report?: RestartReport, error?: string }>(primary)
      if (m.report === undefined) throw new Error(`restart failed: ${m.error ?? '?'}`)
      return m.report.replaced.map((r) => ({ readyMs: r.readyMs, drainMs: r.drainMs }))
    },
    stop: async () => {
      primary.send({ cmd: 'stop' })
      if (primary.exitCode === null) await once(primary, 'exit')
    }
  }
}

async function reusePortDriver (n: number): Promise<Driver> {
  const extra = process.argv.slice(2).filter((a) => a === '--fastify-503')
  const first = spawnRole(['--role=reuseport', ...extra])
  const { port } = await message<{ port: number }>(first)
  const procs = [first]
  for (let i = 1; i < n; i++) {
    const p = spawnRole(['--role=reuseport', `--port=${port}`, ...extra])
    await message(p)
    procs.push(p)
  }
  const retire = async (p: ChildProcess): Promise<void> => {
    if (p.exitCode !== null) return
    const exited = once(p, 'exit')
    p.send('close')
    await exited
  }
  return {
    port,
    restart: async () => {
      const out: Array<{ readyMs: number, drainMs: number }> = []
      for (let i = 0; i < procs.length; i++) {
        const t0 = Date.now()
        const fresh = spawnRole(['--role=reuseport', `--port=${port}`, ...extra])
        await message(fresh)
        const t1 = Date.now()
        await retire(procs[i])
        procs[i] = fresh
        out.push({ readyMs: t1 - t0, drainMs: Date.now() - t1 })
      }
      return out
    },
    stop: async () => { await Promise.all(procs.map(retire)) }
  }
}

function printResult (mode: string, load: LoadResult, restarts: Array<Array<{ readyMs: number, drainMs: number }>>): void {
  const flat = restarts.flat()
  const median = (xs: number[]): number => xs.length === 0 ? 0 : [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
  console.log(`\n== ${mode} — Node ${process.versions.node}`)
  console.log(`connections: attempted ${load.attempted}, succeeded ${load.succeeded}, failed ${load.failed} in ${(load.durationMs / 1000).toFixed(1)} s`)
  for (const [kind, c] of Object.entries(load.byKind)) console.log(`  ${kind.padEnd(8)} ok ${c.ok}, failed ${c.failed}`)
  if (load.failed > 0) {
    console.log('failures by code:')
    for (const [code, n] of Object.entries(load.errors).sort((a, b) => b[1] - a[1])) console.log(`  ${code}: ${n}`)
    for (const s of load.samples) console.log(`  e.g. ${s}`)
  }
  console.log(`rolling restarts: ${restarts.length} (${flat.length} processes replaced)`)
  if (flat.length > 0) {
    console.log(`  per process: new one ready in median ${median(flat.map((r) => r.readyMs))} ms (max ${Math.max(...flat.map((r) => r.readyMs))}), ` +
      `old one drained and exited in median ${median(flat.map((r) => r.drainMs))} ms (max ${Math.max(...flat.map((r) => r.drainMs))})`)
  }
}

async function main (): Promise<void> {
  const reuse = arg('reuse-port') !== undefined
  const workers = num('workers', 2)
  const connections = num('connections', 12_000)
  const concurrency = num('concurrency', 32)
  const pause = num('pause', 250)
  const watchdog = setTimeout(() => {
    console.error('watchdog: the run took too long; ending it')
    for (const c of children) c.kill('SIGKILL')
    process.exit(2)
  }, num('timeout', 600) * 1000)
  watchdog.unref()

  if (reuse && !(await reusePortSupported())) {
    console.log(`--reuse-port: this Node (${process.versions.node}) cannot bind two sockets to one port with reusePort (it needs Node >= 22.12 or 23.1 on Linux); nothing measured.`)
    return
  }
  const mode = reuse ? `reusePort, ${workers} independent processes` : `node:cluster (portmux/cluster), ${workers} workers`
  const driver = reuse ? await reusePortDriver(workers) : await clusterDriver(workers)
  try {
    const load = startLoad({ port: driver.port, concurrency, max: connections })
    const restarts: Array<Array<{ readyMs: number, drainMs: number }>> = []
    let finished = false
    void load.done.then(() => { finished = true })
    // Let the load reach its pace, then restart everything, again and again, until the load is done.
    await new Promise((resolve) => setTimeout(resolve, 500))
    while (!finished) {
      restarts.push(await driver.restart())
      if (!finished) await new Promise((resolve) => setTimeout(resolve, pause))
    }
    printResult(mode, await load.done, restarts)
  } finally {
    await driver.stop()
    clearTimeout(watchdog)
  }
}

if (role === 'cluster') await clusterRole()
else if (role === 'reuseport') await reusePortRole()
else await main()
