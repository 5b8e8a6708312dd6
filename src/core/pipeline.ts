/**
 * The connection pipeline: accept → sniff → choose a route → hand off.
 *
 * Each accepted socket gets one `Connection` record, found through one symbol on the
 * socket, for its whole life: its stage, what sniffing learnt, its place in the limits and
 * counts. The listeners are module-level functions that find it there, so a connection
 * costs one small object, not a set of closures.
 * The sniff timer has one setter (`accept`) and one clearing path (`release`), which
 * every way out of the sniffing state goes through — so it never leaks into the
 * connection that is served afterwards.
 */
import type { Socket } from 'node:net'
import { performance } from 'node:perf_hooks'
import type { ClientHelloResult } from '../sniff/tls.js'
import type { CloseReason, ConnectionInfo, Destination, MuxStats, PlaintextMode, ProxyOutcome, RefusalInfo, TcpRoute } from '../types.js'
import { DuplicateRouteError, InvalidRouteError, type PortmuxError } from '../errors.js'
import { classify, type ClassifyOptions, type ClassifyState, type Decision } from './classify.js'
import { compileRoute, type CompiledRoute, type RouteTarget } from './match.js'
import { Counters, DESTINATIONS, PLAINTEXT_DESTINATION } from './stats.js'
import type { TrustList } from './peer.js'
import { setPeer, setProxyHeader, type Peer } from '../peer.js'
import type { ProxyHeader } from '../sniff/proxy-header.js'
import { parseProxyHeader } from '../sniff/proxy-header.js'
import { PROXY_V2_SIGNATURE } from '../sniff/proxy-v2.js'
import type { Origin } from './listeners.js'
import { DeadlineQueue } from './deadlines.js'
import { SourceCounts, sourceKey } from './sources.js'

/** Who hears of decisions and refusals; `active()` is asked first so that nobody listening costs nothing. */
export interface Observer {
  active (): boolean
  decision (info: ConnectionInfo): void
  refusal (info: RefusalInfo): void
}

function connectionInfo (conn: Connection, route: string): ConnectionInfo {
  const socket = conn.socket
  const info: ConnectionInfo = {
    route,
    protocol: conn.protocol,
    remoteAddress: socket.remoteAddress,
    remotePort: socket.remotePort,
    localAddress: socket.localAddress,
    localPort: socket.localPort,
    bytes: conn.bytes,
    sniffMs: performance.now() - conn.acceptedAt
  }
  if (conn.peer !== undefined) {
    info.remoteAddress = conn.peer.address
    info.remotePort = conn.peer.port
  }
  if (conn.header !== undefined) info.proxyHeader = conn.header
  const hello = conn.hello
  if (conn.protocol === 'tls' && hello !== undefined && hello.verdict === 'match') {
    if (hello.hello.sni !== undefined) info.sni = hello.hello.sni
    info.alpn = hello.hello.alpn
  }
  return info
}

/**
 * Where connections decided for a built-in destination go, by protocol; implemented by
 * `src/handlers`. `head` holds the sniffed bytes, no longer in the socket: the target
 * replays them or answers from them. `origin` is the listener that accepted the connection
 * (redirects from `httpPort` go to the main port). Raw routes have their own targets
 * (`CompiledRoute.target`).
 */
export interface Targets {
  tls (socket: Socket, head: Buffer): void
  http (socket: Socket, origin: Origin, head: Buffer): void
  h2c (socket: Socket, origin: Origin, head: Buffer): void
  /** Make where a raw route's connections go; throws `InvalidRouteError` for a bad route. */
  route (name: string, route: TcpRoute): RouteTarget
}

export interface PipelineOptions extends ClassifyOptions {
  sniffTimeout: number
  maxSniffBytes: number
  /** Connections being sniffed or in the TLS handshake beyond which new ones are closed at once. */
  maxPending: number
  /** The same, per client source (IPv6 by /64). */
  maxPendingPerSource: number
  /** ms from the decision in which a TLS connection must finish its handshake. */
  handshakeTimeout: number
  /** Peers whose PROXY headers are believed, and whether they must send one. */
  proxyProtocol: { trusted: TrustList, required: boolean } | null
  /** What plaintext HTTP (and h2c) gets: served, redirected or rejected. */
  plaintext: PlaintextMode
}

