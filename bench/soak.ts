/**
 * Soak test: a portmux server under mixed, partly hostile traffic for a while, then a check
 * that it let go of everything (not a unit test; `npm run soak`).
 *
 *     node build/bench/soak.js [--duration 20] [--concurrency 32] [--interval 5]
 *                              [--bulk-mb 4] [--sniff-timeout 1000] [--settle 15]
 *
 * (each flag also as an environment variable: SOAK_DURATION, SOAK_CONCURRENCY, …).
 *
 * The server runs in a child process (`bench/soak-server.ts`), so its RSS and its active
 * handles are its own. This process is the load generator and the upstream of the proxy
 * route. `concurrency` workers each run one operation after another until `duration`
 * seconds have passed, picking the kind at random (weights below):
 *
 * - `https-h1`, `https-h2`: GET (and now and then a POST) over HTTPS with undici, keep-alive;
 * - `https-new`: the same on a new TLS connection each time (a handshake per request);
 * - `redirect`: a plaintext request, which must get its 301 to the same host, port and path;
 * - `echo`: a raw-route exchange of 1–16 KiB, which must come back byte for byte;
 * - `bulk`: a proxied download of 1–`bulk-mb` MiB from the upstream, which must arrive whole;
 * - `silent`: a client that sends nothing, which the server must close (at its sniffTimeout);
 * - `garbage`: 256 B–8 KiB of random bytes, which must get a 4xx or be closed;
 * - `reset`: a raw-route exchange that the client resets (RST) half-way.
 *
 * Every `interval` seconds it prints the operations done and failed by kind, the server's
 * RSS and its `stats()`. When the time is up it waits for the operations in flight, closes
 * its clients, and then (for up to `settle` seconds) asks the server until every open count
 * is back to zero and `process.getActiveResourcesInfo()` is back to what it was before the
 * load. It exits 1 when either does not happen, or when more than 1% of the operations
 * failed; 0 otherwise.
 *
 * Traffic goes to 127.0.0.1 only; every operation has a deadline, the run has a deadline and
 * an operation cap, and it stops by itself.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { randomBytes, randomInt } from 'node:crypto'
import { once } from 'node:events'
import net, { type AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { Agent, Client, request, type Dispatcher } from 'undici'
import type { FromServer, Sample, ToServer } from './soak-server.js'

// ---------------------------------------------------------------------------------------------
// Settings

function setting (name: string, fallback: number): number {
  const i = process.argv.indexOf('--' + name)
  const raw = i !== -1 ? process.argv[i + 1] : process.env['SOAK_' + name.toUpperCase().replaceAll('-', '_')]
  const value = raw === undefined ? Number.NaN : Number(raw)
  return Number.isFinite(value) && value > 0 ? value : fallback
}

const DURATION = setting('duration', 20) * 1000
const CONCURRENCY = Math.floor(setting('concurrency', 32))
const INTERVAL = setting('interval', 5) * 1000
const BULK_MB = setting('bulk-mb', 4)
const SNIFF_TIMEOUT = Math.floor(setting('sniff-timeout', 1000))
const SETTLE = setting('settle', 15) * 1000
/** A hard cap on operations, whatever the duration. */
const MAX_OPS = Math.floor(setting('max-ops', 2_000_000))
/** No single operation may take longer than this. */
const OP_TIMEOUT = 15_000 + SNIFF_TIMEOUT
const HOST = '127.0.0.1'

const KINDS = ['https-h1', 'https-h2', 'https-new', 'redirect', 'echo', 'bulk', 'silent', 'garbage', 'reset'] as const
type Kind = typeof KINDS[number]
const WEIGHTS: Record<Kind, number> = { 'https-h1': 25, 'https-h2': 15, 'https-new': 5, redirect: 15, echo: 20, bulk: 5, silent: 5, garbage: 10, reset: 5 }

// ---------------------------------------------------------------------------------------------
// Bookkeeping

const done = new Map<Kind, number>(KINDS.map((k) => [k, 0]))
const failed = new Map<string, number>()
let started = 0

function fail (kind: Kind, why: string): void {
  const key = `${kind}: ${why}`
  failed.set(key, (failed.get(key) ?? 0) + 1)
}

function pick (): Kind {
  const total = KINDS.reduce((n, k) => n + WEIGHTS[k], 0)
  let r = Math.random() * total
  for (const k of KINDS) {
    r -= WEIGHTS[k]
    if (r < 0) return k
  }
  return 'https-h1'
}

class OpError extends Error {}

// ---------------------------------------------------------------------------------------------
// The upstream of the proxy route: reads "BULK <bytes>\n", sends that many bytes, ends.

