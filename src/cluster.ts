/**
 * `portmux/cluster`: run a portmux app on every core with `node:cluster`, and replace
 * its workers one at a time without losing a connection.
 *
 * Why this works with `node:cluster` and not with `reusePort`: in round-robin mode (the
 * default everywhere but Windows) the primary owns the one listening socket and hands
 * each accepted connection to a worker over IPC, one at a time per worker. A worker that
 * has closed its server answers such a hand-off with "not accepted" and the primary gives
 * the connection to another worker; only when the last worker leaves a listening socket
 * does the primary close it and the connections queued on it. So a restart forks the
 * replacement first, waits until it listens, and only then drains the old worker. With
 * the operating system's scheduling (`SCHED_NONE`) the workers share one socket and one
 * accept queue, which outlives any single worker as well.
 *
 * The same script runs as the primary and as every worker:
 *
 *   const cluster = await runCluster({ start: async () => { ...; await app.listen(...); return app } })
 *
 * In a worker, `start()` builds the app and listens; the worker tells the primary it is
 * ready once `start()` has resolved. Asked to drain, it stops accepting and lets the
 * connections it already accepted send their first request (the portmux server's
 * `quiesce()`), calls the app's `close()` (requests in flight finish), then leaves the
 * cluster and exits.
 */
import cluster, { type Worker } from 'node:cluster'
import { once } from 'node:events'
import net from 'node:net'
import { availableParallelism } from 'node:os'
import { CLUSTER_DEV_CERTIFICATE, devCertificate } from './dev-certificate.js'
import { InvalidOptionError, PortmuxError } from './errors.js'

/** Something the worker can close: a Fastify instance, or any object whose `close()` settles once connections have drained. */
export interface Closable {
  close (): PromiseLike<unknown>
}

export interface ClusterSignals {
  /** Signal to the primary that starts a rolling restart; `null` for none. Default `'SIGHUP'`. */
  restart?: NodeJS.Signals | null
  /** Signals to the primary that drain every worker and exit with 0. Default `['SIGINT', 'SIGTERM']`. */
  stop?: NodeJS.Signals[]
}

export interface ClusterOptions<T extends Closable | net.Server> {
  /** Runs in each worker: build the app, listen, and return it. Ready means: this promise resolved. */
  start: () => Promise<T> | T
  /** Worker processes. Default: `os.availableParallelism()`. */
  workers?: number
  /** ms a draining worker gets to finish its connections before it leaves anyway (killed 5 s later if still there). Default 30000. */
  drainTimeout?: number
  /** ms a new worker gets to become ready. Default 30000. */
  readyTimeout?: number
  /** Signals the primary handles, or `false` to leave signals alone (call `restart()` / `stop()` yourself). */
  signals?: ClusterSignals | false
  /** What happened, as it happens (primary only). Default: unexpected exits and failed restarts go to stderr. */
  onEvent?: (event: ClusterEvent) => void
}

export type ClusterEvent =
  | { type: 'ready', pid: number }
  | { type: 'exit', pid: number, code: number | null, signal: NodeJS.Signals | null, expected: boolean }
  | { type: 'restart', report: RestartReport }
  | { type: 'error', error: Error }

export interface ReplacedWorker {
  oldPid: number
  newPid: number
  /** ms from fork to the new worker's ready message. */
  readyMs: number
  /** ms from the drain message to the old worker's exit. */
  drainMs: number
  /** The old worker had not exited `drainTimeout` + 5 s after the drain message and was killed. */
  drainTimedOut: boolean
}

export interface RestartReport {
  durationMs: number
  replaced: ReplacedWorker[]
}

export interface ClusterPrimary {
  readonly isPrimary: true
  /** PIDs of the workers that are ready and not draining. */
  pids (): number[]
  /** Where the workers listen (from their first `listening` events), e.g. to print the port. */
  readonly addresses: ReadonlyArray<{ address: string, port: number }>
  /**
   * Replace every worker, one at a time: fork a new one, wait until it is ready, then
   * drain the old one and wait for it to exit. A call made while a restart runs starts
   * another one after it (so every worker ends up newer than the call).
   */
  restart (): Promise<RestartReport>
  /** Drain every worker at once and wait until all have exited. Idempotent. */
  stop (): Promise<void>
}

export interface ClusterWorker<T> {
  readonly isPrimary: false
  /** What `start()` returned in this worker. */
  readonly app: T
}