const PROXY_STARTS = [Buffer.from('PROXY ', 'latin1'), Buffer.from(PROXY_V2_SIGNATURE)]

/** The first bytes are those of a PROXY header, of either version (as far as they go). */
function startsLikeProxyHeader (bytes: Buffer): boolean {
  return PROXY_STARTS.some((start) => {
    const n = Math.min(bytes.length, start.length)
    return n > 0 && bytes.subarray(0, n).equals(start.subarray(0, n))
  })
}

const kConnection = Symbol('portmux.connection')
const EMPTY = Buffer.alloc(0)

interface MuxSocket extends Socket {
  [kConnection]?: Connection
}

/**
 * Where a connection is in the pipeline: being sniffed; decided for TLS and in its
 * handshake (still counted against the pending limits); handed off; or closed by the
 * pipeline before it was handed off.
 */
type Stage = 'sniffing' | 'handshake' | 'open' | 'refused'

/**
 * Node's readable state: `ended` is set when EOF has been read, before `'end'` is emitted.
 * A paused stream with a `'readable'` listener emits `'readable'` when EOF arrives too, so
 * that listener sees the client's FIN: no `'end'` listener is needed while sniffing.
 */
interface WithReadableState { _readableState?: { ended?: boolean } }

/** The pipeline's record of one accepted connection, from accept to close. */
class Connection implements ClassifyState {
  stage: Stage = 'sniffing'
  /** Once handed off: the open connections of its destination or route, which it is one of. */
  open: Set<Socket> | null = null
  bytes: Buffer = EMPTY
  protocol = ''
  hello: ClientHelloResult | undefined = undefined
  helloLength = -1
  nextRoute = 0
  /** When the sniff (then the TLS handshake) deadline passes; set by its `DeadlineQueue`. */
  deadline = 0
  /** The key this connection is counted under per source; `undefined` when not counted. */
  source: string | undefined = undefined
  /** A trusted PROXY peer's connection whose header has named no client (yet): not counted per source. */
  exempt = false
  /** A trusted peer: its first bytes may be a PROXY header, read before sniffing. */
  expectHeader = false
  /** The client the PROXY header named. */
  peer: Peer | undefined = undefined
  /** The PROXY header a trusted peer sent. */
  header: ProxyHeader | undefined = undefined
  /** `performance.now()` at accept. */
  readonly acceptedAt = performance.now()

  constructor (readonly pipeline: Pipeline, readonly socket: MuxSocket, readonly origin: Origin) {}

  /** The server's, read through the pipeline rather than kept on every connection. */
  get maxSniffBytes (): number {
    return this.pipeline.maxSniffBytes
  }
}

function onReadable (this: MuxSocket): void {
  const conn = this[kConnection]
  if (conn === undefined || conn.stage !== 'sniffing') return
  let chunk: Buffer | null
  while ((chunk = this.read() as Buffer | null) !== null) {
    conn.bytes = conn.bytes.length === 0 ? chunk : Buffer.concat([conn.bytes, chunk])
  }
  const eof = (this as WithReadableState)._readableState?.ended === true
  conn.pipeline.evaluate(conn, eof ? 'client-closed' : conn.bytes.length >= conn.maxSniffBytes ? 'max-sniff-bytes' : null)
}

function onError (this: MuxSocket): void {
  const conn = this[kConnection]
  if (conn !== undefined && conn.stage === 'sniffing') conn.pipeline.refuse(conn, 'client-error')
}

function onClose (this: MuxSocket): void {
  const conn = this[kConnection]
  if (conn !== undefined && conn.stage === 'sniffing') conn.pipeline.refuse(conn, 'client-closed')
}

/** Handed off: what sniffing read is the target's now, and an open connection holds none of it. */
function forget (conn: Connection): void {
  conn.bytes = EMPTY
  conn.hello = undefined
}

function onSniffTimeout (conn: Connection): void {
  conn.pipeline.evaluate(conn, 'sniff-timeout')
}

function onServedClose (this: MuxSocket): void {
  const conn = this[kConnection]
  if (conn === undefined) return
  conn.open?.delete(this)
  if (conn.stage === 'handshake') conn.pipeline.secured(this)
}

