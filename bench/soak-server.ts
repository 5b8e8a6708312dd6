/**
 * The server half of `npm run soak` (started by `bench/soak.ts`, never by hand): a portmux
 * server in a process of its own, so that its memory and its active handles are measured
 * apart from the load generator's.
 *
 *     node build/bench/soak-server.js --upstream-port N [--sniff-timeout ms]
 *
 * It serves, on one port of 127.0.0.1: HTTPS (HTTP/1.1 and h2, a development certificate),
 * plaintext HTTP redirected to https, a raw `ECHO ` route that echoes, and a `BULK ` route
 * proxied to the upstream the parent runs. It talks to the parent over the IPC channel:
 *
 * - it sends `{ type: 'ready', port, sample }` once listening (the sample is the baseline);
 * - `{ type: 'sample', gc? }` asks for `{ type: 'sample', sample }`: `stats()`, memory and
 *   `process.getActiveResourcesInfo()` counted by kind (after a full GC when `gc` is set);
 * - `{ type: 'stop' }` closes the server (connections still open are destroyed) and exits.
 *
 * It exits by itself when the parent goes away (the IPC channel closes).
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { createServer } from '../src/node.js'
import { devCertificate } from '../src/dev-certificate.js'
import type { MuxStats } from '../src/types.js'

export interface Sample {
  stats: MuxStats
  rss: number
  heapUsed: number
  /** `process.getActiveResourcesInfo()`, counted by kind. */
  resources: Record<string, number>
}

export type ToServer = { type: 'sample', gc?: boolean } | { type: 'stop' }
export type FromServer =
  | { type: 'ready', port: number, sample: Sample }
  | { type: 'sample', sample: Sample }
  | { type: 'stopped' }

function flag (name: string, fallback: number): number {
  const i = process.argv.indexOf(name)
  const value = i === -1 ? Number.NaN : Number(process.argv[i + 1])
  return Number.isFinite(value) ? value : fallback
}

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

function resources (): Record<string, number> {
  const out: Record<string, number> = {}
  for (const kind of process.getActiveResourcesInfo()) out[kind] = (out[kind] ?? 0) + 1
  return out
}

function send (message: FromServer): void {
  process.send?.(message)
}

function handler (req: IncomingMessage, res: ServerResponse): void {
  let length = 0
  req.on('data', (c: Buffer) => { length += c.length })
  req.on('end', () => {
    res.setHeader('content-type', 'text/plain')
    res.end(req.method === 'POST' ? `got ${length}\n` : 'hello\n')
  })
}

async function main (): Promise<void> {
  if (process.send === undefined) {
    console.error('soak-server is started by bench/soak.ts (it needs the IPC channel)')
    process.exit(2)
  }
  const upstreamPort = flag('--upstream-port', 0)
  if (upstreamPort <= 0) throw new Error('--upstream-port is required')
  const server = createServer(handler as Parameters<typeof createServer>[0], {
    tls: await devCertificate(),
    http: 'redirect',
    sniffTimeout: flag('--sniff-timeout', 1000),
    routes: {
      echo: { match: { prefix: 'ECHO ' }, handler: (socket) => { socket.pipe(socket) } },
      bulk: { match: { prefix: 'BULK ' }, proxy: { host: '127.0.0.1', port: upstreamPort } }
    }
  })
  // Errors inside routes or matchers would be counted in stats().errors; keep them visible too.
  server.on('warning', (err: Error) => { console.error('soak-server warning:', err.message) })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0

  const sample = (full: boolean): Sample => {
    if (full) gc()
    const m = process.memoryUsage()
    return { stats: server.stats(), rss: m.rss, heapUsed: m.heapUsed, resources: resources() }
  }

  process.on('message', (message: ToServer) => {
    if (message.type === 'sample') send({ type: 'sample', sample: sample(message.gc === true) })
    else if (message.type === 'stop') {
      server.closeAllConnections()
      server.close(() => {
        send({ type: 'stopped' })
        process.disconnect()
      })
    }
  })
  process.on('disconnect', () => { process.exit(0) })
  // Node creates the stdio streams on first use, and Readable#pipe touches them (it compares
  // its destination with process.stdout and process.stderr): when they are pipes, the first
  // raw route that pipes would add PipeWraps that are no leak. Make them before the baseline.
  void process.stdout
  void process.stderr
  // Let listening settle (inner servers' timers start on 'listening') before the baseline.
  await new Promise((resolve) => setTimeout(resolve, 50))
  send({ type: 'ready', port, sample: sample(true) })
}

main().catch((err: unknown) => {
  console.error('soak-server failed:', err)
  process.exit(1)
})