// ---- errors ---------------------------------------------------------------

/** A worker exited, failed or timed out before it was ready (at startup or during a restart). */
export class WorkerStartError extends PortmuxError {
  readonly pid: number
  readonly exitCode: number | null
  readonly signal: NodeJS.Signals | null

  constructor (pid: number, why: string, detail: { exitCode?: number | null, signal?: NodeJS.Signals | null, cause?: unknown } = {}) {
    super('PORTMUX_ERR_WORKER_START', `worker ${pid} did not become ready: ${why}`, { cause: detail.cause })
    this.name = 'WorkerStartError'
    this.pid = pid
    this.exitCode = detail.exitCode ?? null
    this.signal = detail.signal ?? null
  }
}

/** `restart()` was called on a cluster that is stopping or stopped. */
export class ClusterStoppedError extends PortmuxError {
  constructor () {
    super('PORTMUX_ERR_CLUSTER_STOPPED', 'the cluster is stopping')
    this.name = 'ClusterStoppedError'
  }
}

// ---- messages between primary and workers ----------------------------------

const KEY = 'portmux:cluster'
type ToPrimary = { [KEY]: 'ready' } | { [KEY]: 'failed', message: string }
type ToWorker = { [KEY]: 'drain', timeout: number }

function isMessage (m: unknown): m is Record<typeof KEY, string> & Record<string, unknown> {
  return typeof m === 'object' && m !== null && typeof (m as Record<string, unknown>)[KEY] === 'string'
}

const DEFAULT_TIMEOUT = 30_000
/** Extra time the primary gives a draining worker beyond `drainTimeout` before SIGKILL. */
const KILL_MARGIN = 5_000
/** Backoff between replacements of workers that keep dying before they are ready. */
const BACKOFF_MIN = 100
const BACKOFF_MAX = 10_000
/** A worker that dies sooner than this after its fork counts as failing to start, for the backoff. */
const MIN_LIFETIME = 5_000

function positive (name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback
  if (!Number.isInteger(value) || value <= 0) {
    throw new InvalidOptionError(`runCluster: ${name} must be a positive integer, got ${String(value)}`)
  }
  return value
}

/**
 * Run `start` on `workers` processes behind one listening socket held by the primary.
 * In the primary, resolves once every worker is ready; in a worker, once `start()` has
 * resolved and the primary has been told.
 */
export async function runCluster<T extends Closable | net.Server> (options: ClusterOptions<T>): Promise<ClusterPrimary | ClusterWorker<T>> {
  if (typeof options?.start !== 'function') {
    throw new InvalidOptionError('runCluster: start must be a function')
  }
  const drainTimeout = positive('drainTimeout', options.drainTimeout, DEFAULT_TIMEOUT)
  if (cluster.isPrimary) {
    const primary = new Primary({
      workers: positive('workers', options.workers, availableParallelism()),
      drainTimeout,
      readyTimeout: positive('readyTimeout', options.readyTimeout, DEFAULT_TIMEOUT),
      signals: options.signals === false ? null : options.signals ?? {},
      onEvent: options.onEvent ?? defaultOnEvent
    })
    await primary.start()
    return primary
  }
  return await runWorker(options.start, options.signals === false ? null : options.signals ?? {})
}

function defaultOnEvent (event: ClusterEvent): void {
  if (event.type === 'exit' && !event.expected) {
    console.error(`portmux cluster: worker ${event.pid} exited unexpectedly (${event.signal ?? `code ${String(event.code)}`})`)
  } else if (event.type === 'error') {
    console.error(`portmux cluster: ${event.error.message}`)
  }
}

// ---- worker -----------------------------------------------------------------

/**
 * A portmux server that can stop accepting and let the connections it already accepted
 * send their first request before `close()` (which closes connections still being sniffed
 * at once, and HTTP connections that carry no request).
 */
interface Quiescent {
  quiesce (): Promise<void>
}

/** The portmux server behind what `start()` returned: itself, `app.portmux` (Fastify plugin) or `app.server`. */
function quiescentOf (app: unknown): Quiescent | null {
  const a = app as { portmux?: unknown, server?: unknown } | null
  for (const candidate of [a, a?.portmux, a?.server]) {
    if (typeof (candidate as Partial<Quiescent> | null | undefined)?.quiesce === 'function') return candidate as Quiescent
  }
  return null
}