export class Pipeline {
  private readonly routes: CompiledRoute[] = []
  /** The first route matching `'unknown'`. */
  private catchAll: CompiledRoute | undefined = undefined
  /** Connections being sniffed, in accept order (so in deadline order). */
  private readonly pending = new DeadlineQueue<Connection>(onSniffTimeout)
  /** Decided TLS connections in their handshake, in decision order. */
  private readonly handshakes = new DeadlineQueue<Connection>((conn) => { this.handshakeExpired(conn) })
  private readonly sources: SourceCounts
  /**
   * Whether connections are counted per source now. No source can hold its share while
   * fewer connections than that share are pending in all, so counting starts only when
   * that many are (then every pending one is counted at once) and stops when none is:
   * below it, accepting asks the kernel for no peer address.
   */
  private countingSources = false
  /** Open connections handed to the built-in destinations, and to each raw route. */
  private readonly served: Record<Destination, Set<Socket>> = { https: new Set(), http: new Set(), redirect: new Set(), reject: new Set() }
  private readonly routed = new Map<string, Set<Socket>>()
  private readonly counters = new Counters()
  private accepting = true
  readonly maxSniffBytes: number
  private readonly makeTarget = (name: string, route: TcpRoute): RouteTarget => this.targets.route(name, route)

  constructor (
    private readonly options: PipelineOptions,
    private readonly targets: Targets,
    private readonly report: (err: PortmuxError) => void,
    private readonly observer: Observer
  ) {
    this.sources = new SourceCounts(options.maxPendingPerSource)
    this.maxSniffBytes = options.maxSniffBytes
  }

  addRoute (name: string, route: TcpRoute): void {
    if (typeof name !== 'string' || name.length === 0) throw new InvalidRouteError(String(name), 'the name must be a non-empty string')
    if (route === null || typeof route !== 'object') throw new InvalidRouteError(name, 'the route must be an object')
    if (this.routes.some((r) => r.name === name)) throw new DuplicateRouteError(name)
    const compiled = compileRoute(name, route, this.report, this.makeTarget)
    this.routes.push(compiled)
    if (compiled.catchAll && this.catchAll === undefined) this.catchAll = compiled
    this.routed.set(name, new Set())
    this.counters.decidedRoutes.set(name, 0)
  }

  /** Count an error by its code: every `PortmuxError` reported passes here. */
  countError (code: string): void {
    this.counters.error(code)
  }

  /** Count how a proxied connection went. */
  proxyOutcome (outcome: ProxyOutcome): void {
    this.counters.proxy[outcome]++
  }

  /**
   * Start sniffing a newly accepted socket; `origin` is the listener that accepted it.
   * Connections being sniffed or in their TLS handshake count against `maxPending` and, per
   * client source, `maxPendingPerSource` (a trusted PROXY peer is counted by the client its
   * header names instead).
   */
  accept (socket: MuxSocket, origin: Origin): void {
    this.counters.accepted++
    if (!this.accepting) {
      this.refuseAtAccept(socket, 'server-closing')
      return
    }
    const inLimits = this.pending.size + this.handshakes.size
    if (inLimits >= this.options.maxPending) {
      this.refuseAtAccept(socket, 'max-pending')
      return
    }
    const pp = this.options.proxyProtocol
    const trusted = pp !== null && pp.trusted.has(socket.remoteAddress)
    const conn = new Connection(this, socket, origin)
    conn.exempt = trusted
    conn.expectHeader = trusted
    if (this.countingSources && inLimits === 0) this.countingSources = false
    if (!this.countingSources && inLimits + 1 >= this.options.maxPendingPerSource) this.startCountingSources()
    if (this.countingSources && !this.countSource(conn)) {
      this.refuseAtAccept(socket, 'max-pending-per-source')
      return
    }
    socket[kConnection] = conn
    socket.on('readable', onReadable)
    socket.on('error', onError)
    socket.on('close', onClose)
    this.pending.add(conn, this.options.sniffTimeout, conn.acceptedAt)
  }

  /** Close a connection at accept time, before any byte was read. */
  private refuseAtAccept (socket: Socket, reason: CloseReason): void {
    this.counters.closed[reason]++
    if (this.observer.active()) {
      this.observer.refusal({
        protocol: '',
        remoteAddress: socket.remoteAddress,
        remotePort: socket.remotePort,
        localAddress: socket.localAddress,
        localPort: socket.localPort,
        bytes: EMPTY,
        sniffMs: 0,
        reason
      })
    }
    socket.destroy()
  }

