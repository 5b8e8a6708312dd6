/**
 * Proxy routes: splice a decided client socket to an upstream.
 *
 * The upstream gets, in this order: the PROXY header (the moment it connects, before any
 * client byte — server-speaks-first protocols must not wait on it), the sniffed bytes
 * (replayed by the client socket), then everything else, both ways, with backpressure
 * (`pipe`). Half-close is carried both ways: the client's FIN becomes the upstream's FIN and
 * the reply that follows still reaches the client, and the other way round.
 *
 * Timers are the sockets' own: the connect timeout is the upstream socket's inactivity
 * timeout while connecting, the idle timeout the client socket's (refreshed by traffic in
 * either direction, since the client socket both reads and writes all of it).
 */
import net, { type Socket } from 'node:net'
import { encodeProxyV1 } from '../sniff/proxy-v1.js'
import { encodeProxyV2 } from '../sniff/proxy-v2.js'
import type { ConnectionInfo, ProxyOutcome, ProxyTarget } from '../types.js'

export const DEFAULT_CONNECT_TIMEOUT = 10_000

export interface ProxyOptions {
  idleTimeout?: number
  /** Called once per outcome of this connection. */
  outcome: (outcome: ProxyOutcome) => void
}

const kSplice = Symbol('portmux.splice')
interface Spliced extends Socket { [kSplice]?: Splice }

class Splice {
  connected = false
  done = false

  constructor (
    readonly client: Spliced,
    readonly upstream: Spliced,
    readonly target: ProxyTarget,
    readonly info: ConnectionInfo,
    readonly options: ProxyOptions
  ) {}

  /**
   * End both sides after a failure, counting it once. A reset on one side is passed on as a
   * reset, so that a cut-off transfer never looks complete to the other end.
   */
  fail (outcome: ProxyOutcome): void {
    if (this.done) return
    this.done = true
    this.options.outcome(outcome)
    const abort = outcome === 'upstream-error' || outcome === 'client-error'
    for (const side of [this.client, this.upstream]) {
      if (abort) reset(side)
      else side.destroy()
    }
  }
}

function onUpstreamConnect (this: Spliced): void {
  const s = this[kSplice]
  if (s === undefined || s.done) return
  s.connected = true
  this.setTimeout(0)
  s.options.outcome('connected')
  const header = proxyHeader(s.target, s.info, s.client)
  if (header !== null) this.write(header)
  s.client.pipe(this)
  this.pipe(s.client)
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
  s.fail(!s.connected && (err.code === 'ECONNREFUSED' || err.code === 'ENOTFOUND' || err.code === 'EHOSTUNREACH') ? 'upstream-refused' : 'upstream-error')
}

function onClientError (this: Spliced): void {
  this[kSplice]?.fail('client-error')
}

/**
 * A side closed. After an error, both end (as a reset). After a clean close — both of its
 * directions finished — the pipes have already ended the other side's writing and its
 * reading: it closes by itself once what is queued for it is flushed, so it is only ended,
 * never destroyed with bytes still queued.
 */
function onSideClose (this: Spliced, hadError: boolean): void {
  const s = this[kSplice]
  if (s === undefined || s.done) return
  const other = this === s.client ? s.upstream : s.client
  if (hadError) {
    s.fail(this === s.client ? 'client-error' : 'upstream-error')
    return
  }
  if (!s.connected) {
    // The client left before the upstream answered: nothing was sent either way.
    s.done = true
    other.destroy()
    return
  }
  if (!other.writableEnded) other.end()
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

/** Splice `client` (its sniffed bytes already replayed) to the route's upstream. */
export function proxyTo (client: Socket, target: ProxyTarget, info: ConnectionInfo, options: ProxyOptions): void {
  const upstream: Spliced = net.connect({
    host: target.host ?? '127.0.0.1',
    port: target.port,
    noDelay: true,
    allowHalfOpen: true
  })
  const s = new Splice(client, upstream, target, info, options)
  ;(client as Spliced)[kSplice] = s
  upstream[kSplice] = s
  upstream.setTimeout(target.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT)
  upstream.once('connect', onUpstreamConnect)
  upstream.on('timeout', onUpstreamTimeout)
  upstream.on('error', onUpstreamError)
  upstream.on('close', onSideClose)
  client.on('error', onClientError)
  client.on('close', onSideClose)
}
