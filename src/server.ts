/**
 * `MuxServer`: the byte-sniffing listener. A `net.Server` whose connections go through
 * the pipeline and on to the inner HTTP servers or the raw routes.
 */
import diagnostics_channel from 'node:diagnostics_channel'
import net, { type AddressInfo, type Socket } from 'node:net'
import type { RequestListener } from 'node:http'
import tls, { type SecureContextOptions, type TlsOptions } from 'node:tls'
import { devCertificate, sharedDevCertificate } from './dev-certificate.js'
import { InvalidOptionError, PortmuxError } from './errors.js'
import { HttpServers } from './handlers/http.js'
import { drainable, fresh } from './handlers/http-connection.js'
import { routeTarget } from './handlers/routes.js'
import { TlsTerminator } from './handlers/tls-route.js'
import { AcmeManager } from './handlers/acme/manager.js'
import type { ConnectionInfo, MuxOptions, MuxStats, RefusalInfo, TcpRoute } from './types.js'
import type { MuxEventName, MuxEvents, MuxListener } from './core/events.js'
import { Listeners, planListen, type ListenPlan } from './core/listeners.js'
import { resolveOptions, type ResolvedOptions } from './core/options.js'
import { Pipeline } from './core/pipeline.js'
import { pinTickObjectMaps } from './core/tick-maps.js'

/** Marks portmux servers across copies of the package (the plugin checks it). */
export const kMuxServer = Symbol.for('portmux.server')

/**
 * ms a TLS handshake may take once a connection was judged TLS, unless the `tls` options say
 * otherwise (Node's own default is 120 s: long enough for a slow-handshake attack).
 */
const DEFAULT_HANDSHAKE_TIMEOUT = 30_000

/** How often a closing server looks for HTTP/1 connections that have gone idle. */
const DRAIN_INTERVAL = 50

/** The logger the Fastify plugin lends the server; without it, warnings go to `process.emitWarning`. */
export interface MuxLogger {
  warn (obj: object, msg?: string): void
  debug (obj: object, msg?: string): void
  debugEnabled (): boolean
}

/** Published for every decision (`{ server, info }`), only while someone subscribes. */
export const decisionChannel = diagnostics_channel.channel('portmux:decision')
/** Published for every connection closed before a decision (`{ server, info }`). */
export const refusalChannel = diagnostics_channel.channel('portmux:refusal')

/** What a log line carries of a decision: the bytes as a length, never their content. */
function summary (info: ConnectionInfo | RefusalInfo): object {
  const { bytes, ...rest } = info
  return { ...rest, bytes: bytes.length }
}

// EventEmitter listeners take anything; they are passed through untouched.
type Listener = (...args: any[]) => void

type State = 'idle' | 'listening' | 'quiescing' | 'closing'

/** Events typed by name (src/core/events.ts); the class below types the methods it overrides. */
export interface MuxServer {
  once<K extends MuxEventName> (event: K, listener: MuxListener<K>): this
  prependOnceListener<K extends MuxEventName> (event: K, listener: MuxListener<K>): this
}

export class MuxServer extends net.Server {
  readonly [kMuxServer] = true
  /** Set by the Fastify plugin. */
  logger: MuxLogger | undefined = undefined

  private readonly options: ResolvedOptions
  private readonly http: HttpServers
  private readonly pipeline: Pipeline
  private readonly terminator: TlsTerminator
  /** The TLS options in use: the user's, or the development certificate once made. */
  private credentials: TlsOptions | null
  /** The `tls` options with portmux's defaults, before any certificate is set. */
  private readonly tlsDefaults: TlsOptions | null
  /** Resolves when the development certificate is in place; `null` when there is nothing to wait for. */
  private ready: Promise<void> | null = null
  private state: State = 'idle'
  /** The listeners beside the server's own handle: loopback siblings and `httpPort`. */
  private readonly extra = new Listeners((socket, origin) => { this.pipeline.accept(socket, origin) })
  /** What to bind once the main listener is up; set by `listen`. */
  private extraBinds: ListenPlan | null = null
  private drainTimer: NodeJS.Timeout | null = null
  private graceTimer: NodeJS.Timeout | null = null
  /** While quiescing: the poll for connections still waiting for their first request. */
  private quiesceTimer: NodeJS.Timeout | null = null
  private quiesceDone: (() => void) | null = null
  /** How many times close() was called: a listen deferred for the certificate is dropped by a close after it. */
  private closes = 0
  /** Obtains and renews the certificate when the `acme` option is set. */
  private readonly acme: AcmeManager | null = null
  /** Settles when the certificate manager, stopped by `close()`, has nothing more under way. */
  private acmeStopped: Promise<void> | null = null

