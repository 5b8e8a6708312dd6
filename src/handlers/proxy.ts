/**
 * Proxy routes: splice a decided client socket to an upstream.
 *
 * The upstream gets, in this order: the PROXY header, the sniffed bytes, then everything
 * else, both ways, with backpressure. All three are queued on the upstream socket the moment
 * the route is decided, before it has connected: Node writes them out in that order as soon
 * as it connects, so the header still arrives before any client byte and at once (a
 * server-speaks-first upstream must not wait for the client), and the client's first bytes
 * leave without waiting for another turn of the event loop. The sniffed bytes come with the
 * decision (they are not in the client socket) and go straight to the upstream. Half-close
 * is carried both ways: the client's FIN becomes the upstream's FIN and the reply that
 * follows still reaches the client, and the other way round.
 *
 * The splice is read → write, pausing the reader while the writer's buffer is full and
 * resuming it on 'drain' (what `pipe` does, without its per-chunk bookkeeping). The client
 * side is read through 'data'. The upstream socket, which the splice creates, reads into a
 * buffer of the splice's own (`onread`), reused from read to read instead of a new one per
 * read (V8 counts those as external memory and collects for every 64 MB or so of it, in a
 * process with a heap the size of a Fastify app's a full collection each time), and a read
 * goes straight to the write, without the readable stream's queue. It starts as a
 * small slice of Node's shared pool, so a short connection costs no allocation of its own,
 * and grows in steps after reads that fill it. Every listener is a module-level function that
 * finds its `Splice` through a symbol on the socket.
 *
 * Timers are the sockets' own: the connect timeout is the upstream socket's inactivity
 * timeout while connecting, the idle timeout the client socket's (refreshed by traffic in
 * either direction, since the client socket both reads and writes all of it).
 *
 * Resets. A socket that is being read learns of its peer's reset from the read, one with
 * bytes queued for it from the write. One that is neither — its bytes are held back because
 * the other side stopped reading, or its peer has sent FIN, and nothing is due to it — hears
 * nothing: its descriptor is not even polled. One shared timer probes those once a second
 * with an empty write, which the kernel fails with the pending ECONNRESET (or EPIPE) and
 * otherwise ignores. A probe refreshes the client socket's idle timer, so the same sweep
 * also keeps the idle timeout, from the sockets' byte counts.
 *
 * A reset is a failure (`upstream-error`, `client-error`) unless the side that resets had
 * already been given everything the other side sent, FIN included, or is the client and had
 * sent its own FIN before resetting: then it has closed (the common "close with unread bytes" of a peer that
 * stops after the other's FIN), and only the reset is passed on.
 */
import net, { type Socket } from 'node:net'
import { checkRouteInteger, InvalidRouteError } from '../errors.js'
import { encodeProxyV1 } from '../sniff/proxy-v1.js'
import { encodeProxyV2 } from '../sniff/proxy-v2.js'
import type { ConnectionInfo, ProxyOutcome, ProxyTarget } from '../types.js'
import type { RouteKind } from './route.js'

export const DEFAULT_CONNECT_TIMEOUT = 10_000

/** How often sockets that are not being read are probed for a reset (ms). */
export const PROBE_INTERVAL = 1000

export interface ProxyOptions {
  idleTimeout?: number
  /** Called once per outcome of this connection. */
  outcome: (outcome: ProxyOutcome) => void
}

const kSplice = Symbol('portmux.splice')
interface Spliced extends Socket { [kSplice]?: Splice }

const EMPTY = Buffer.alloc(0)

/** Connected splices, swept by one shared timer. */
const live = new Set<Splice>()
let sweeper: NodeJS.Timeout | null = null

function watch (s: Splice): void {
  live.add(s)
  if (sweeper === null) {
    sweeper = setInterval(sweep, PROBE_INTERVAL)
    sweeper.unref()
  }
}

function sweep (): void {
  if (live.size === 0) {
    // Stopped lazily: back-to-back short connections do not start and stop it each time.
    if (sweeper !== null) clearInterval(sweeper)
    sweeper = null
    return
  }
  for (const s of live) s.check()
}

