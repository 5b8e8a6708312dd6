/**
 * Shared test plumbing: real servers on port 0, real sockets, cleanup through `t.after`.
 */
import net, { type AddressInfo } from 'node:net'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import type { TestContext } from 'node:test'
import { devCertificate, type KeyAndCertificate } from '../src/dev-certificate.js'
import type { MuxServer } from '../src/server.js'
import { start } from './spawn.js'

let cert: Promise<KeyAndCertificate> | undefined
/** One development certificate per test process. */
export function testCertificate (): Promise<KeyAndCertificate> {
  cert ??= devCertificate()
  return cert
}

/** Listen on 127.0.0.1, port 0; close (and destroy what is left) after the test. */
export async function listen (t: TestContext, server: MuxServer, host = '127.0.0.1'): Promise<number> {
  server.listen(0, host)
  await once(server, 'listening')
  t.after(async () => {
    if (!server.listening) return
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return (server.address() as AddressInfo).port
}

/** A connected TCP client, destroyed after the test. */
export async function connect (t: TestContext, port: number, host = '127.0.0.1'): Promise<net.Socket> {
  const socket = net.connect({ port, host })
  t.after(() => { socket.destroy() })
  await once(socket, 'connect')
  return socket
}

/** Everything the peer sends until it closes. */
export async function readAll (socket: net.Socket): Promise<Buffer> {
  const chunks: Buffer[] = []
  socket.on('data', (c: Buffer) => chunks.push(c))
  await new Promise<void>((resolve) => {
    if (socket.destroyed) resolve()
    else socket.once('close', () => resolve())
  })
  return Buffer.concat(chunks)
}

/** Resolves when the socket closes (by either side), with whether any byte arrived. */
export function closed (socket: net.Socket): Promise<void> {
  return new Promise((resolve) => {
    if (socket.destroyed) resolve()
    else socket.once('close', () => resolve())
  })
}

/**
 * Write raw bytes and read the whole reply until the server closes. With `end`, the
 * client half-closes after writing (as `nc -q`), for servers that answer until EOF.
 */
export async function exchange (t: TestContext, port: number, request: string | Buffer, options: { end?: boolean } = {}): Promise<string> {
  const socket = await connect(t, port)
  socket.on('error', () => {})
  const reply = readAll(socket)
  if (options.end === true) socket.end(request)
  else socket.write(request)
  return (await reply).toString('latin1')
}

export function delay (ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** Poll `check` until it is true; fails the test after `ms`. */
export async function until (check: () => boolean, ms = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await delay(10)
  }
}

const examplesDir = fileURLToPath(new URL('../examples/', import.meta.url))

export interface RunningExample {
  port: number
  /** SIGTERM, then the exit code. */
  stop: () => Promise<number | null>
}

/**
 * Start `build/examples/<file>` as a user would, on a free port (`PORT=0`, `HOST=127.0.0.1`,
 * plus `env`); resolves with the port it printed (`… port <n> …`). Killed after the test.
 */
export async function startExample (t: TestContext, file: string, env: Record<string, string> = {}): Promise<RunningExample> {
  const example = await start(t, process.execPath, [examplesDir + file], {
    env: { PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'warn', ...env },
    ready: /port (\d+)/,
    within: 30_000,
    signal: 'SIGKILL'
  })
  return {
    port: Number(example.match?.[1]),
    stop: async () => (await example.stop('SIGTERM'))[0]
  }
}
