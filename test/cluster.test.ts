/**
 * examples/cluster.js under load: two workers behind the primary's socket serve HTTPS
 * (HTTP/1.1 and HTTP/2), the redirect and the raw ECHO route; a SIGHUP replaces both
 * workers one at a time while a client keeps opening connections, and not one of them
 * fails; SIGTERM drains everything and the primary exits with 0.
 *
 * Then the helper's own rules, on a fixture cluster driven over IPC: a crashed worker is
 * replaced; a replacement that dies before it is ready aborts the restart with
 * WorkerStartError and leaves the old workers serving.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { fork, spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { request, startLoad, type Kind } from './cluster/load.js'
import { until } from './helpers.js'

const example = fileURLToPath(new URL('../examples/cluster.js', import.meta.url))
const fixture = fileURLToPath(new URL('./cluster/fixture.js', import.meta.url))

interface Running {
  child: ChildProcess
  port: number
  /** Everything the primary and the workers printed so far. */
  output: () => string
}

function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

function workerPids (line: string): number[] {
  return line.split(',').map((s) => Number(s.trim())).filter((n) => Number.isInteger(n) && n > 0)
}

/** Start the example with two workers; resolves once it printed its port. Everything it started is ended after the test. */
async function start (t: TestContext): Promise<Running & { pids: number[] }> {
  const child = spawn(process.execPath, [example], {
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', WORKERS: '2', LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let out = ''
  const seen = new Set<number>()
  child.stdout.setEncoding('utf8')
  child.stderr.setEncoding('utf8')
  child.stderr.on('data', (d: string) => { out += d })
  child.stdout.on('data', (d: string) => {
    out += d
    for (const m of out.matchAll(/worker (\d+) ready/g)) seen.add(Number(m[1]))
  })
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL')
      await once(child, 'exit')
    }
    // A primary killed outright leaves its workers to notice the lost channel; make sure.
    for (const pid of seen) if (alive(pid)) process.kill(pid, 'SIGKILL')
  })
  const { port, pids } = await new Promise<{ port: number, pids: number[] }>((resolve, reject) => {
    const onData = (): void => {
      const m = /on port (\d+): workers ([\d, ]+)\./.exec(out)
      if (m === null) return
      child.stdout.removeListener('data', onData)
      child.removeListener('exit', onExit)
      resolve({ port: Number(m[1]), pids: workerPids(m[2]) })
    }
    const onExit = (code: number | null): void => reject(new Error(`the example exited with ${String(code)} before listening:\n${out}`))
    child.stdout.on('data', onData)
    child.once('exit', onExit)
  })
  return { child, port, pids, output: () => out }
}

test('examples/cluster.js: two workers serve HTTPS, HTTP/2, the redirect and the raw route; a rolling restart under load fails no connection; SIGTERM exits 0', { timeout: 90_000 }, async (t) => {
  const { child, port, pids, output } = await start(t)
  assert.equal(pids.length, 2, output())

  // Every kind of connection, once.
  for (const kind of ['https', 'h2', 'redirect', 'raw'] as Kind[]) await request(kind, port, 10_000, 1)

  // A client that keeps opening connections, 32 at a time.
  const load = startLoad({ port, concurrency: 32, max: 4000, timeout: 15_000 })
  t.after(async () => { await load.stop() })
  await until(() => load.attempted() >= 300, 30_000, 'the load under way')

  // SIGHUP: replace both workers, one at a time, while the load goes on; twice.
  const done = /rolling restart done in \d+ ms: workers ([\d, ]+)/g
  const generations = [pids]
  for (let round = 1; round <= 2; round++) {
    child.kill('SIGHUP')
    await until(() => [...output().matchAll(done)].length >= round || child.exitCode !== null, 45_000, `rolling restart ${round}`)
    assert.equal(child.exitCode, null, `the primary exited during the restart:\n${output()}`)
    generations.push(workerPids([...output().matchAll(done)][round - 1][1]))
  }
  // Let the load run out on the newest workers.
  const result = await load.done

  assert.equal(result.failed, 0, `failed connections: ${JSON.stringify(result.errors)}\n${result.samples.join('\n')}`)
  assert.equal(result.succeeded, 4000)
  for (const kind of ['https', 'h2', 'redirect', 'raw'] as Kind[]) assert.ok(result.byKind[kind].ok > 0, kind)
  const all = generations.flat()
  assert.equal(new Set(all).size, 6, `every worker replaced by a new process: ${generations.map((g) => g.join(', ')).join(' → ')}`)
  for (const pid of [...generations[0], ...generations[1]]) assert.ok(!alive(pid), `old worker ${pid} still running`)
  const fresh = generations[2]

  // The new workers answer.
  for (const kind of ['https', 'h2', 'redirect', 'raw'] as Kind[]) await request(kind, port, 10_000, 2)

  // SIGTERM: every worker drains, the primary exits with 0.
  const [code, signal] = await Promise.all([once(child, 'exit'), child.kill('SIGTERM')]).then(([args]) => args as [number | null, NodeJS.Signals | null])
  assert.equal(signal, null)
  assert.equal(code, 0, output())
  for (const pid of fresh) await until(() => !alive(pid), 5000, `worker ${pid} gone`)
})