/**
 * An empty write to a socket nobody reads and nothing is queued for: the kernel reports a
 * reset that arrived meanwhile (as the write's error), and does nothing otherwise.
 */
function probe (socket: Socket): void {
  if (socket.destroyed || socket.writableEnded || socket.writableLength > 0) return
  if (!socket.readableEnded && !socket.isPaused()) return
  socket.write(EMPTY)
}

/**
 * Sizes of the upstream socket's read buffer: it starts as a slice of Node's shared pool and
 * grows a step each time a read fills it, so that only connections that move bulk get a large one.
 */
const READ_SMALL = 512
const READ_MEDIUM = 8 * 1024
const READ_LARGE = 64 * 1024

function readBuffer (size: number): Buffer {
  return size < Buffer.poolSize >>> 1 ? Buffer.allocUnsafe(size) : Buffer.allocUnsafeSlow(size)
}

class Splice {
  connected = false
  done = false
  /** Which side this splice paused because the other one's buffer was full. */
  clientHeld = false
  upstreamHeld = false
  /** Bytes the client socket had moved either way at the last sweep, and for how long since (ms). */
  moved = -1
  quiet = 0
  upstream!: Spliced
  /**
   * What the upstream socket reads into, reused from read to read; `readHeld` says a write to
   * the client still refers to its bytes, so the next read must go elsewhere.
   */
  readBuffer = readBuffer(READ_SMALL)
  readHeld = false
  lastRead = 0

  constructor (
    readonly client: Spliced,
    readonly options: ProxyOptions
  ) {}

  /**
   * The upstream socket's next read buffer (Node asks once at connect and after every read):
   * the same one while nothing holds it and its size still fits, else a new one, a step larger
   * after a read that filled it, back to small after a read that a small one would have held.
   */
  readonly nextReadBuffer = (): Buffer => {
    const current = this.readBuffer
    let size = current.length
    if (this.lastRead === size) size = size === READ_SMALL ? READ_MEDIUM : READ_LARGE
    else if (this.lastRead <= READ_SMALL) size = READ_SMALL
    if (size === current.length && !this.readHeld) return current
    this.readHeld = false
    this.readBuffer = readBuffer(size)
    return this.readBuffer
  }

  /** The sweep: probe both sides, keep the idle timeout. */
  check (): void {
    if (this.done || (this.client.destroyed && this.upstream.destroyed)) {
      live.delete(this)
      return
    }
    probe(this.client)
    if (!this.connected) return
    probe(this.upstream)
    const idle = this.options.idleTimeout
    if (idle === undefined || idle <= 0) return
    const moved = this.client.bytesRead + this.client.bytesWritten
    if (moved !== this.moved) {
      this.moved = moved
      this.quiet = 0
    } else if ((this.quiet += PROBE_INTERVAL) >= idle) {
      this.fail('idle-timeout')
    }
  }

  /**
   * `side` was reset (or failed otherwise). If it had been given everything the other side
   * sent, FIN included — or is the client and had sent its own FIN, then reset rather than
   * read the rest —
   * it closed rather than failed: the reset is passed on, nothing counted.
   */
  broken (side: Spliced): void {
    if (this.done) return
    // Given everything, FIN included; or a client done sending (its FIN read) that resets
    // rather than read the rest, as psql does after its last message.
    if (this.connected && ((side.writableEnded && side.writableLength === 0) || (side === this.client && side.readableEnded))) {
      this.done = true
      live.delete(this)
      reset(side === this.client ? this.upstream : this.client)
      side.destroy()
      return
    }
    this.fail(side === this.client ? 'client-error' : 'upstream-error')
  }