/** Stop accepting, let the connections already accepted send their first request, then close and drain. */
async function closeApp (app: Closable | net.Server): Promise<void> {
  await quiescentOf(app)?.quiesce()
  if (app instanceof net.Server) {
    // Called even when no longer listening (quiesce() closed the listeners): close() is what drains.
    await new Promise<void>((resolve) => { app.close(() => resolve()) })
  } else {
    await app.close()
  }
}

function send (message: ToPrimary): void {
  // A lost channel means the primary is gone; this process then exits on 'disconnect'.
  process.send?.(message, undefined, undefined, ignore)
}

function ignore (): void {}

async function runWorker<T extends Closable | net.Server> (start: () => Promise<T> | T, signals: ClusterSignals | null): Promise<ClusterWorker<T>> {
  // The primary decides when workers stop: a signal sent to the whole process group
  // (Ctrl-C, a terminal hang-up) must not cut connections here.
  const ignored = signals === null ? [] : [...(signals.stop ?? ['SIGINT', 'SIGTERM']), ...(signals.restart === null ? [] : [signals.restart ?? 'SIGHUP'])]
  for (const s of ignored) process.on(s, ignore)

  let drain: Promise<void> | null = null
  let started: Promise<T> | null = null

  const onMessage = (message: unknown): void => {
    if (!isMessage(message) || message[KEY] !== 'drain' || drain !== null) return
    const timeout = typeof message.timeout === 'number' ? message.timeout : DEFAULT_TIMEOUT
    drain = drainWorker(started, timeout, () => {
      process.removeListener('message', onMessage)
      for (const s of ignored) process.removeListener(s, ignore)
    })
  }
  process.on('message', onMessage)

  try {
    started = Promise.resolve(start())
    const app = await started
    if (app instanceof net.Server && !app.listening) await once(app, 'listening')
    send({ [KEY]: 'ready' })
    return { isPrimary: false, app }
  } catch (err) {
    send({ [KEY]: 'failed', message: err instanceof Error ? (err.stack ?? err.message) : String(err) })
    process.exitCode = 1
    // Leave once the message is out; never serve.
    cluster.worker?.disconnect()
    throw err
  }
}

/**
 * Close the app — `quiesce()` first when the server has it (it stops accepting and lets the
 * connections already here send their first request), then `close()` (requests in flight
 * finish, HTTP/2 gets GOAWAY, raw routes `closeGrace`) — at most `timeout` ms; then leave
 * the cluster. Leaving is a round trip through the primary: connections it handed over
 * before it heard that this server closed arrive first and are handed back (a closed
 * server answers "not accepted"), so none is left behind in the IPC channel. Exiting
 * without that round trip leaves such a connection with nobody: its client hangs.
 */
async function drainWorker<T extends Closable | net.Server> (started: Promise<T> | null, timeout: number, cleanup: () => void): Promise<void> {
  let deadline: NodeJS.Timeout | null = null
  const expired = new Promise<void>((resolve) => {
    deadline = setTimeout(() => {
      console.error(`portmux cluster: worker ${process.pid} still draining after ${timeout} ms; leaving anyway`)
      resolve()
    }, timeout)
  })
  try {
    const app = started === null ? null : await started.catch(() => null)
    if (app !== null) await Promise.race([closeApp(app), expired])
  } catch (err) {
    console.error(`portmux cluster: worker ${process.pid}: close() failed:`, err)
  } finally {
    if (deadline !== null) clearTimeout(deadline)
    cleanup()
  }
  process.once('disconnect', () => process.exit(0))
  if (cluster.worker?.isConnected() === true) cluster.worker.disconnect()
  else process.exit(0)
}

// ---- primary ----------------------------------------------------------------

type Phase = 'starting' | 'ready' | 'draining'

interface Entry {
  worker: Worker
  pid: number
  phase: Phase
  forkedAt: number
  /** The one timer of this worker: the ready deadline while starting, the kill deadline while draining. */
  timer: NodeJS.Timeout | null
  /** Set by the worker's `failed` message: why `start()` threw. */
  failure: string | null
  exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
  ready: Promise<void>
  drainTimedOut: boolean
}

interface PrimaryConfig {
  workers: number
  drainTimeout: number
  readyTimeout: number
  signals: ClusterSignals | null
  onEvent: (event: ClusterEvent) => void
}

class Primary implements ClusterPrimary {
  readonly isPrimary = true
  readonly addresses: Array<{ address: string, port: number }> = []