interface FixtureMessage {
  port?: number
  pids?: number[]
  event?: { type: string, pid?: number, expected?: boolean }
  report?: { replaced: Array<{ oldPid: number, newPid: number }> }
  error?: { name: string, code?: string, message: string }
}

async function echo (port: number, line: string): Promise<string> {
  const socket = net.connect({ port, host: '127.0.0.1' })
  socket.on('error', () => {})
  await once(socket, 'connect')
  const chunks: Buffer[] = []
  socket.on('data', (c: Buffer) => chunks.push(c))
  socket.end(line)
  await once(socket, 'close')
  return Buffer.concat(chunks).toString('latin1')
}

test('portmux/cluster: a crashed worker is replaced; a replacement that dies before ready aborts the restart with WorkerStartError, the old workers serving on; restarts queue', { timeout: 60_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'portmux-cluster-'))
  const failFile = join(dir, 'fail')
  t.after(() => { rmSync(dir, { recursive: true, force: true }) })
  const child = fork(fixture, [], { env: { ...process.env, FAIL_FILE: failFile }, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] })
  // The refused start prints its error: kept for the failure messages, out of the test's output.
  let output = ''
  child.stdout?.setEncoding('utf8').on('data', (d: string) => { output += d })
  child.stderr?.setEncoding('utf8').on('data', (d: string) => { output += d })
  const messages: FixtureMessage[] = []
  const seen = new Set<number>()
  child.on('message', (m: FixtureMessage) => {
    messages.push(m)
    if (m.event?.type === 'ready' && m.event.pid !== undefined) seen.add(m.event.pid)
  })
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL')
      await once(child, 'exit')
    }
    for (const pid of seen) if (alive(pid)) process.kill(pid, 'SIGKILL')
  })
  const next = async (match: (m: FixtureMessage) => boolean, what: string): Promise<FixtureMessage> => {
    await until(() => messages.some(match) || child.exitCode !== null, 30_000, what)
    const i = messages.findIndex(match)
    assert.ok(i >= 0, `the fixture exited before ${what}:\n${output}`)
    return messages.splice(i, 1)[0]
  }

  const { port, pids = [] } = await next((m) => m.port !== undefined, 'the cluster listening')
  assert.equal(pids.length, 2)
  assert.equal(await echo(port ?? 0, 'one\n'), 'one\n')

  // A worker killed outright: reported as unexpected, replaced by a new one.
  process.kill(pids[0], 'SIGKILL')
  const exit = await next((m) => m.event?.type === 'exit', 'the exit event')
  assert.deepEqual([exit.event?.pid, exit.event?.expected], [pids[0], false])
  const ready = await next((m) => m.event?.type === 'ready' && !pids.includes(m.event.pid ?? 0), 'the replacement')
  assert.ok(ready.event?.pid !== undefined && !pids.includes(ready.event.pid))
  assert.equal(await echo(port ?? 0, 'two\n'), 'two\n')
  const serving = [pids[1], ready.event.pid]

  // New workers cannot start: the restart stops at the first one, nothing else changes.
  writeFileSync(failFile, '')
  child.send('restart')
  const failed = await next((m) => m.error !== undefined || m.report !== undefined, 'the failed restart')
  assert.equal(failed.error?.name, 'WorkerStartError', JSON.stringify(failed))
  assert.equal(failed.error?.code, 'PORTMUX_ERR_WORKER_START')
  assert.match(failed.error?.message ?? '', /refusing to start/)
  assert.deepEqual([...(failed.pids ?? [])].sort(), [...serving].sort())
  assert.equal(await echo(port ?? 0, 'three\n'), 'three\n')

  // They can again: both replaced, one at a time.
  rmSync(failFile)
  child.send('restart')
  const done = await next((m) => m.error !== undefined || m.report !== undefined, 'the restart')
  assert.equal(done.error, undefined, JSON.stringify(done.error))
  assert.deepEqual(done.report?.replaced.map((r) => r.oldPid).sort(), [...serving].sort())
  for (const pid of done.pids ?? []) assert.ok(!serving.includes(pid))
  assert.equal(await echo(port ?? 0, 'four\n'), 'four\n')

  // A restart asked for while one runs comes after it: every worker ends up newer than both calls.
  child.send('restart')
  child.send('restart')
  const first = await next((m) => m.error !== undefined || m.report !== undefined, 'the first of two restarts')
  const second = await next((m) => m.error !== undefined || m.report !== undefined, 'the second of two restarts')
  assert.deepEqual(first.report?.replaced.map((r) => r.oldPid).sort(), [...(done.pids ?? [])].sort())
  assert.deepEqual(second.report?.replaced.map((r) => r.oldPid).sort(), first.report?.replaced.map((r) => r.newPid).sort())
  assert.equal(await echo(port ?? 0, 'five\n'), 'five\n')
  const last = second.pids ?? []

  child.send('stop')
  const [code] = await once(child, 'exit') as [number | null]
  assert.equal(code, 0, output)
  for (const pid of last) await until(() => !alive(pid), 5000, `worker ${pid} gone`)
})
