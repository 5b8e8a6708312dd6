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

  /** End both sides after a failure, counting it once. */
  fail (outcome: ProxyOutcome): void {
    if (this.done) return
    this.done = true
    this.options.outcome(outcome)
    this.client.destroy()
    this.upstream.destroy()
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

/** When one side is fully closed, nothing more can flow: make sure the other is too. */
function onSideClose (this: Spliced): void {
  const s = this[kSplice]
  if (s === undefined) return
  const other = this === s.client ? s.upstream : s.client
  if (!other.destroyed) {
    // A clean close on this side has already ended the other's writable side through
    // pipe; a read side still open over there has nobody left to deliver to.
    other.destroy()
  }
  s.done = true
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