const PATTERN = Buffer.alloc(64 * 1024)
for (let i = 0; i < PATTERN.length; i++) PATTERN[i] = i % 251

function startUpstream (): Promise<net.Server> {
  const upstream = net.createServer({ noDelay: true }, (socket) => {
    socket.on('error', () => {})
    let line = ''
    const onData = (c: Buffer): void => {
      line += c.toString('latin1')
      const nl = line.indexOf('\n')
      if (nl === -1) {
        if (line.length > 64) socket.destroy()
        return
      }
      socket.removeListener('data', onData)
      socket.resume()
      const m = /^BULK (\d+)$/.exec(line.slice(0, nl))
      if (m === null) {
        socket.destroy()
        return
      }
      let left = Number(m[1])
      const pump = (): void => {
        while (left > 0) {
          const n = Math.min(left, PATTERN.length)
          left -= n
          if (!socket.write(n === PATTERN.length ? PATTERN : PATTERN.subarray(0, n))) {
            socket.once('drain', pump)
            return
          }
        }
        socket.end()
      }
      pump()
    }
    socket.on('data', onData)
  })
  return new Promise((resolve) => upstream.listen(0, HOST, () => resolve(upstream)))
}

// ---------------------------------------------------------------------------------------------
// The operations

let serverPort = 0
const h1 = new Agent({ connections: Math.max(2, Math.ceil(CONCURRENCY / 4)), connect: { rejectUnauthorized: false } })
const h2 = new Agent({ allowH2: true, connections: 2, connect: { rejectUnauthorized: false } })

/** A TCP exchange: write `bytes` (then FIN with `end`), collect until the server closes. */
function exchange (bytes: Buffer | string, end: boolean, limit = OP_TIMEOUT): Promise<{ data: Buffer, error?: string }> {
  return new Promise((resolve) => {
    const socket = net.connect({ port: serverPort, host: HOST })
    const chunks: Buffer[] = []
    let error: string | undefined
    const timer = setTimeout(() => {
      error = 'no close (hang)'
      socket.destroy()
    }, limit)
    socket.on('connect', () => {
      if (end) socket.end(bytes)
      else if (bytes.length > 0) socket.write(bytes)
    })
    socket.on('data', (c: Buffer) => chunks.push(c))
    socket.on('error', (err: NodeJS.ErrnoException) => { error ??= err.code ?? err.message })
    socket.on('close', () => {
      clearTimeout(timer)
      resolve({ data: Buffer.concat(chunks), error })
    })
  })
}

async function https (agent: Dispatcher): Promise<void> {
  const post = Math.random() < 0.2
  const body = post ? randomBytes(randomInt(1, 32 * 1024)) : undefined
  const r = await request(`https://${HOST}:${serverPort}/soak?${randomInt(1e9)}`, {
    dispatcher: agent,
    method: post ? 'POST' : 'GET',
    body,
    headersTimeout: OP_TIMEOUT,
    bodyTimeout: OP_TIMEOUT
  })
  const text = await r.body.text()
  const expected = post ? `got ${body?.length ?? 0}\n` : 'hello\n'
  if (r.statusCode !== 200 || text !== expected) throw new OpError(`status ${r.statusCode}`)
}

async function redirect (): Promise<void> {
  const path = `/r/${randomInt(1e9)}?q=${randomInt(100)}`
  const { data, error } = await exchange(`GET ${path} HTTP/1.1\r\nHost: ${HOST}:${serverPort}\r\n\r\n`, false)
  const text = data.toString('latin1')
  if (!text.startsWith('HTTP/1.1 301 ')) throw new OpError(error ?? `no 301: ${JSON.stringify(text.slice(0, 40))}`)
  if (!text.toLowerCase().includes(`\r\nlocation: https://${HOST}:${serverPort}${path}\r\n`)) throw new OpError('wrong Location')
}

async function echo (): Promise<void> {
  const payload = Buffer.concat([Buffer.from('ECHO '), Buffer.from(randomBytes(randomInt(1024, 16 * 1024)).toString('base64')), Buffer.from('\n')])
  const { data, error } = await exchange(payload, true)
  if (!data.equals(payload)) throw new OpError(error ?? `echoed ${data.length} of ${payload.length} bytes`)
}

async function bulk (): Promise<void> {
  const size = randomInt(1024 * 1024, Math.max(1024 * 1024 + 1, Math.floor(BULK_MB * 1024 * 1024)))
  const { data, error } = await exchange(`BULK ${size}\n`, false)
  if (data.length !== size) throw new OpError(error ?? `received ${data.length} of ${size} bytes`)
  for (let i = 0; i < data.length; i += 4093) {
    if (data[i] !== (i % PATTERN.length) % 251) throw new OpError('corrupt bytes')
  }
}

