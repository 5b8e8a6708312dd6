/**
 * Child processes for the benchmark: every server under test, peer and load tool runs in
 * its own process, optionally pinned to a CPU with `taskset`, and always under
 * `timeout -s KILL <limit>` so that nothing outlives the run even if the orchestrator is
 * killed outright. Every child started here is remembered and killed on exit.
 *
 * CPU time and RSS are read from /proc of the real process (the command that `timeout`
 * forks; `taskset` and the `ulimit` shell exec into it, so it keeps their pid).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { readFileSync, readdirSync } from 'node:fs'
import net from 'node:net'

const live = new Set<ChildProcess>()

let tasksetWorks: boolean | undefined
/** Whether `taskset -c 0,1` works here (it may not inside some containers). */
export function canPin (): boolean {
  if (tasksetWorks === undefined) {
    const r = spawnSync('taskset', ['-c', '0', 'true'], { stdio: 'ignore' })
    tasksetWorks = r.status === 0 && cpuCount() >= 2
  }
  return tasksetWorks
}

export function cpuCount (): number {
  try {
    return readdirSync('/sys/devices/system/cpu').filter((d) => /^cpu\d+$/.test(d)).length
  } catch {
    return 1
  }
}

export interface StartOptions {
  /** CPU list for taskset (`'1'`), or null for no pinning. */
  cpu: string | null
  /** Hard lifetime in seconds (the `timeout -s KILL` limit). */
  limitSeconds: number
  env?: NodeJS.ProcessEnv
  /** Raise the soft open-files limit to the hard one before exec. */
  raiseNofile?: boolean
  cwd?: string
}

export interface Child {
  name: string
  proc: ChildProcess
  /** The pid of the command itself (not of `timeout`). */
  pid: number
  /** Lines printed on stdout so far. */
  lines: string[]
  /** The last few KB of stderr, for error messages. */
  stderrTail: () => string
  exited: Promise<number | null>
  exitCode: () => number | null | undefined
}

function wrap (cmd: string, args: string[], o: StartOptions): [string, string[]] {
  let inner: string[] = [cmd, ...args]
  if (o.raiseNofile === true) inner = ['bash', '-c', 'ulimit -n "$(ulimit -Hn)" && exec "$@"', 'bash', ...inner]
  if (o.cpu !== null && canPin()) inner = ['taskset', '-c', o.cpu, ...inner]
  return ['timeout', ['-s', 'KILL', String(Math.ceil(o.limitSeconds)), ...inner]]
}

/** The first child of `pid` (what `timeout` forked), polled until it exists. */
async function childPid (pid: number, timeoutMs = 5000): Promise<number> {
  const end = Date.now() + timeoutMs
  while (Date.now() < end) {
    try {
      const kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim()
      if (kids.length > 0) return Number(kids.split(/\s+/)[0])
    } catch {
      break
    }
    await sleep(5)
  }
  throw new Error(`no child process under pid ${pid}`)
}

/** Start a long-lived child (a server or peer). Its stdin is a pipe: Node servers exit when it closes. */
export async function start (name: string, cmd: string, args: string[], o: StartOptions): Promise<Child> {
  const [c, a] = wrap(cmd, args, o)
  const proc = spawn(c, a, { stdio: ['pipe', 'pipe', 'pipe'], env: o.env ?? process.env, cwd: o.cwd })
  live.add(proc)
  const lines: string[] = []
  let partial = ''
  let stderr = ''
  let code: number | null | undefined
  proc.stdout?.setEncoding('utf8')
  proc.stdout?.on('data', (d: string) => {
    partial += d
    const parts = partial.split('\n')
    partial = parts.pop() ?? ''
    lines.push(...parts)
  })
  proc.stderr?.setEncoding('utf8')
  proc.stderr?.on('data', (d: string) => { stderr = (stderr + d).slice(-4000) })
  proc.stdin?.on('error', () => {})
  const exited = new Promise<number | null>((resolve) => {
    proc.on('exit', (status) => {
      code = status
      live.delete(proc)
      resolve(status)
    })
    proc.on('error', () => { code = null; live.delete(proc); resolve(null) })
  })
  if (proc.pid === undefined) throw new Error(`${name}: could not start ${cmd}`)
  const pid = await childPid(proc.pid)
  return { name, proc, pid, lines, stderrTail: () => stderr, exited, exitCode: () => code }
}

/** Wait for a stdout line matching `re`. */
export async function waitForLine (child: Child, re: RegExp, timeoutMs = 15000): Promise<RegExpMatchArray> {
  const end = Date.now() + timeoutMs
  while (Date.now() < end) {
    for (const line of child.lines) {
      const m = re.exec(line)
      if (m !== null) return m
    }
    if (child.exitCode() !== undefined) break
    await sleep(10)
  }
  throw new Error(`${child.name}: no line matching ${String(re)} (exit ${String(child.exitCode())}); stderr: ${child.stderrTail()}`)
}

/** Wait until something accepts TCP connections on 127.0.0.1:port. */
export async function waitForPort (port: number, timeoutMs = 10000, child?: Child): Promise<void> {
  const end = Date.now() + timeoutMs
  while (Date.now() < end) {
    if (child !== undefined && child.exitCode() !== undefined) break
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port })
      s.once('connect', () => { s.destroy(); resolve(true) })
      s.once('error', () => { resolve(false) })
    })
    if (ok) return
    await sleep(25)
  }
  throw new Error(`port ${port} not accepting${child !== undefined ? ` (${child.name} exit ${String(child.exitCode())}; stderr: ${child.stderrTail()})` : ''}`)
}

