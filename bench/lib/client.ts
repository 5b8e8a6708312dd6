/**
 * The benchmark's own connection client, run as a child process (pinned with the other
 * load tools): `node client.js '<json config>'`, printing one JSON result line.
 *
 * It does what wrk and h2load do not: a new connection per operation with no TLS session
 * resumption, server-speaks-first banners, time to the first byte, bulk transfers, and
 * thousands of connections held open. Every loop is bounded by a duration or a count and
 * every operation by a timeout; the process exits by itself.
 *
 * Modes (one operation each):
 * - `tls-new`: TLS 1.3 full handshake (no session offered), `GET / HTTP/1.1` with
 *   `Connection: close`, read to the end, check the status;
 * - `http-new`: the same in plaintext;
 * - `banner`: connect, send an SSH-like hello line, wait for the upstream's banner, close;
 * - `echo`: connect, send the hello line, wait for its first echoed byte, close;
 * - `bulk`: connect, send the hello line then `bytes` bytes in 256 KiB chunks, wait for the
 *   sink's `OK`; with `rate`, paced at that many MB/s (10^6 B/s) instead of flat out;
 * - `hold`: open `count` connections (idle, or echo-confirmed with `confirm`), report,
 *   then hold them until stdin says `release` (or `holdSeconds` pass).
 *
 * Load: `concurrency` workers back to back for `duration` seconds, or `rate` operations per
 * second (at most `maxInFlight` at once; starts that could not be made are counted as
 * `missed`), or `count` operations one after another.
 */
import net from 'node:net'
import tls from 'node:tls'

export interface ClientConfig {
  mode: 'tls-new' | 'http-new' | 'banner' | 'echo' | 'bulk' | 'hold'
  host?: string
  port: number
  /** Seconds of load (concurrency or rate). */
  duration?: number
  concurrency?: number
  rate?: number
  maxInFlight?: number
  /** Sequential operations (when neither concurrency nor rate is given). */
  count?: number
  /** Operation timeout, ms. */
  timeoutMs?: number
  path?: string
  /** Host header to send (defaults to host:port). */
  hostHeader?: string
  expectStatus?: number
  /** bulk: bytes to send after the hello line. */
  bytes?: number
  /** hold: wait for the echo of the hello line before counting a connection as held. */
  confirm?: boolean
  /** hold: connections opened at once. */
  parallel?: number
  holdSeconds?: number
  /** Warm-up seconds before the measured window (not counted). */
  warmup?: number
}

export interface ClientResult {
  mode: string
  completed: number
  failed: number
  missed: number
  errors: Record<string, number>
  elapsedSeconds: number
  /** Operations per second over the measured window. */
  rate: number
  /** Microseconds: connect start → first byte (banner/echo) or whole operation. */
  latency: { p50: number, p90: number, p99: number, max: number, mean: number, n: number }
  /** TLS sessions that were resumed (must be 0). */
  reused: number
  /** bulk: seconds for the transfer and MB/s (10^6 bytes). */
  bulkSeconds?: number
  mbps?: number
  held?: number
}

const HELLO = 'SSH-2.0-portmux-bench\r\n'
const CHUNK = 256 * 1024

class OpError extends Error {
  constructor (readonly code: string) { super(code) }
}

function errCode (err: unknown): string {
  if (err instanceof OpError) return err.code
  const code = (err as NodeJS.ErrnoException | undefined)?.code
  return typeof code === 'string' ? code : String((err as Error | undefined)?.message ?? err).slice(0, 40)
}

function withTimeout<T> (ms: number, socket: net.Socket | null, body: (done: (v: T) => void, fail: (e: unknown) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false
    const timer = setTimeout(() => fail(new OpError('timeout')), ms)
    function done (v: T): void {
      if (settled) return
      settled = true
      clearTimeout(timer)
      resolve(v)
    }
    function fail (e: unknown): void {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket?.destroy()
      reject(e)
    }
    body(done, fail)
  })
}

function request (c: ClientConfig): string {
  const host = c.hostHeader ?? `${c.host ?? '127.0.0.1'}:${c.port}`
  return `GET ${c.path ?? '/'} HTTP/1.1\r\nHost: ${host}\r\nUser-Agent: portmux-bench\r\nAccept: */*\r\nConnection: close\r\n\r\n`
}

function checkStatus (c: ClientConfig, head: string): void {
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(head)
  if (m === null) throw new OpError('bad-response')
  const want = c.expectStatus ?? 200
  if (Number(m[1]) !== want) throw new OpError(`status-${m[1]}`)
}

const stats = { reused: 0 }