async function silent (): Promise<void> {
  const { data, error } = await exchange(Buffer.alloc(0), false, SNIFF_TIMEOUT + 10_000)
  if (error !== undefined) throw new OpError(error)
  if (data.length !== 0) throw new OpError('a silent client got bytes')
}

async function garbage (): Promise<void> {
  const bytes = randomBytes(randomInt(256, 8 * 1024))
  // Not the start of TLS, of the h2c preface or of a route prefix: plain junk.
  bytes[0] = 0x80 | (bytes[0] & 0x3f)
  const { data, error } = await exchange(bytes, false)
  if (error === 'no close (hang)') throw new OpError(error)
  if (data.length > 0 && !/^HTTP\/1\.1 4\d\d /.test(data.toString('latin1', 0, 16))) throw new OpError('not a 4xx')
}

async function reset (): Promise<void> {
  const socket = net.connect({ port: serverPort, host: HOST })
  socket.on('error', () => {})
  try {
    await once(socket, 'connect')
    socket.write('ECHO before the reset\n')
    await once(socket, 'data')
  } finally {
    if (!socket.destroyed) socket.resetAndDestroy()
  }
}

const OPS: Record<Kind, () => Promise<void>> = {
  'https-h1': () => https(h1),
  'https-h2': () => https(h2),
  'https-new': async () => {
    const client = new Client(`https://${HOST}:${serverPort}`, { pipelining: 1, connect: { rejectUnauthorized: false } })
    try {
      await https(client)
    } finally {
      await client.destroy()
    }
  },
  redirect,
  echo,
  bulk,
  silent,
  garbage,
  reset
}

async function worker (deadline: number): Promise<void> {
  while (Date.now() < deadline && started < MAX_OPS) {
    started++
    const kind = pick()
    let timer: NodeJS.Timeout | undefined
    try {
      await Promise.race([
        OPS[kind](),
        new Promise((_resolve, reject) => { timer = setTimeout(() => reject(new OpError('operation timeout')), OP_TIMEOUT + 1000) })
      ])
      done.set(kind, (done.get(kind) ?? 0) + 1)
    } catch (err) {
      const e = err as NodeJS.ErrnoException
      fail(kind, err instanceof OpError ? e.message : e.code ?? e.message)
    } finally {
      clearTimeout(timer)
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The server child

let child: ChildProcess
const waiting: Array<(m: FromServer) => void> = []

function ask (message: ToServer): Promise<FromServer> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the server did not answer within 10 s')), 10_000)
    waiting.push((m) => { clearTimeout(timer); resolve(m) })
    child.send(message)
  })
}

async function sample (gc = false): Promise<Sample> {
  const m = await ask({ type: 'sample', gc })
  if (m.type !== 'sample') throw new Error(`unexpected answer ${m.type}`)
  return m.sample
}

// ---------------------------------------------------------------------------------------------
// Reporting

const mb = (n: number): string => (n / 1024 / 1024).toFixed(1) + ' MB'

function nonZero (o: Record<string, number>): string {
  const parts = Object.entries(o).filter(([, v]) => v !== 0).map(([k, v]) => `${k} ${v}`)
  return parts.length === 0 ? '-' : parts.join(', ')
}

function describe (s: Sample): string {
  const st = s.stats
  const { routes, ...open } = st.open
  return [
    `rss ${mb(s.rss)} heap ${mb(s.heapUsed)}`,
    `accepted ${st.accepted} pending ${st.pending} proxyHeaders ${st.proxyHeaders}`,
    `open: ${nonZero({ ...open, ...Object.fromEntries(Object.entries(routes).map(([k, v]) => ['route:' + k, v])) })}`,
    `decided: ${nonZero({ ...st.decided, routes: 0, ...Object.fromEntries(Object.entries(st.decided.routes).map(([k, v]) => ['route:' + k, v])) })}`,
    `closed: ${nonZero(st.closed)}`,
    `proxy: ${nonZero(st.proxy)}`,
    `errors: ${nonZero(st.errors)}`
  ].join('\n    ')
}

function progress (elapsed: number, s: Sample): void {
  const ops = KINDS.map((k) => `${k} ${done.get(k) ?? 0}`).join(', ')
  const errs = failed.size === 0 ? 'none' : [...failed].map(([k, v]) => `${k} ×${v}`).join('; ')
  console.log(`[${(elapsed / 1000).toFixed(1).padStart(5)} s] ops: ${ops}\n    failed: ${errs}\n    ${describe(s)}`)
}