/** Stop a child: SIGTERM (forwarded by `timeout`), then SIGKILL after `graceMs`. */
export async function stop (child: Child, graceMs = 5000): Promise<void> {
  if (child.exitCode() !== undefined) return
  child.proc.stdin?.end()
  try { process.kill(child.pid, 'SIGTERM') } catch {}
  const timer = setTimeout(() => {
    try { process.kill(child.pid, 'SIGKILL') } catch {}
    try { child.proc.kill('SIGKILL') } catch {}
  }, graceMs)
  await child.exited
  clearTimeout(timer)
}

/** Kill every child still running (synchronous: safe in an 'exit' handler). */
export function killAll (): void {
  for (const proc of live) {
    // `timeout` does not forward SIGKILL: kill its child first, then it.
    try {
      const kids = readFileSync(`/proc/${String(proc.pid)}/task/${String(proc.pid)}/children`, 'utf8').trim()
      for (const k of kids.split(/\s+/)) if (k !== '') process.kill(Number(k), 'SIGKILL')
    } catch {}
    try { proc.kill('SIGKILL') } catch {}
  }
  live.clear()
}

export function liveCount (): number {
  return live.size
}

/** utime + stime of a process (all its threads), in seconds. */
export function cpuSeconds (pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  // Fields after the command: state(3) ppid(4) ... utime(14) stime(15), counted from 1.
  const utime = Number(fields[14 - 3])
  const stime = Number(fields[15 - 3])
  return (utime + stime) / clockTicks()
}

let ticks: number | undefined
function clockTicks (): number {
  if (ticks === undefined) {
    const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' })
    ticks = Number(r.stdout.trim()) || 100
  }
  return ticks
}

/** Busy and total jiffies of one CPU (all processes on it), from /proc/stat. */
export function cpuJiffies (cpu: string | null): { busy: number, total: number } | null {
  if (cpu === null || !/^\d+$/.test(cpu)) return null
  const line = readFileSync('/proc/stat', 'utf8').split('\n').find((l) => l.startsWith(`cpu${cpu} `))
  if (line === undefined) return null
  const v = line.trim().split(/\s+/).slice(1).map(Number)
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0)
  const idle = v[3] + v[4]
  return { busy: total - idle, total }
}

/** Resident set size in KiB. */
export function rssKiB (pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const m = /VmRSS:\s+(\d+)\s+kB/.exec(status)
  if (m === null) throw new Error(`no VmRSS for ${pid}`)
  return Number(m[1])
}

/** Open file descriptors of a process. */
export function fdCount (pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length
}

/** The hard open-files limit children get. */
export function hardNofile (): number {
  const r = spawnSync('bash', ['-c', 'ulimit -Hn'], { encoding: 'utf8' })
  const v = r.stdout.trim()
  return v === 'unlimited' ? 1 << 20 : Number(v)
}

export interface RunResult { code: number | null, stdout: string, stderr: string, wallSeconds: number, timedOut: boolean }

/** Run a short-lived command (a load tool) to completion, killed after `timeoutSeconds`. */
export async function run (cmd: string, args: string[], o: { cpu: string | null, timeoutSeconds: number, input?: string, env?: NodeJS.ProcessEnv, raiseNofile?: boolean }): Promise<RunResult> {
  const [c, a] = wrap(cmd, args, { cpu: o.cpu, limitSeconds: o.timeoutSeconds, raiseNofile: o.raiseNofile })
  const t0 = process.hrtime.bigint()
  const proc = spawn(c, a, { stdio: ['pipe', 'pipe', 'pipe'], env: o.env ?? process.env })
  live.add(proc)
  let stdout = ''
  let stderr = ''
  proc.stdout?.setEncoding('utf8')
  proc.stdout?.on('data', (d: string) => { stdout += d })
  proc.stderr?.setEncoding('utf8')
  proc.stderr?.on('data', (d: string) => { stderr = (stderr + d).slice(-20000) })
  proc.stdin?.on('error', () => {})
  proc.stdin?.end(o.input ?? '')
  const code = await new Promise<number | null>((resolve) => {
    proc.on('exit', (status) => resolve(status))
    proc.on('error', () => resolve(null))
  })
  live.delete(proc)
  const wallSeconds = Number(process.hrtime.bigint() - t0) / 1e9
  return { code, stdout, stderr, wallSeconds, timedOut: code === 137 || code === 124 }
}

export async function sleep (ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms))
}

/** A TCP port free on 127.0.0.1 right now (for peers that must be told their port). */
export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = net.createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address()
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0
      s.close(() => resolve(port))
    })
  })
}

/** Version line of a command, or 'not found'. */
export function versionOf (cmd: string, args: string[], re?: RegExp): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' })
  if (r.error !== undefined) return 'not found'
  const text = `${r.stdout ?? ''}\n${r.stderr ?? ''}`
  if (re !== undefined) {
    const m = re.exec(text)
    if (m !== null) return m[1] ?? m[0]
  }
  return text.trim().split('\n')[0] ?? ''
}