  private readonly entries = new Map<number, Entry>()
  private stopping: Promise<void> | null = null
  /** The restart running now, and the one queued behind it. */
  private running: Promise<RestartReport> | null = null
  private queued: Promise<RestartReport> | null = null
  private backoff = 0
  private backoffTimer: NodeJS.Timeout | null = null
  private readonly signalListeners: Array<[NodeJS.Signals, () => void]> = []
  /** What every worker is forked with: the one development certificate they all serve for `tls: 'dev'`. */
  private env: Record<string, string> = {}

  constructor (private readonly config: PrimaryConfig) {}

  async start (): Promise<void> {
    // Made once here, whether or not the app uses it: a worker cannot ask for it before it
    // builds its server, and certificates that differ per worker break TLS session reuse and
    // pinning across workers. (ACME needs nothing of the kind: the workers share the storage
    // directory, one of them orders under its lock, and all serve what it stored.)
    const pems = await devCertificate().catch(() => null)
    if (pems !== null) this.env = { [CLUSTER_DEV_CERTIFICATE]: JSON.stringify(pems) }
    const fresh: Entry[] = []
    for (let i = 0; i < this.config.workers; i++) fresh.push(this.fork())
    try {
      await Promise.all(fresh.map(async (e) => await e.ready))
    } catch (err) {
      await this.stop()
      throw err
    }
    this.installSignals()
  }

  pids (): number[] {
    return [...this.entries.values()].filter((e) => e.phase === 'ready').map((e) => e.pid)
  }

  restart (): Promise<RestartReport> {
    if (this.stopping !== null) return Promise.reject(new ClusterStoppedError())
    if (this.running === null) {
      this.running = this.rollingRestart().finally(() => { this.running = null })
      return this.running
    }
    this.queued ??= this.running.catch(() => {}).then(() => {
      this.queued = null
      return this.restart()
    })
    return this.queued
  }

  stop (): Promise<void> {
    this.stopping ??= this.stopAll()
    return this.stopping
  }

  // -- workers --

  private fork (): Entry {
    const worker = cluster.fork(this.env)
    const pid = worker.process.pid ?? -1
    let markReady!: () => void
    let failStart!: (err: Error) => void
    const entry: Entry = {
      worker,
      pid,
      phase: 'starting',
      forkedAt: Date.now(),
      timer: null,
      failure: null,
      exited: new Promise((resolve) => {
        worker.process.once('exit', (code, signal) => resolve({ code, signal }))
      }),
      ready: new Promise<void>((resolve, reject) => { markReady = resolve; failStart = reject }),
      drainTimedOut: false
    }
    // Never an unhandled rejection: whoever waits for readiness handles it.
    entry.ready.catch(() => {})
    this.entries.set(worker.id, entry)

    entry.timer = setTimeout(() => {
      entry.timer = null
      failStart(new WorkerStartError(pid, `not ready after ${this.config.readyTimeout} ms`))
      worker.process.kill('SIGKILL')
    }, this.config.readyTimeout)

    worker.on('message', (message: unknown) => {
      if (!isMessage(message)) return
      if (message[KEY] === 'ready') {
        markReady()
        if (entry.phase !== 'starting') return
        this.clearTimer(entry)
        entry.phase = 'ready'
        this.config.onEvent({ type: 'ready', pid })
      } else if (message[KEY] === 'failed') {
        entry.failure = typeof message.message === 'string' ? message.message : 'start() failed'
      }
    })
    // A process that could not be spawned or signalled: reported, never thrown in the primary.
    worker.on('error', (error: Error) => { this.config.onEvent({ type: 'error', error }) })
    worker.on('listening', (address: { address: string | null, port: number }) => {
      if (this.addresses.some((a) => a.port === address.port && a.address === address.address)) return
      this.addresses.push({ address: address.address ?? '', port: address.port })
    })
    worker.once('exit', (code: number | null, signal: NodeJS.Signals | null) => {
      this.clearTimer(entry)
      this.entries.delete(worker.id)
      const expected = entry.phase === 'draining'
      // Settles `ready` for whoever still waits (a no-op once it was ready).
      const why = entry.failure ?? (signal !== null ? `killed by ${signal}` : `exited with code ${String(code)}`)
      failStart(new WorkerStartError(pid, why, { exitCode: code, signal, cause: entry.failure ?? undefined }))
      this.config.onEvent({ type: 'exit', pid, code, signal, expected })
      if (!expected) this.replenish(entry.phase === 'starting' || Date.now() - entry.forkedAt < MIN_LIFETIME)
    })
    return entry
  }

