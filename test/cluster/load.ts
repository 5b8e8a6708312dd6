/**
 * A load generator for restart tests: new connections, one exchange each, at a fixed
 * concurrency, mixing HTTPS over HTTP/1.1, HTTPS over HTTP/2, plain HTTP (answered by
 * the redirect) and the raw `ECHO ` route. Every connection is checked end to end: a
 * connection counts as succeeded only when its whole expected answer arrived.
 *
 * Traffic goes to 127.0.0.1 only. The loop is bounded by `max` connections and stops
 * early on `stop()`.
 */
import http2 from 'node:http2'
import net from 'node:net'
import tls from 'node:tls'

export type Kind = 'https' | 'h2' | 'redirect' | 'raw'

export interface LoadOptions {
  port: number
  /** Connections at once. */
  concurrency: number
  /** Connections in all; the load stops by itself after this many. */
  max: number
  kinds?: Kind[]
  /** ms one connection may take before it counts as failed (`timeout`). Default 15000. */
  timeout?: number
}

export interface LoadResult {
  attempted: number
  succeeded: number
  failed: number
  byKind: Record<Kind, { ok: number, failed: number }>
  /** Failures by error code (`ECONNRESET`, `timeout`, `bad-response: …`). */
  errors: Record<string, number>
  /** A few failures in full, for the report. */
  samples: string[]
  durationMs: number
}

export interface Load {
  /** Connections started so far. */
  attempted (): number
  /** Finish the connections in flight, start no more, and report. */
  stop (): Promise<LoadResult>
  /** Resolves when `max` connections are done (or after `stop()`). */
  readonly done: Promise<LoadResult>
}

const HOST = '127.0.0.1'

class Failure extends Error {
  constructor (readonly code: string, detail: string) {
    super(detail)
  }
}

function codeOf (err: unknown): string {
  if (err instanceof Failure) return err.code
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' ? code : err instanceof Error ? err.message : String(err)
}

/** Everything the server sends until it closes; the socket is ended by `write`. */
function exchange (socket: net.Socket, timeout: number, write: () => void): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let settled = false
    const finish = (err: unknown): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.destroy()
      if (err === null) resolve(Buffer.concat(chunks).toString('latin1'))
      else reject(err)
    }
    const timer = setTimeout(() => finish(new Failure('timeout', 'no complete answer in time')), timeout)
    socket.on('data', (c: Buffer) => chunks.push(c))
    socket.on('error', (err) => finish(err))
    socket.on('end', () => finish(null))
    socket.on('close', () => finish(new Failure('closed-early', 'closed before end')))
    write()
  })
}

function expect (kind: Kind, ok: boolean, answer: string): void {
  if (!ok) throw new Failure(`bad-response: ${kind} ${JSON.stringify(answer.slice(0, 40))}`, answer.slice(0, 300))
}

async function https1 (port: number, timeout: number): Promise<void> {
  const socket = tls.connect({ host: HOST, port, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] })
  const answer = await exchange(socket, timeout, () => {
    socket.once('secureConnect', () => {
      socket.write(`GET / HTTP/1.1\r\nHost: ${HOST}:${port}\r\nConnection: close\r\n\r\n`)
    })
  })
  expect('https', answer.startsWith('HTTP/1.1 200') && answer.includes('"protocol":"https"'), answer)
}

async function redirect (port: number, timeout: number): Promise<void> {
  const socket = net.connect({ host: HOST, port })
  const answer = await exchange(socket, timeout, () => {
    socket.write(`GET /a?b=1 HTTP/1.1\r\nHost: ${HOST}:${port}\r\n\r\n`)
  })
  expect('redirect', answer.startsWith('HTTP/1.1 301') && answer.toLowerCase().includes(`\r\nlocation: https://${HOST}:${port}/a?b=1\r\n`), answer)
}

async function raw (port: number, timeout: number, n: number): Promise<void> {
  const line = `ECHO ${n}\n`
  const socket = net.connect({ host: HOST, port })
  const answer = await exchange(socket, timeout, () => { socket.end(line) })
  expect('raw', answer === line, answer)
}

function h2 (port: number, timeout: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let settled = false
    const session = http2.connect(`https://${HOST}:${port}`, { rejectUnauthorized: false })
    const finish = (err: unknown): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      session.destroy()
      if (err === null) resolve()
      else reject(err)
    }
    const timer = setTimeout(() => finish(new Failure('timeout', 'no complete answer in time')), timeout)
    session.on('error', (err) => finish(err))
    session.on('goaway', (code) => { if (code !== 0) finish(new Failure(`goaway-${code}`, 'GOAWAY with an error')) })
    session.on('close', () => finish(new Failure('closed-early', 'session closed before the answer')))
    const req = session.request({ ':path': '/', ':authority': `${HOST}:${port}` })
    let status = 0
    let body = ''
    req.setEncoding('utf8')
    req.on('response', (headers) => { status = Number(headers[':status']) })
    req.on('data', (d: string) => { body += d })
    req.on('error', (err) => finish(err))
    req.on('end', () => {
      try {
        expect('h2', status === 200 && body.includes('"protocol":"https"'), `${status} ${body}`)
        finish(null)
      } catch (err) {
        finish(err)
      }
    })
    req.end()
  })
}

/** One connection of this kind, checked end to end; rejects with the failure. */
export async function request (kind: Kind, port: number, timeout = 15_000, n = 0): Promise<void> {
  if (kind === 'https') await https1(port, timeout)
  else if (kind === 'h2') await h2(port, timeout)
  else if (kind === 'redirect') await redirect(port, timeout)
  else await raw(port, timeout, n)
}

export function startLoad (options: LoadOptions): Load {
  const kinds = options.kinds ?? ['https', 'h2', 'redirect', 'raw']
  const timeout = options.timeout ?? 15_000
  const began = Date.now()
  const result: LoadResult = {
    attempted: 0,
    succeeded: 0,
    failed: 0,
    byKind: { https: { ok: 0, failed: 0 }, h2: { ok: 0, failed: 0 }, redirect: { ok: 0, failed: 0 }, raw: { ok: 0, failed: 0 } },
    errors: {},
    samples: [],
    durationMs: 0
  }
  let stopped = false

  const one = async (n: number): Promise<void> => {
    const kind = kinds[n % kinds.length]
    try {
      await request(kind, options.port, timeout, n)
      result.succeeded++
      result.byKind[kind].ok++
    } catch (err) {
      result.failed++
      result.byKind[kind].failed++
      const code = codeOf(err)
      result.errors[code] = (result.errors[code] ?? 0) + 1
      if (result.samples.length < 10) result.samples.push(`#${n} ${kind} at ${Date.now() - began} ms: ${code} ${err instanceof Error ? err.message : ''}`)
    }
  }

  const lane = async (): Promise<void> => {
    while (!stopped && result.attempted < options.max) {
      const n = result.attempted++
      await one(n)
    }
  }

  const done = Promise.all(Array.from({ length: options.concurrency }, lane)).then(() => {
    result.durationMs = Date.now() - began
    return result
  })

  return {
    attempted: () => result.attempted,
    stop: async () => {
      stopped = true
      return await done
    },
    done
  }
}
