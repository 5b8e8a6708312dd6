/**
 * The listening sockets of one `MuxServer` beside its own: the other addresses `localhost`
 * resolves to, and `httpPort`. Every one of them accepts into the same pipeline.
 *
 * The server's own handle is the main listener (it is the `net.Server` users and Fastify
 * hold). `Listeners` binds the extra ones once the main one is up, closes them with it, and
 * tells when the last of them has closed — Node's `'close'` of a `net.Server` comes only
 * when its handle is closed and every connection it accepted has ended, so a server is closed
 * when its own and every extra listener's `'close'` have come.
 */
import { lookup } from 'node:dns'
import net, { type Socket } from 'node:net'

/** Where a connection was accepted: the main port (or its loopback siblings) or `httpPort`. */
export type Origin = 'main' | 'http'

export interface ExtraBind {
  host: string | undefined
  port: number
  origin: Origin
  /** A failure to bind is fatal (`httpPort`), or only means that address is absent (a loopback sibling). */
  required: boolean
}

/** The listen options that extra listeners copy from the main `listen` call. */
export interface SharedListenOptions {
  backlog?: number
  ipv6Only?: boolean
  exclusive?: boolean
  reusePort?: boolean
}

type Accept = (socket: Socket, origin: Origin) => void

/** The extra listeners one `listen` call asks for, bound once the main listener is up. */
export interface ListenPlan {
  /** Every address the main port is bound on (`httpPort` is bound on each). */
  hosts: Array<string | undefined>
  /** Loopback addresses beside the main listener's (`listen` on localhost). */
  siblings: Array<string | undefined>
  shared: SharedListenOptions
}

/**
 * Read a `net.Server#listen` call: the arguments for the main listener, and the plan for the
 * extra ones. `localhost` means every loopback address it resolves to (127.0.0.1 and ::1),
 * as plain Fastify binds them: the first is the main listener's, the others are siblings.
 */
export function planListen (args: unknown[], ready: (main: unknown[], plan: ListenPlan) => void): void {
  const options = typeof args[0] === 'object' && args[0] !== null ? (args[0] as net.ListenOptions & SharedListenOptions) : undefined
  const host = options !== undefined ? options.host : typeof args[1] === 'string' ? args[1] : undefined
  const shared: SharedListenOptions = options === undefined ? {} : { backlog: options.backlog, ipv6Only: options.ipv6Only, exclusive: options.exclusive, reusePort: options.reusePort }
  if (host !== 'localhost') {
    ready(args, { hosts: [host], siblings: [], shared })
    return
  }
  resolveHosts(host, (hosts) => {
    const [first, ...siblings] = hosts
    const main = options !== undefined
      ? [{ ...options, host: first }, ...args.slice(1)]
      : [args[0], first, ...args.slice(2)]
    ready(main, { hosts, siblings, shared })
  })
}

export class Listeners {
  private servers: net.Server[] = []
  /** Extra listeners whose `'close'` has not come yet. */
  private open = 0
  private whenClosed: Array<() => void> = []

  constructor (private readonly accept: Accept) {}

  /** How many extra listeners are bound now. */
  get size (): number {
    return this.servers.length
  }

  /** The ports the extra listeners are bound to, by origin. */
  port (origin: Origin): number | undefined {
    for (const s of this.servers) {
      const address = s.address()
      if ((s as Tagged)[kOrigin] === origin && address !== null && typeof address === 'object') return address.port
    }
    return undefined
  }

  /**
   * The main listener is up on `port`: bind what `plan` asks for beside it — the loopback
   * siblings on the same port (each optional) and `httpPort` on every address (required).
   */
  bindPlan (plan: ListenPlan, port: number | undefined, httpPort: number | null, done: (err?: Error) => void): void {
    const binds: ExtraBind[] = []
    if (port !== undefined) for (const host of plan.siblings) binds.push({ host, port, origin: 'main', required: false })
    if (httpPort !== null) for (const host of plan.hosts) binds.push({ host, port: httpPort, origin: 'http', required: true })
    this.bind(binds, plan.shared, done)
  }

  /**
   * Bind every extra listener; `done` once all are bound, or with the first error of a
   * required one (the others bound so far are closed again).
   */
  bind (binds: readonly ExtraBind[], shared: SharedListenOptions, done: (err?: Error) => void): void {
    if (binds.length === 0) {
      done()
      return
    }
    let left = binds.length
    let failed: Error | undefined
    const bound: net.Server[] = []
    for (const b of binds) {
      const server = net.createServer({ noDelay: true, allowHalfOpen: true }, (socket) => { this.accept(socket, b.origin) })
      ;(server as Tagged)[kOrigin] = b.origin
      const settle = (err?: Error): void => {
        server.removeListener('error', settle)
        if (err === undefined) bound.push(server)
        else if (b.required && failed === undefined) failed = err
        if (--left > 0) return
        if (failed !== undefined) {
          for (const s of bound) s.close()
          done(failed)
          return
        }
        for (const s of bound) this.track(s)
        done()
      }
      server.once('error', settle)
      const options: net.ListenOptions & SharedListenOptions = { port: b.port, host: b.host, backlog: shared.backlog, ipv6Only: shared.ipv6Only, exclusive: shared.exclusive }
      if (shared.reusePort !== undefined) options.reusePort = shared.reusePort
      server.listen(options, () => { settle() })
    }
  }

  private track (server: net.Server): void {
    this.servers.push(server)
    this.open++
    server.once('close', () => {
      if (--this.open > 0) return
      const waiting = this.whenClosed
      this.whenClosed = []
      for (const fn of waiting) fn()
    })
    // A listener that fails after binding (EMFILE on accept is retried by Node) has nothing to report upward.
    server.on('error', noop)
  }

  /** Stop accepting on every extra listener; connections already accepted go on. */
  close (): void {
    for (const s of this.servers) s.close()
    this.servers = []
  }

  /** `fn` once every extra listener has closed and its connections have ended (at once if none is open). */
  closed (fn: () => void): void {
    if (this.open === 0) fn()
    else this.whenClosed.push(fn)
  }
}

const kOrigin = Symbol('portmux.origin')
interface Tagged extends net.Server { [kOrigin]?: Origin }

function noop (): void {}

/**
 * The addresses to bind for `host`: every address `localhost` resolves to (as plain Fastify
 * binds them), else `host` itself.
 */
export function resolveHosts (host: string | undefined, cb: (hosts: Array<string | undefined>) => void): void {
  if (host !== 'localhost') {
    cb([host])
    return
  }
  lookup('localhost', { all: true }, (err, addresses) => {
    if (err !== null || addresses.length === 0) cb([host])
    else cb(addresses.map((a) => a.address))
  })
}