function diff (before: Record<string, number>, after: Record<string, number>): string {
  const kinds = new Set([...Object.keys(before), ...Object.keys(after)])
  const out: string[] = []
  for (const k of kinds) {
    const a = before[k] ?? 0
    const b = after[k] ?? 0
    if (a !== b) out.push(`${k} ${a} → ${b}`)
  }
  return out.join(', ')
}

function openTotal (s: Sample): number {
  let n = s.stats.pending
  for (const [k, v] of Object.entries(s.stats.open)) if (k !== 'routes') n += v as number
  for (const v of Object.values(s.stats.open.routes)) n += v
  return n
}

// ---------------------------------------------------------------------------------------------

async function main (): Promise<number> {
  const upstream = await startUpstream()
  const upstreamPort = (upstream.address() as AddressInfo).port
  const script = fileURLToPath(new URL('./soak-server.js', import.meta.url))
  child = fork(script, ['--upstream-port', String(upstreamPort), '--sniff-timeout', String(SNIFF_TIMEOUT)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc']
  })
  const exited = once(child, 'exit')
  const ready = new Promise<Extract<FromServer, { type: 'ready' }>>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`the server exited (${String(code)}) before it was ready`)))
    child.on('message', (m: FromServer) => {
      if (m.type === 'ready') resolve(m)
      else waiting.shift()?.(m)
    })
  })
  const first = await ready
  serverPort = first.port
  const baseline = first.sample
  console.log(`portmux soak: ${DURATION / 1000} s × ${CONCURRENCY} workers against 127.0.0.1:${serverPort} (server pid ${String(child.pid)}), sniffTimeout ${SNIFF_TIMEOUT} ms, bulk ≤ ${BULK_MB} MiB`)
  console.log(`baseline: rss ${mb(baseline.rss)}, active resources ${JSON.stringify(baseline.resources)}`)

  const t0 = Date.now()
  let peakRss = baseline.rss
  const ticker = setInterval(() => {
    sample().then((s) => {
      peakRss = Math.max(peakRss, s.rss)
      progress(Date.now() - t0, s)
    }, (err: unknown) => { console.log('sample failed:', err) })
  }, INTERVAL)
  await Promise.all(Array.from({ length: CONCURRENCY }, () => worker(t0 + DURATION)))
  clearInterval(ticker)
  const loadEnded = Date.now()
  await Promise.all([h1.close(), h2.close()])

  const total = [...done.values()].reduce((a, b) => a + b, 0)
  const failures = [...failed.values()].reduce((a, b) => a + b, 0)
  console.log(`\nload stopped after ${((loadEnded - t0) / 1000).toFixed(1)} s: ${total} operations done, ${failures} failed`)

  // Let the server let go: silent clients are already closed, keep-alive sockets close now.
  let last = await sample(true)
  const settleEnd = Date.now() + SETTLE
  const settled = (s: Sample): boolean => openTotal(s) === 0 && diff(baseline.resources, s.resources) === ''
  while (!settled(last) && Date.now() < settleEnd) {
    await new Promise((resolve) => setTimeout(resolve, 250))
    last = await sample(true)
  }
  progress(Date.now() - t0, last)
  console.log(`settled in ${((Date.now() - loadEnded) / 1000).toFixed(1)} s after the load; peak rss ${mb(peakRss)}, final rss ${mb(last.rss)} (baseline ${mb(baseline.rss)})`)

  let code = 0
  if (openTotal(last) !== 0) {
    console.log(`FAIL: open counts did not return to zero: pending ${last.stats.pending}, open ${JSON.stringify(last.stats.open)}`)
    code = 1
  } else {
    console.log('ok: every open count is back to zero')
  }
  const d = diff(baseline.resources, last.resources)
  if (d !== '') {
    console.log(`FAIL: active resources did not return to the baseline: ${d}`)
    code = 1
  } else {
    console.log(`ok: active resources are back to the baseline (${Object.values(last.resources).reduce((a, b) => a + b, 0)})`)
  }
  if (total === 0 || failures > total * 0.01) {
    console.log(`FAIL: ${failures} of ${total + failures} operations failed (more than 1%)`)
    code = 1
  } else {
    console.log(`ok: ${failures} of ${total + failures} operations failed`)
  }

  child.send({ type: 'stop' } satisfies ToServer)
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
  await exited
  clearTimeout(timer)
  await new Promise<void>((resolve) => upstream.close(() => resolve()))
  return code
}

main().then((code) => {
  process.exitCode = code
}, (err: unknown) => {
  console.error('soak failed:', err)
  child?.kill('SIGKILL')
  process.exitCode = 1
})
