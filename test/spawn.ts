/**
 * Outside programs started by the tests: spawn one, wait (within a bound) until it is ready
 * — a line it prints, or ports it listens on — and own it: after the test it is signalled and
 * its exit awaited, with SIGKILL if it does not go. Every timer started here is cleared.
 */
import { spawn, type ChildProcess, type StdioNull, type StdioPipe } from 'node:child_process'
import { once } from 'node:events'
import { access, constants, readFile } from 'node:fs/promises'
import net, { type AddressInfo } from 'node:net'
import { delimiter, join } from 'node:path'
import type { TestContext } from 'node:test'

export type Exit = [code: number | null, signal: NodeJS.Signals | null]

export interface StartOptions {
  /** Added to (and over) this process's environment. */
  env?: Record<string, string>
  /** `false`: the child gets `env` alone. Default `true`. */
  inheritEnv?: boolean
  /** Passed to the child after stdin, stdout and stderr: fd 3, 4, … (sockets for socket activation). */
  fds?: number[]
  /**
   * When it is ready: a pattern that stdout or stderr matches (each read on its own, from
   * the start), or ports on 127.0.0.1 in LISTEN state (read from /proc, so that no probe
   * connection reaches the program). Without it, as soon as it is spawned.
   */
  ready?: RegExp | { ports: number[] }
  /** ms it may take to be ready; then it is killed and the start fails. Default 10 s. */
  within?: number
  /** How it is asked to stop after the test. Default SIGTERM (then SIGKILL after `grace`). */
  signal?: NodeJS.Signals
  /** ms between `signal` and SIGKILL after the test. Default 5 s. */
  grace?: number
}

export interface Started {
  child: ChildProcess
  /** Everything it printed so far, stdout and stderr. */
  output: () => string
  /** The `ready` pattern's match. */
  match: RegExpExecArray | null
  /** Resolves when it has exited. */
  exited: Promise<Exit>
  /** Send `signal` (default the start's `signal`) unless it has exited; resolves with its exit. */
  stop: (signal?: NodeJS.Signals) => Promise<Exit>
}

function hasExited (child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null
}

/** Whether every port is in LISTEN state on 127.0.0.1. */
async function listeningOn (ports: number[]): Promise<boolean> {
  let table: string
  try {
    table = await readFile('/proc/net/tcp', 'latin1')
  } catch {
    return false
  }
  const open = new Set<string>()
  for (const line of table.split('\n')) {
    const cols = line.trim().split(/\s+/)
    if (cols[3] === '0A') open.add(cols[1])
  }
  return ports.every((port) => open.has(`0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`))
}

/**
 * Start `file` with `args`; resolves once it is ready (see `StartOptions.ready`). A program
 * that exits, fails to start or is not ready in time is killed, and the start rejects with
 * what it printed.
 */