  private clearTimer (entry: Entry): void {
    if (entry.timer !== null) clearTimeout(entry.timer)
    entry.timer = null
  }

  /** Workers that serve or will serve: everyone not draining. */
  private active (): number {
    let n = 0
    for (const e of this.entries.values()) if (e.phase !== 'draining') n++
    return n
  }

  /**
   * Keep `workers` workers: replace one that died on its own (not one that failed to
   * replace another in a restart: that restart has failed). Workers that keep dying young
   * are replaced with a growing delay, up to 10 s.
   */
  private replenish (young: boolean): void {
    this.backoff = young ? Math.min(BACKOFF_MAX, Math.max(BACKOFF_MIN, this.backoff * 2)) : 0
    if (this.stopping !== null || this.backoffTimer !== null) return
    if (this.active() >= this.config.workers) return
    const delay = young ? this.backoff : 0
    this.backoffTimer = setTimeout(() => {
      this.backoffTimer = null
      if (this.stopping !== null) return
      while (this.active() < this.config.workers) this.fork()
    }, delay)
  }

  /** Ask a worker to drain; resolves when it has exited (killed after drainTimeout + a margin). */
  private async drain (entry: Entry): Promise<void> {
    if (!this.entries.has(entry.worker.id)) {
      await entry.exited
      return
    }
    if (entry.phase !== 'draining') {
      this.clearTimer(entry)
      entry.phase = 'draining'
      const message: ToWorker = { [KEY]: 'drain', timeout: this.config.drainTimeout }
      // A worker whose channel is gone is on its way out already; the kill timer below bounds it.
      if (entry.worker.isConnected()) entry.worker.send(message, undefined, ignore)
      entry.timer = setTimeout(() => {
        entry.timer = null
        entry.drainTimedOut = true
        entry.worker.process.kill('SIGKILL')
      }, this.config.drainTimeout + KILL_MARGIN)
    }
    await entry.exited
  }

  private async rollingRestart (): Promise<RestartReport> {
    const began = Date.now()
    const replaced: ReplacedWorker[] = []
    const old = [...this.entries.values()].filter((e) => e.phase === 'ready')
    for (const entry of old) {
      if (this.stopping !== null) throw new ClusterStoppedError()
      // Died on its own meanwhile: its replacement is already started.
      if (!this.entries.has(entry.worker.id)) continue
      const fresh = this.fork()
      await fresh.ready
      const readyMs = Date.now() - fresh.forkedAt
      const drainStart = Date.now()
      await this.drain(entry)
      replaced.push({ oldPid: entry.pid, newPid: fresh.pid, readyMs, drainMs: Date.now() - drainStart, drainTimedOut: entry.drainTimedOut })
    }
    const report = { durationMs: Date.now() - began, replaced }
    this.config.onEvent({ type: 'restart', report })
    return report
  }

  private async stopAll (): Promise<void> {
    if (this.backoffTimer !== null) clearTimeout(this.backoffTimer)
    this.backoffTimer = null
    // A second stop signal while draining is absorbed (stop is idempotent); the handlers
    // go once every worker has exited.
    await Promise.all([...this.entries.values()].map(async (e) => { await this.drain(e) }))
    this.removeSignals()
  }

  // -- signals --

  private installSignals (): void {
    const signals = this.config.signals
    if (signals === null || this.stopping !== null) return
    const restart = signals.restart === undefined ? 'SIGHUP' : signals.restart
    if (restart !== null) {
      this.listen(restart, () => {
        this.restart().catch((error: Error) => {
          if (!(error instanceof ClusterStoppedError)) this.config.onEvent({ type: 'error', error })
        })
      })
    }
    for (const s of signals.stop ?? ['SIGINT', 'SIGTERM']) {
      this.listen(s, () => {
        this.stop().then(() => process.exit(0), () => process.exit(1))
      })
    }
  }

  private listen (signal: NodeJS.Signals, listener: () => void): void {
    process.on(signal, listener)
    this.signalListeners.push([signal, listener])
  }

  private removeSignals (): void {
    for (const [signal, listener] of this.signalListeners) process.removeListener(signal, listener)
    this.signalListeners.length = 0
  }
}