  /**
   * Decide if the bytes so far allow it. `final` says why no more bytes will be
   * waited for; it is also the reason given when nothing can be decided.
   */
  evaluate (conn: Connection, final: CloseReason | null): void {
    if (conn.expectHeader && !this.readHeader(conn, final)) return
    if (conn.bytes.length === 0) {
      if (final === null) return
      if (final === 'sniff-timeout') {
        const route = this.routes.find((r) => r.onTimeout)
        if (route !== undefined) {
          conn.protocol = 'timeout'
          this.handOff(conn, route)
          return
        }
      }
      this.refuse(conn, final)
      return
    }
    const decision = classify(conn, this.routes, this.options, final !== null, this.catchAll)
    if (decision === 'more') {
      if (final !== null) this.refuse(conn, final)
      return
    }
    if (decision === 'no-route') {
      this.refuse(conn, 'no-route')
      return
    }
    this.handOff(conn, decision)
  }

  /**
   * Read a PROXY header from a trusted peer; false while it is incomplete or when the
   * connection was refused. Once read (or known absent), sniffing goes on with the bytes
   * after it, and the client it names is the connection's peer from then on.
   */
  private readHeader (conn: Connection, final: CloseReason | null): boolean {
    const required = this.options.proxyProtocol?.required === true
    if (conn.bytes.length === 0) {
      if (final === null) return false
      if (required) {
        this.refuse(conn, final === 'sniff-timeout' ? 'proxy-header' : final)
        return false
      }
      return true
    }
    const result = parseProxyHeader(conn.bytes, this.options.maxSniffBytes)
    if (result.verdict === 'more') {
      if (final !== null) this.refuse(conn, 'proxy-header')
      return false
    }
    if (result.verdict === 'no') {
      // A header that started well and then broke is never passed on as data; bytes that
      // are no header at all are sniffed as they are, unless a header is required.
      if (required || startsLikeProxyHeader(conn.bytes)) {
        this.refuse(conn, 'proxy-header')
        return false
      }
      conn.expectHeader = false
      return true
    }
    conn.expectHeader = false
    const { header, length } = result
    conn.header = header
    if (header.command === 'proxy' && header.source !== undefined) {
      conn.peer = header.source
      // From now on the client it names is the source counted.
      conn.exempt = false
      if (this.countingSources && !this.countSource(conn)) {
        this.refuse(conn, 'max-pending-per-source')
        return false
      }
    }
    conn.bytes = conn.bytes.subarray(length)
    this.counters.proxyHeaders++
    return conn.bytes.length > 0 || final !== null
  }

  /** Close a connection that is still being sniffed, counting why. */
  refuse (conn: Connection, reason: CloseReason): void {
    if (!this.release(conn)) return
    conn.stage = 'refused'
    this.giveSource(conn)
    this.counters.closed[reason]++
    if (this.observer.active()) {
      const { route: _route, ...rest } = connectionInfo(conn, '')
      this.observer.refusal({ ...rest, reason })
    }
    conn.socket.destroy()
  }

  /** Leave the sniffing state: the one place the deadline is dropped and the listeners removed. */
  private release (conn: Connection): boolean {
    const socket = conn.socket
    if (conn.stage !== 'sniffing') return false
    conn.stage = 'open'
    socket.removeListener('readable', onReadable)
    socket.removeListener('error', onError)
    socket.removeListener('close', onClose)
    this.pending.delete(conn)
    return true
  }