  constructor (handler?: RequestListener, options?: MuxOptions) {
    super({ noDelay: true, allowHalfOpen: true })
    pinTickObjectMaps()
    this.options = resolveOptions(options)
    const o = this.options
    const tls = o.tls === null ? null : { handshakeTimeout: DEFAULT_HANDSHAKE_TIMEOUT, ...(o.tls === 'dev' ? {} : o.tls) }
    this.tlsDefaults = tls
    this.credentials = o.tls === 'dev' ? null : tls
    const plaintext = o.tls === null ? 'serve' : o.plaintext

    this.terminator = new TlsTerminator(() => this.credentials)
    this.http = new HttpServers({
      tls,
      plaintext,
      redirect: o.redirect,
      http2: o.http2,
      mainPort: () => this.mainPort(),
      secured: (socket) => { this.pipeline.secured(socket) },
      ...o.timeouts
    }, this)

    this.pipeline = new Pipeline({
      sniffTimeout: o.sniffTimeout,
      maxSniffBytes: o.maxSniffBytes,
      maxPending: o.maxPending,
      maxPendingPerSource: o.maxPendingPerSource,
      handshakeTimeout: tls?.handshakeTimeout ?? DEFAULT_HANDSHAKE_TIMEOUT,
      proxyProtocol: o.proxyProtocol,
      tls: o.tls !== null,
      h2c: o.http2,
      plaintext
    }, {
      tls: (socket, head) => { this.http.tls(socket, head) },
      http: (socket, origin, head) => { this.http.http(socket, origin === 'http', head) },
      h2c: (socket, origin, head) => { this.http.h2c(socket, origin === 'http', head) },
      route: (name, route) => routeTarget(name, route, {
        report: this.reportError,
        outcome: (outcome) => { this.pipeline.proxyOutcome(outcome) },
        terminator: o.tls === null ? null : this.terminator,
        secured: (socket) => { this.pipeline.secured(socket) }
      })
    }, this.reportError, {
      active: () => this.observed(),
      decision: (info) => {
        this.emit('decision', info)
        if (decisionChannel.hasSubscribers) decisionChannel.publish({ server: this, info })
        if (this.logger?.debugEnabled() === true) this.logger.debug({ portmux: summary(info) }, 'portmux decision')
      },
      refusal: (info) => {
        this.emit('refusal', info)
        if (refusalChannel.hasSubscribers) refusalChannel.publish({ server: this, info })
        if (this.logger?.debugEnabled() === true) this.logger.debug({ portmux: summary(info) }, 'portmux refused a connection')
      }
    })

    if (o.acme !== null) {
      const acme = new AcmeManager(o.acme, {
        install: (pems, event) => {
          this.applyCredentials({ ...(this.credentials ?? this.tlsDefaults), ...pems })
          // Deferred: a certificate read from storage is installed inside the constructor.
          process.nextTick(() => this.emit('certificate', event))
        },
        report: this.reportError
      })
      // The challenges are answered before any user route sees the connection.
      for (const [name, route] of acme.responder.routes()) this.pipeline.addRoute(name, route)
      this.acme = acme
    }
    for (const [name, route] of o.routes) this.pipeline.addRoute(name, route)

    // A certificate in storage is served from the first connection on.
    this.acme?.load()
    if (o.tls === 'dev') {
      // In a cluster every worker serves the one certificate the primary made.
      const shared = sharedDevCertificate()
      this.ready = (shared !== null ? Promise.resolve(shared) : devCertificate()).then((pems) => {
        // A certificate set meanwhile with setSecureContext wins.
        if (this.credentials === null) this.applyCredentials({ ...tls, ...pems })
        this.ready = null
      })
      // Reported when listen() is called; never an unhandled rejection before that.
      this.ready.catch(() => {})
    }

    this.wire()
    if (handler !== undefined) this.on('request', handler)
  }

  private readonly onConnection = (socket: Socket): void => { this.pipeline.accept(socket, 'main') }
  private readonly onClose = (): void => { this.onClosed() }

  /** The server's own listeners; put back if a blanket `removeAllListeners` took them. */
  private wire (): void {
    if (!this.listeners('connection').includes(this.onConnection)) super.on('connection', this.onConnection)
    if (!this.listeners('close').includes(this.onClose)) super.prependListener('close', this.onClose)
    this.http.bridge(this)
  }

  /** Add a raw TCP route; new connections see it at once. */
  route (name: string, route: TcpRoute): this {
    this.pipeline.addRoute(name, route)
    return this
  }

  stats (): MuxStats {
    return this.pipeline.stats()
  }

  /** The port of the server's own listener, once bound. */
  private mainPort (): number | undefined {
    const address = this.address()
    return address !== null && typeof address === 'object' ? address.port : undefined
  }