  /**
   * End both sides after a failure, counting it once. A reset on one side is passed on as a
   * reset, so that a cut-off transfer never looks complete to the other end.
   */
  fail (outcome: ProxyOutcome): void {
    if (this.done) return
    this.done = true
    live.delete(this)
    this.options.outcome(outcome)
    const abort = outcome === 'upstream-error' || outcome === 'client-error'
    if (abort) {
      reset(this.client)
      reset(this.upstream)
    } else {
      this.client.destroy()
      this.upstream.destroy()
    }
  }
}

// The splice, both ways.

function onClientData (this: Spliced, chunk: Buffer): void {
  const s = this[kSplice] as Splice
  if (!s.upstream.write(chunk)) {
    s.clientHeld = true
    this.pause()
  }
}

function onUpstreamDrain (this: Spliced): void {
  const s = this[kSplice] as Splice
  if (s.clientHeld) {
    s.clientHeld = false
    s.client.resume()
  }
}

function onClientEnd (this: Spliced): void {
  const s = this[kSplice] as Splice
  if (!s.done && !s.upstream.writableEnded) s.upstream.end()
}

/**
 * Upstream bytes, read into the splice's own buffer (no allocation per read) and written to
 * the client. A write the client socket could not finish at once still refers to them. If
 * its buffer is full, reading stops until 'drain', when every write has finished, and the
 * same buffer serves again; if not, reading goes on, so the buffer is left to that write and
 * the next read gets a new one.
 */
function onUpstreamRead (this: Spliced, nread: number, buffer: Uint8Array): boolean {
  const s = this[kSplice] as Splice
  s.lastRead = nread
  const client = s.client
  if (!client.write((buffer as Buffer).subarray(0, nread))) {
    s.upstreamHeld = true
    this.pause()
    return false
  }
  if (client.writableLength > 0) s.readHeld = true
  return true
}

function onClientDrain (this: Spliced): void {
  const s = this[kSplice] as Splice
  if (s.upstreamHeld) {
    s.upstreamHeld = false
    s.upstream.resume()
  }
}

function onUpstreamEnd (this: Spliced): void {
  const s = this[kSplice] as Splice
  if (!s.done && !s.client.writableEnded) s.client.end()
}

function onUpstreamConnect (this: Spliced): void {
  const s = this[kSplice]
  if (s === undefined || s.done) return
  s.connected = true
  this.setTimeout(0)
  s.options.outcome('connected')
  if (s.options.idleTimeout !== undefined && s.options.idleTimeout > 0) {
    s.client.setTimeout(s.options.idleTimeout)
    s.client.on('timeout', onIdle)
  }
}

function onUpstreamTimeout (this: Spliced): void {
  const s = this[kSplice]
  if (s !== undefined && !s.connected) s.fail('connect-timeout')
}

function onIdle (this: Spliced): void {
  this[kSplice]?.fail('idle-timeout')
}

function onUpstreamError (this: Spliced, err: NodeJS.ErrnoException): void {
  const s = this[kSplice]
  if (s === undefined) return
  if (!s.connected) s.fail(err.code === 'ECONNREFUSED' || err.code === 'ENOTFOUND' || err.code === 'EHOSTUNREACH' ? 'upstream-refused' : 'upstream-error')
  else s.broken(this)
}

function onClientError (this: Spliced): void {
  this[kSplice]?.broken(this)
}

/**
 * A side closed. After an error, both end (see `broken`). After a clean close — both of its
 * directions finished — the other side's writing has been ended already (its FIN passed on)
 * and so has its reading: it closes by itself once what is queued for it is flushed, so it is
 * only ended, never destroyed with bytes still queued.
 */
function onSideClose (this: Spliced, hadError: boolean): void {
  const s = this[kSplice]
  if (s === undefined || s.done) return
  const other = this === s.client ? s.upstream : s.client
  if (hadError) {
    s.broken(this)
    return
  }
  if (!s.connected) {
    // The client left before the upstream answered: nothing reached anyone.
    s.done = true
    live.delete(s)
    other.destroy()
    return
  }
  if (other.destroyed) live.delete(s)
  else if (!other.writableEnded) other.end()
}