  private handOff (conn: Connection, decision: Exclude<Decision, 'more' | 'no-route'>): void {
    const socket = conn.socket
    const route = typeof decision === 'object' ? decision : null
    const destination: Destination = decision === 'tls' ? 'https' : PLAINTEXT_DESTINATION[this.options.plaintext]
    const open = route !== null ? this.routed.get(route.name) as Set<Socket> : this.served[destination]
    const max = route?.route.maxConnections
    if (max !== undefined && open.size >= max) {
      this.refuse(conn, 'max-connections')
      return
    }
    this.release(conn)
    // TLS stays counted against the limits until its handshake is done; the rest leaves them here.
    if (decision === 'tls' || route?.target.handshake === true) {
      conn.stage = 'handshake'
      this.handshakes.add(conn, this.options.handshakeTimeout)
    } else {
      this.giveSource(conn)
    }
    if (conn.peer !== undefined) setPeer(socket, conn.peer)
    if (conn.header !== undefined) setProxyHeader(socket, conn.header)
    open.add(socket)
    conn.open = open
    socket.on('close', onServedClose)
    if (route !== null) {
      this.counters.route(route.name)
      const info = connectionInfo(conn, route.name)
      if (this.observer.active()) this.observer.decision(info)
      route.target.deliver(socket, info, conn.bytes)
    } else {
      this.counters.decided[destination]++
      if (this.observer.active()) this.observer.decision(connectionInfo(conn, destination))
      if (decision === 'tls') this.targets.tls(socket, conn.bytes)
      else if (decision === 'h2c') this.targets.h2c(socket, conn.origin, conn.bytes)
      else this.targets.http(socket, conn.origin, conn.bytes)
    }
    if (conn.stage === 'open') forget(conn)
  }

  /** Count `conn` under its source (the client a PROXY header named, else the peer); false when that source has its share. */
  private countSource (conn: Connection): boolean {
    if (conn.exempt || conn.source !== undefined) return true
    const key = sourceKey(conn.peer !== undefined ? conn.peer.address : conn.socket.remoteAddress)
    if (key === undefined) return true
    if (!this.sources.take(key)) return false
    conn.source = key
    return true
  }

  /** Every connection in the limits is counted from now on; none of those already there can be over its share. */
  private startCountingSources (): void {
    this.countingSources = true
    for (const conn of this.pending) this.countSource(conn)
    for (const conn of this.handshakes) this.countSource(conn)
  }

  private giveSource (conn: Connection): void {
    if (conn.source === undefined) return
    this.sources.give(conn.source)
    conn.source = undefined
  }

  /** The TLS handshake of a decided connection finished (or the connection closed): it leaves the limits. */
  secured (socket: MuxSocket): void {
    const conn = socket[kConnection]
    if (conn === undefined || conn.stage !== 'handshake') return
    conn.stage = 'open'
    forget(conn)
    this.handshakes.delete(conn)
    this.giveSource(conn)
  }

  /** A TLS connection that has not finished its handshake `handshakeTimeout` ms after the decision. */
  private handshakeExpired (conn: Connection): void {
    const socket = conn.socket
    if (conn.stage !== 'handshake') return
    conn.stage = 'refused'
    this.giveSource(conn)
    this.counters.closed['handshake-timeout']++
    if (this.observer.active()) {
      const { route: _route, ...rest } = connectionInfo(conn, '')
      this.observer.refusal({ ...rest, reason: 'handshake-timeout' })
    }
    socket.destroy()
  }

  /** Stop taking new connections and close those still being sniffed. */
  stopAccepting (): void {
    this.accepting = false
    for (const conn of this.pending) this.refuse(conn, 'server-closing')
  }

  /** Connections still being sniffed. */
  pendingCount (): number {
    return this.pending.size
  }

  /** Decided TLS connections still in their handshake. */
  handshakeCount (): number {
    return this.handshakes.size
  }

  resumeAccepting (): void {
    this.accepting = true
  }

  /** Open connections handed to the HTTP servers. */
  servedSockets (): Socket[] {
    return DESTINATIONS.flatMap((d) => [...this.served[d]])
  }

  /** Open raw-route connections. */
  routeSockets (): Socket[] {
    return [...this.routed.values()].flatMap((set) => [...set])
  }

  /** Destroy every connection: sniffing, served and routed. */
  destroyAll (): void {
    for (const conn of this.pending) this.refuse(conn, 'server-closing')
    for (const socket of [...this.servedSockets(), ...this.routeSockets()]) socket.destroy()
  }

  stats (): MuxStats {
    const open = { https: 0, http: 0, redirect: 0, reject: 0 }
    for (const d of DESTINATIONS) open[d] = this.served[d].size
    const routes: Record<string, number> = {}
    for (const [name, set] of this.routed) routes[name] = set.size
    return this.counters.snapshot(this.pending.size, this.handshakes.size, open, routes)
  }
}