  /**
   * Replace the TLS key and certificate (any `tls.createSecureContext` options) for new
   * connections, HTTPS and TLS-terminating routes alike. Open connections keep theirs.
   */
  setSecureContext (options: SecureContextOptions): void {
    if (options === null || typeof options !== 'object') throw new InvalidOptionError('setSecureContext takes tls.createSecureContext options')
    if (this.options.tls === null) throw new InvalidOptionError('setSecureContext needs a server with tls: this one speaks plaintext only')
    // Checked here, so that a bad key or certificate is the caller's exception and nothing changes.
    const next = { ...(this.credentials ?? this.tlsDefaults), ...options }
    tls.createSecureContext(next)
    this.applyCredentials(next)
  }

  private applyCredentials (credentials: TlsOptions): void {
    this.credentials = credentials
    this.http.setSecureContext(credentials)
    this.terminator.setSecureContext(credentials)
  }

  /** The TLS options in use (`null` on a plaintext port); the development certificate once it is made. */
  get tlsOptions (): TlsOptions | null {
    return this.credentials
  }

  /** Whether anyone hears of decisions: listeners, diagnostics channel subscribers, a debug logger. */
  private observed (): boolean {
    return this.listenerCount('decision') > 0 || this.listenerCount('refusal') > 0 ||
      decisionChannel.hasSubscribers || refusalChannel.hasSubscribers ||
      this.logger?.debugEnabled() === true
  }

  /** The one report path of every `PortmuxError`: counted in `stats().errors`, then logged or emitted. */
  private readonly reportError = (err: PortmuxError): void => {
    this.pipeline.countError(err.code)
    if (this.logger !== undefined) this.logger.warn({ err }, err.message)
    else if (this.listenerCount('warning') > 0) this.emit('warning', err)
  }

  // ---- listening ---------------------------------------------------------

  override listen (...args: unknown[]): this {
    if (this.ready !== null) {
      const closes = this.closes
      this.ready.then(() => { if (this.closes === closes) this.listen(...args) }, (err: unknown) => {
        this.emit('error', err instanceof PortmuxError ? err : new PortmuxError('PORTMUX_ERR_DEV_CERTIFICATE', String(err), { cause: err }))
      })
      return this
    }
    this.pipeline.resumeAccepting()
    planListen(args, (main, plan) => {
      this.extraBinds = plan
      ;(super.listen as (...a: unknown[]) => this)(...main)
    })
    return this
  }

  /** The port of the `httpPort` listener once bound (useful with `httpPort: 0`). */
  get httpAddress (): AddressInfo | null {
    const port = this.extra.port('http')
    if (port === undefined) return null
    const main = this.address()
    return { address: main !== null && typeof main === 'object' ? main.address : '', family: main !== null && typeof main === 'object' ? main.family : '', port }
  }

  override emit<K extends MuxEventName> (event: K, ...args: MuxEvents[K]): boolean
  override emit (event: string | symbol, ...args: any[]): boolean {
    if (event === 'listening') {
      const plan = this.extraBinds
      if (plan !== null) {
        // Told again once the extra listeners are bound.
        this.extraBinds = null
        // The other loopback addresses on the same port, and `httpPort` on every address. A
        // required one that fails to bind closes the server and is its `'error'`.
        this.extra.bindPlan(plan, this.mainPort(), this.options.httpPort, (err) => {
          if (err === undefined) {
            this.emit('listening')
            return
          }
          super.close()
          this.emit('error', err)
        })
        return true
      }
      this.onListening()
    } else if (event === 'close') {
      // While quiescing every connection may be gone: 'close' waits for close().
      if (this.state === 'quiescing') return false
      // Closed when the extra listeners and their connections are gone too.
      // And when the certificate manager has finished what it had begun (a write to storage).
      this.extra.closed(() => {
        const emitClose = (): void => { super.emit('close', ...args) }
        if (this.acmeStopped === null) emitClose()
        else this.acmeStopped.then(emitClose, emitClose)
      })
      return true
    }
    return super.emit(event, ...args)
  }

  private onListening (): void {
    this.state = 'listening'
    this.http.startTracking()
    this.acme?.start()
    if (this.options.tls === 'dev') {
      const msg = 'portmux is using a self-signed development certificate (tls: \'dev\'); do not use it in production'
      if (this.logger !== undefined) this.logger.warn({ tls: 'dev' }, msg)
      else process.emitWarning(msg, { code: 'PORTMUX_DEV_CERTIFICATE' })
    }
  }

  // ---- closing -----------------------------------------------------------