export async function start (t: TestContext, file: string, args: string[], options: StartOptions = {}): Promise<Started> {
  const stdio: Array<StdioNull | StdioPipe | number> = ['ignore', 'pipe', 'pipe', ...(options.fds ?? [])]
  const child = spawn(file, args, { env: options.inheritEnv === false ? options.env : { ...process.env, ...options.env }, stdio })
  let output = ''
  const streams = { stdout: '', stderr: '' }
  let spawnError: Error | null = null
  const exited = new Promise<Exit>((resolve) => {
    child.once('exit', (code, signal) => { resolve([code, signal]) })
    // A program that could not be started emits no 'exit'.
    child.once('error', (err) => {
      spawnError = err
      if (child.pid === undefined) resolve([null, null])
    })
  })
  // 'close': it has exited and its pipes are drained.
  const drained = new Promise<void>((resolve) => { child.once('close', () => resolve()) })
  const stop = async (signal: NodeJS.Signals = options.signal ?? 'SIGTERM'): Promise<Exit> => {
    if (!hasExited(child) && child.pid !== undefined) child.kill(signal)
    return await exited
  }
  t.after(async () => {
    if (hasExited(child) || child.pid === undefined) return
    child.kill(options.signal ?? 'SIGTERM')
    const timer = setTimeout(() => { child.kill('SIGKILL') }, options.grace ?? 5000)
    await exited
    clearTimeout(timer)
  })

  const ready = options.ready
  let match: RegExpExecArray | null = null
  // The wait below sleeps in naps; output and exit cut a nap short.
  let wake = (): void => {}
  const nap = (ms: number): Promise<void> => new Promise((resolve) => {
    const timer = setTimeout(resolve, ms)
    wake = () => { clearTimeout(timer); resolve() }
  })
  for (const name of ['stdout', 'stderr'] as const) {
    child[name]?.setEncoding('utf8').on('data', (d: string) => {
      output += d
      streams[name] += d
      if (ready instanceof RegExp && match === null) {
        match = ready.exec(streams[name])
        if (match !== null) wake()
      }
    })
  }
  let gone = false
  void exited.then(() => { gone = true; wake() })

  const within = options.within ?? 10_000
  const end = Date.now() + within
  let late = false
  for (;;) {
    if (gone) break
    if (ready === undefined || match !== null) return { child, output: () => output, match, exited, stop }
    if (!(ready instanceof RegExp) && await listeningOn(ready.ports)) return { child, output: () => output, match, exited, stop }
    const left = end - Date.now()
    if (left <= 0) { late = true; break }
    await nap(ready instanceof RegExp ? left : Math.min(20, left))
  }

  if (!hasExited(child) && child.pid !== undefined) child.kill('SIGKILL')
  const [code, signal] = await exited
  // What it printed last may still be in the pipes.
  await Promise.race([drained, nap(1000)])
  wake()
  const what = ready === undefined ? 'starting' : ready instanceof RegExp ? `printing ${String(ready)}` : `listening on ${ready.ports.join(', ')}`
  const why = spawnError !== null
    ? `could not be started (${(spawnError as Error).message})`
    : late ? `was not ${what} within ${within} ms` : `exited (${String(code ?? signal)}) before ${what}`
  throw new Error(`${file} ${why}:\n${output}`)
}

/**
 * What systemd does for socket activation, first half: a socket listening on 127.0.0.1 that a
 * child inherits as its fd 3 (`fds: [socket.fd]`). The parent closes its copy once the child
 * has it; closed after the test in any case.
 */
export async function activationSocket (t: TestContext): Promise<{ port: number, fd: number, server: net.Server }> {
  const server = net.createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.after(() => { server.close() })
  const { port } = server.address() as AddressInfo
  const fd = (server as unknown as { _handle: { fd: number } })._handle.fd
  return { port, fd, server }
}

/**
 * Second half: the command that runs node `script` as an activated service, its own pid as
 * `LISTEN_PID` (set by the shell that then execs node, as systemd sets it) and `LISTEN_FDS=1`.
 */
export function activated (script: string): [string, string[]] {
  return ['/bin/sh', ['-c', `LISTEN_PID=$$ LISTEN_FDS=1 exec "${process.execPath}" "${script}"`]]
}

/**
 * The absolute path of a program: `name` itself when it is a path, else the first executable
 * `name` on the PATH, in the sbin directories (where Debian puts daemons), then in `more`.
 */
export async function findProgram (name: string, more: string[] = []): Promise<string | null> {
  const dirs = name.includes('/') ? [''] : [...(process.env.PATH ?? '').split(delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin', ...more]
  for (const dir of dirs) {
    if (!name.includes('/') && dir === '') continue
    const file = name.includes('/') ? name : join(dir, name)
    try {
      await access(file, constants.X_OK)
      return file
    } catch {}
  }
  return null
}

/** A port that was free on 127.0.0.1 a moment ago (for a program that must be told its port). */
export async function freePort (): Promise<number> {
  const s = net.createServer()
  s.listen(0, '127.0.0.1')
  await once(s, 'listening')
  const { port } = s.address() as AddressInfo
  await new Promise<void>((resolve) => s.close(() => resolve()))
  return port
}