/** One operation; resolves with its latency in microseconds. */
function operation (c: ClientConfig): Promise<number> {
  const host = c.host ?? '127.0.0.1'
  const timeoutMs = c.timeoutMs ?? 10_000
  const t0 = process.hrtime.bigint()
  const us = (): number => Number(process.hrtime.bigint() - t0) / 1000
  switch (c.mode) {
    case 'tls-new': {
      const socket = tls.connect({ host, port: c.port, rejectUnauthorized: false, minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3', ALPNProtocols: ['http/1.1'] })
      return withTimeout<number>(timeoutMs, socket, (done, fail) => {
        let head = ''
        socket.setEncoding('latin1')
        socket.on('secureConnect', () => {
          if (socket.isSessionReused()) stats.reused++
          socket.write(request(c))
        })
        socket.on('data', (d: string) => { if (head.length < 64) head += d })
        socket.on('end', () => {
          try { checkStatus(c, head) } catch (e) { fail(e); return }
          socket.destroy()
          done(us())
        })
        socket.on('error', fail)
        socket.on('close', () => fail(new OpError('closed-early')))
      })
    }
    case 'http-new': {
      const socket = net.connect({ host, port: c.port, noDelay: true })
      return withTimeout<number>(timeoutMs, socket, (done, fail) => {
        let head = ''
        socket.setEncoding('latin1')
        socket.on('connect', () => socket.write(request(c)))
        socket.on('data', (d: string) => { if (head.length < 64) head += d })
        socket.on('end', () => {
          try { checkStatus(c, head) } catch (e) { fail(e); return }
          socket.destroy()
          done(us())
        })
        socket.on('error', fail)
        socket.on('close', () => fail(new OpError('closed-early')))
      })
    }
    case 'banner':
    case 'echo': {
      const socket = net.connect({ host, port: c.port, noDelay: true })
      return withTimeout<number>(timeoutMs, socket, (done, fail) => {
        socket.on('connect', () => socket.write(HELLO))
        socket.once('data', () => {
          const t = us()
          socket.destroy()
          done(t)
        })
        socket.on('error', fail)
        socket.on('close', () => fail(new OpError('closed-early')))
      })
    }
    default:
      return Promise.reject(new Error(`mode ${c.mode} has no single operation`))
  }
}

function summarize (c: ClientConfig, lat: number[], completed: number, failed: number, missed: number, errors: Record<string, number>, seconds: number): ClientResult {
  const sorted = Float64Array.from(lat).sort()
  const pct = (p: number): number => sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p / 100 * sorted.length) - 1))]
  const mean = sorted.length === 0 ? NaN : sorted.reduce((a, b) => a + b, 0) / sorted.length
  return {
    mode: c.mode,
    completed,
    failed,
    missed,
    errors,
    elapsedSeconds: seconds,
    rate: completed / seconds,
    latency: { p50: pct(50), p90: pct(90), p99: pct(99), max: sorted.length === 0 ? NaN : sorted[sorted.length - 1], mean, n: sorted.length },
    reused: stats.reused
  }
}

async function load (c: ClientConfig): Promise<ClientResult> {
  const errors: Record<string, number> = {}
  const lat: number[] = []
  let completed = 0
  let failed = 0
  let missed = 0
  let measuring = (c.warmup ?? 0) <= 0
  const record = async (): Promise<void> => {
    const counted = measuring
    try {
      const t = await operation(c)
      if (counted && measuring) {
        completed++
        if (lat.length < 2_000_000) lat.push(t)
      }
    } catch (e) {
      if (counted && measuring) {
        failed++
        const k = errCode(e)
        errors[k] = (errors[k] ?? 0) + 1
      }
    }
  }

  if (c.warmup !== undefined && c.warmup > 0) {
    const end = Date.now() + c.warmup * 1000
    const workers = Math.max(1, Math.min(c.concurrency ?? 4, 8))
    await Promise.all(Array.from({ length: workers }, async () => {
      while (Date.now() < end) await record()
    }))
    measuring = true
    stats.reused = 0
  }

  const duration = (c.duration ?? 0) * 1000
  const t0 = process.hrtime.bigint()
  const seconds = (): number => Number(process.hrtime.bigint() - t0) / 1e9

  if (c.rate !== undefined) {
    const maxInFlight = c.maxInFlight ?? 256
    const interval = 1000 / c.rate
    let started = 0
    let inFlight = 0
    const inflight = new Set<Promise<void>>()
    await new Promise<void>((resolve) => {
      const tick = (): void => {
        const elapsed = seconds() * 1000
        if (elapsed >= duration) { resolve(); return }
        const due = Math.min(Math.floor(elapsed / interval) + 1, Math.ceil(duration / interval))
        while (started < due) {
          if (inFlight >= maxInFlight) {
            missed += due - started
            started = due
            break
          }
          started++
          inFlight++
          const p = record().finally(() => { inFlight--; inflight.delete(p) })
          inflight.add(p)
        }
        setTimeout(tick, 1)
      }
      tick()
    })
    const window = seconds()
    await Promise.all([...inflight])
    return summarize(c, lat, completed, failed, missed, errors, window)
  }

  if (c.concurrency !== undefined) {
    await Promise.all(Array.from({ length: c.concurrency }, async () => {
      while (seconds() * 1000 < duration) await record()
    }))
    return summarize(c, lat, completed, failed, missed, errors, seconds())
  }

  const count = c.count ?? 1
  for (let i = 0; i < count; i++) await record()
  return summarize(c, lat, completed, failed, missed, errors, seconds())
}