  /**
   * Stop accepting; close connections still being sniffed at once; let HTTP requests in
   * flight finish and close their connections as they turn idle; GOAWAY to HTTP/2
   * sessions; give raw-route sockets `closeGrace` ms, then destroy them. `'close'` (and
   * `cb`) come when every connection has ended.
   */
  override close (cb?: (err?: Error) => void): this {
    this.closes++
    if (this.state === 'quiescing') {
      // The listeners are closed already: that is no ERR_SERVER_NOT_RUNNING.
      this.endQuiesce()
      if (cb !== undefined) this.once('close', () => cb())
      super.close()
    } else {
      super.close(cb)
    }
    if (this.acme !== null) this.acmeStopped = this.acme.stop()
    if (this.state === 'closing') return this
    this.state = 'closing'
    this.extra.close()
    this.pipeline.stopAccepting()
    this.http.close()
    this.sweep()
    this.drainTimer = setInterval(() => this.sweep(), DRAIN_INTERVAL)
    this.drainTimer.unref()
    this.graceTimer = setTimeout(() => {
      this.graceTimer = null
      for (const socket of this.pipeline.routeSockets()) socket.destroy()
    }, this.options.closeGrace)
    this.graceTimer.unref()
    return this
  }

  /**
   * Stop accepting, and resolve once every connection already accepted has been decided
   * and, for HTTP, has sent its first request — at most `closeGrace` ms. Nothing is closed:
   * call `close()` next. In a cluster, new connections go to the other workers meanwhile.
   */
  quiesce (): Promise<void> {
    if (this.state !== 'listening') return Promise.resolve()
    this.state = 'quiescing'
    super.close()
    this.extra.close()
    const deadline = Date.now() + this.options.closeGrace
    return new Promise<void>((resolve) => {
      this.quiesceDone = resolve
      const poll = (): void => {
        this.quiesceTimer = null
        if (this.waiting() && Date.now() < deadline) {
          this.quiesceTimer = setTimeout(poll, DRAIN_INTERVAL)
          this.quiesceTimer.unref()
        } else {
          this.endQuiesce()
        }
      }
      poll()
    })
  }

  /** Whether an accepted connection still waits for its first request. */
  private waiting (): boolean {
    if (this.pipeline.pendingCount() > 0) return true
    for (const socket of this.pipeline.servedSockets()) if (fresh(socket)) return true
    return false
  }

  private endQuiesce (): void {
    if (this.quiesceTimer !== null) clearTimeout(this.quiesceTimer)
    this.quiesceTimer = null
    const done = this.quiesceDone
    this.quiesceDone = null
    done?.()
  }

  /** Close HTTP connections that carry no request now. */
  private sweep (): void {
    for (const socket of this.pipeline.servedSockets()) {
      if (drainable(socket)) socket.destroy()
    }
    this.http.sweepSessions()
  }

  private onClosed (): void {
    if (this.drainTimer !== null) clearInterval(this.drainTimer)
    if (this.graceTimer !== null) clearTimeout(this.graceTimer)
    this.drainTimer = null
    this.graceTimer = null
    if (this.state === 'closing') this.state = 'idle'
  }

  /** Close idle HTTP/1 keep-alive connections (what `http.Server#closeIdleConnections` does). */
  closeIdleConnections (): void {
    this.http.closeIdleConnections()
  }

  /** Destroy every connection: sniffing, HTTP, HTTP/2 and raw routes. */
  closeAllConnections (): void {
    this.http.closeAllConnections()
    this.pipeline.destroyAll()
  }

  /** Send GOAWAY to every HTTP/2 session; streams in flight finish. */
  closeHttp2Sessions (): void {
    this.http.closeHttp2Sessions()
  }

  // ---- typed events ------------------------------------------------------
  // Only for the types (src/core/events.ts): a misspelt event name must not compile, which
  // net.Server's own `(event: string, …)` signatures would let through. Events the inner
  // HTTP servers emit reach these listeners through the bridge (`HttpServers.bridge`).

  override on<K extends MuxEventName> (event: K, listener: MuxListener<K>): this
  override on (event: string | symbol, listener: Listener): this {
    return super.on(event as string, listener)
  }

  override addListener<K extends MuxEventName> (event: K, listener: MuxListener<K>): this
  override addListener (event: string | symbol, listener: Listener): this {
    return super.addListener(event as string, listener)
  }

  override prependListener<K extends MuxEventName> (event: K, listener: MuxListener<K>): this
  override prependListener (event: string | symbol, listener: Listener): this {
    return super.prependListener(event as string, listener)
  }

  override removeListener<K extends MuxEventName> (event: K, listener: MuxListener<K>): this
  override removeListener (event: string | symbol, listener: Listener): this {
    return super.removeListener(event as string, listener)
  }

  override off<K extends MuxEventName> (event: K, listener: MuxListener<K>): this
  override off (event: string | symbol, listener: Listener): this {
    return super.off(event as string, listener)
  }

  /** As on any emitter; portmux's own listeners (accepting, closing, the bridge) are put back. */
  override removeAllListeners (event?: string | symbol): this {
    if (event === undefined) super.removeAllListeners()
    else super.removeAllListeners(event)
    this.wire()
    return this
  }
}