/** Reset a TCP connection (RST); a TLS socket resets the TCP socket under it. */
function reset (socket: Socket): void {
  const raw = (socket as Socket & { _parent?: Socket | null, encrypted?: boolean }).encrypted === true
    ? (socket as Socket & { _parent?: Socket | null })._parent ?? socket
    : socket
  if (!raw.destroyed && typeof raw.resetAndDestroy === 'function' && raw !== socket) {
    raw.resetAndDestroy()
    socket.destroy()
    return
  }
  if (!socket.destroyed && typeof socket.resetAndDestroy === 'function') socket.resetAndDestroy()
  else socket.destroy()
}

function proxyHeader (target: ProxyTarget, info: ConnectionInfo, client: Socket): Buffer | null {
  if (target.proxyProtocol === undefined) return null
  const source = info.remoteAddress !== undefined && info.remotePort !== undefined
    ? { address: info.remoteAddress, port: info.remotePort }
    : undefined
  const destination = client.localAddress !== undefined && client.localPort !== undefined
    ? { address: client.localAddress, port: client.localPort }
    : undefined
  try {
    return target.proxyProtocol === 1
      ? encodeProxyV1({ source, destination })
      : encodeProxyV2({ source, destination })
  } catch {
    // Addresses that cannot be written (a mix of families): say so, as the spec allows.
    return target.proxyProtocol === 1 ? encodeProxyV1({ family: 'unknown' }) : encodeProxyV2({ command: 'local' })
  }
}

/** Splice `client` to the route's upstream; `head`: the bytes sniffed from it, sent first. */
export function proxyTo (client: Socket, target: ProxyTarget, info: ConnectionInfo, options: ProxyOptions, head: Buffer): void {
  const s = new Splice(client, options)
  const upstream: Spliced = net.connect({
    host: target.host ?? '127.0.0.1',
    port: target.port,
    noDelay: true,
    allowHalfOpen: true,
    onread: { buffer: s.nextReadBuffer, callback: onUpstreamRead }
  })
  s.upstream = upstream
  ;(client as Spliced)[kSplice] = s
  upstream[kSplice] = s
  upstream.setTimeout(target.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT)
  upstream.on('connect', onUpstreamConnect)
  upstream.on('timeout', onUpstreamTimeout)
  upstream.on('error', onUpstreamError)
  upstream.on('close', onSideClose)
  client.on('error', onClientError)
  client.on('close', onSideClose)
  // Queued until the upstream connects, in this order: the header, the sniffed bytes, then
  // whatever the client sends next.
  const header = proxyHeader(target, info, client)
  if (header !== null) upstream.write(header)
  if (head.length > 0) upstream.write(head)
  client.on('end', onClientEnd)
  upstream.on('end', onUpstreamEnd)
  upstream.on('drain', onUpstreamDrain)
  client.on('drain', onClientDrain)
  client.on('data', onClientData)
  watch(s)
}

/** Proxy routes: `{ proxy: { host?, port, proxyProtocol?, connectTimeout? } }`. */
export const proxyKind: RouteKind = {
  field: 'proxy',
  compile (name, route, env) {
    const target = route.proxy
    if (target === null || typeof target !== 'object') throw new InvalidRouteError(name, 'proxy must be { host?, port, proxyProtocol?, connectTimeout? }')
    checkRouteInteger(name, 'proxy.port', target.port, 65535)
    if (target.host !== undefined && (typeof target.host !== 'string' || target.host.length === 0)) throw new InvalidRouteError(name, 'proxy.host must be a non-empty string')
    if (target.proxyProtocol !== undefined && target.proxyProtocol !== 1 && target.proxyProtocol !== 2) throw new InvalidRouteError(name, 'proxy.proxyProtocol must be 1 or 2')
    checkRouteInteger(name, 'proxy.connectTimeout', target.connectTimeout)
    const options: ProxyOptions = { idleTimeout: route.idleTimeout, outcome: env.outcome }
    return (socket, info, head) => { proxyTo(socket, target, info, options, head) }
  }
}