async function bulk (c: ClientConfig): Promise<ClientResult> {
  const bytes = c.bytes ?? 1 << 30
  const chunk = Buffer.alloc(CHUNK, 0x61)
  const socket = net.connect({ host: c.host ?? '127.0.0.1', port: c.port, noDelay: true })
  const t0 = process.hrtime.bigint()
  const paced = c.rate !== undefined && c.rate > 0 ? c.rate * 1e6 : 0
  let pacer: NodeJS.Timeout | null = null
  const seconds = await withTimeout<number>(c.timeoutMs ?? 120_000, socket, (done, fail) => {
    let sent = 0
    let reply = ''
    let started = 0n
    const pump = (): void => {
      pacer = null
      // Paced: no further than the rate allows by now; look again in 2 ms.
      const allowed = paced > 0 ? Math.min(bytes, Number(process.hrtime.bigint() - started) / 1e9 * paced) : bytes
      while (sent < allowed) {
        const n = Math.min(CHUNK, bytes - sent)
        sent += n
        if (!socket.write(n === CHUNK ? chunk : chunk.subarray(0, n))) {
          socket.once('drain', pump)
          return
        }
      }
      if (sent < bytes) pacer = setTimeout(pump, 2)
    }
    socket.on('connect', () => {
      socket.write(`${HELLO.trimEnd()} ${bytes}\r\n`)
      started = process.hrtime.bigint()
      pump()
    })
    socket.setEncoding('latin1')
    socket.on('data', (d: string) => {
      reply += d
      if (reply.includes('OK')) {
        const s = Number(process.hrtime.bigint() - t0) / 1e9
        socket.destroy()
        done(s)
      }
    })
    socket.on('error', fail)
    socket.on('close', () => fail(new OpError('closed-early')))
  }).finally(() => { if (pacer !== null) clearTimeout(pacer) })
  const r = summarize(c, [seconds * 1e6], 1, 0, 0, {}, seconds)
  r.bulkSeconds = seconds
  r.mbps = bytes / seconds / 1e6
  return r
}

async function hold (c: ClientConfig): Promise<ClientResult> {
  const count = c.count ?? 1000
  const parallel = c.parallel ?? 200
  const sockets: net.Socket[] = []
  const errors: Record<string, number> = {}
  let failed = 0
  let dropped = 0
  let next = 0
  const t0 = Date.now()
  const open = (): Promise<void> => {
    const socket = net.connect({ host: c.host ?? '127.0.0.1', port: c.port, noDelay: true })
    return withTimeout<void>(c.timeoutMs ?? 20_000, socket, (done, fail) => {
      socket.once('error', fail)
      socket.once('close', () => fail(new OpError('closed-early')))
      socket.once('connect', () => {
        if (c.confirm === true) {
          socket.write(HELLO)
          socket.once('data', () => done())
        } else {
          done()
        }
      })
    }).then(() => {
      socket.removeAllListeners('error')
      socket.removeAllListeners('close')
      socket.on('error', () => {})
      socket.on('close', () => { dropped++ })
      sockets.push(socket)
    }, (e: unknown) => {
      failed++
      const k = errCode(e)
      errors[k] = (errors[k] ?? 0) + 1
    })
  }
  await Promise.all(Array.from({ length: parallel }, async () => {
    while (next < count) {
      next++
      await open()
    }
  }))
  const r = summarize(c, [], sockets.length, failed, 0, errors, (Date.now() - t0) / 1000)
  r.held = sockets.length
  process.stdout.write(JSON.stringify({ held: sockets.length, failed, errors }) + '\n')
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, (c.holdSeconds ?? 120) * 1000)
    process.stdin.setEncoding('utf8')
    process.stdin.on('data', (d: string) => { if (d.includes('release')) { clearTimeout(timer); resolve() } })
    process.stdin.on('end', () => { clearTimeout(timer); resolve() })
  })
  const lost = dropped
  for (const s of sockets) s.destroy()
  r.errors = { ...errors, ...(lost > 0 ? { 'dropped-while-held': lost } : {}) }
  return r
}

async function main (): Promise<void> {
  const c = JSON.parse(process.argv[2] ?? '{}') as ClientConfig
  const result = c.mode === 'bulk' ? await bulk(c) : c.mode === 'hold' ? await hold(c) : await load(c)
  process.stdout.write(JSON.stringify(result) + '\n')
  process.exit(0)
}

main().catch((err: unknown) => {
  process.stdout.write(JSON.stringify({ error: String((err as Error)?.stack ?? err) }) + '\n')
  process.exit(1)
})
