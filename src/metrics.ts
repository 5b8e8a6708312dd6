/**
 * `portmux/metrics`: a server's counters as Prometheus metrics, with prom-client (an
 * optional peer dependency, loaded only by this entry point).
 *
 * Counters and gauges are read from `server.stats()` when the registry is scraped, so
 * they cost nothing per connection. The sniff-time histogram is the one per-connection
 * measurement: it listens to the server's `'decision'` and `'refusal'` events, and can be
 * turned off.
 */
import { Counter, Gauge, Histogram, register as globalRegistry, type Registry } from 'prom-client'
import type { MuxServer } from './core/server.js'
import { InvalidOptionError } from './errors.js'
import { CLOSE_REASONS, DESTINATIONS, PROXY_OUTCOMES } from './core/stats.js'
import type { ConnectionInfo, Destination, MuxStats, RefusalInfo } from './types.js'

export interface MetricsOptions {
  /** Where the metrics are registered. Default: prom-client's global registry. */
  registry?: Registry
  /** Put before every metric name. Default `'portmux_'`. */
  prefix?: string
  /** Measure the time from accept to decision (`<prefix>sniff_duration_seconds`). Default `true`. */
  sniffDuration?: boolean
  /** Buckets of the sniff-time histogram, in seconds. */
  buckets?: number[]
}

/** Where a connection went, as the `destination` label says it. */
type DestinationLabel = Destination | 'route'

/** Error codes counted by `stats().errors`, always present (at 0 until one happens). */
const COUNTED_ERRORS = ['PORTMUX_ERR_MATCHER', 'PORTMUX_ERR_HANDLER']

/** Fast connections are decided within a round trip; silent ones wait for `sniffTimeout` (5 s by default). */
export const DEFAULT_SNIFF_BUCKETS: readonly number[] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]


/**
 * Register `server`'s metrics in `options.registry` (prom-client's global registry by
 * default) under `options.prefix` (`portmux_`). Returns a function that removes them and
 * stops measuring. Under Fastify, pass `fastify.portmux`.
 *
 * One server per registry and prefix: a second registration with the same names throws a
 * `PortmuxError` with code `PORTMUX_ERR_INVALID_OPTION`.
 */
export function registerMetrics (server: MuxServer, options: MetricsOptions = {}): () => void {
  const registry = options.registry ?? globalRegistry
  const prefix = options.prefix ?? 'portmux_'
  if (typeof prefix !== 'string' || !/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(prefix)) {
    throw new InvalidOptionError('metrics prefix must be a Prometheus metric name prefix ([a-zA-Z_:][a-zA-Z0-9_:]*)')
  }
  const buckets = options.buckets ?? DEFAULT_SNIFF_BUCKETS
  if (!Array.isArray(buckets) || buckets.length === 0 || buckets.some((b) => typeof b !== 'number' || !(b > 0))) {
    throw new InvalidOptionError('metrics buckets must be a non-empty list of positive numbers (seconds)')
  }

  const names = {
    accepted: `${prefix}connections_accepted_total`,
    pending: `${prefix}connections_pending`,
    handshakes: `${prefix}connections_handshaking`,
    open: `${prefix}connections_open`,
    decided: `${prefix}connections_decided_total`,
    closed: `${prefix}connections_closed_total`,
    proxy: `${prefix}proxy_connections_total`,
    proxyHeaders: `${prefix}proxy_headers_total`,
    errors: `${prefix}errors_total`,
    sniff: `${prefix}sniff_duration_seconds`
  }
  const sniffDuration = options.sniffDuration !== false
  const taken = Object.entries(names)
    .filter(([key]) => key !== 'sniff' || sniffDuration)
    .map(([, name]) => name)
    .filter((name) => registry.getSingleMetric(name) !== undefined)
  if (taken.length > 0) {
    throw new InvalidOptionError(`metrics ${taken.join(', ')} are registered already: give each server its own prefix or registry`)
  }

  // One snapshot per scrape: every collect() of one scrape runs in the same tick.
  let snapshot: MuxStats | null = null
  const stats = (): MuxStats => {
    if (snapshot === null) {
      snapshot = server.stats()
      queueMicrotask(() => { snapshot = null })
    }
    return snapshot
  }
  const registers = [registry]

  const metrics: Array<Counter | Gauge | Histogram> = []
  metrics.push(new Counter({
    name: names.accepted,
    help: 'Connections accepted.',
    registers,
    collect () {
      this.reset()
      this.inc(stats().accepted)
    }
  }))
  metrics.push(new Gauge({
    name: names.pending,
    help: 'Connections being sniffed now.',
    registers,
    collect () {
      this.set(stats().pending)
    }
  }))
  metrics.push(new Gauge({
    name: names.handshakes,
    help: 'Decided TLS connections in their handshake now (counted against maxPending).',
    registers,
    collect () {
      this.set(stats().handshakes)
    }
  }))
  const byDestination = (counts: MuxStats['open'], set: (labels: { destination: DestinationLabel, route: string }, value: number) => void): void => {
    for (const d of DESTINATIONS) set({ destination: d, route: '' }, counts[d])
    for (const [route, value] of Object.entries(counts.routes)) set({ destination: 'route', route }, value)
  }
  metrics.push(new Gauge({
    name: names.open,
    help: 'Open connections by where they went (destination https, http, redirect, reject, or route with the route\'s name).',
    labelNames: ['destination', 'route'] as const,
    registers,
    collect () {
      this.reset()
      byDestination(stats().open, (labels, value) => this.set(labels, value))
    }
  }))
  metrics.push(new Counter({
    name: names.decided,
    help: 'Decided connections by where they went (destination https, http, redirect, reject, or route with the route\'s name).',
    labelNames: ['destination', 'route'] as const,
    registers,
    collect () {
      this.reset()
      byDestination(stats().decided, (labels, value) => this.inc(labels, value))
    }
  }))
  metrics.push(new Counter({
    name: names.closed,
    help: 'Connections portmux closed before handing them on, by reason.',
    labelNames: ['reason'] as const,
    registers,
    collect () {
      this.reset()
      const closed = stats().closed
      for (const reason of CLOSE_REASONS) this.inc({ reason }, closed[reason] ?? 0)
    }
  }))
  metrics.push(new Counter({
    name: names.proxy,
    help: 'Proxy routes\' upstream connections by outcome (connected once per upstream connection, the rest once per failure).',
    labelNames: ['outcome'] as const,
    registers,
    collect () {
      this.reset()
      const proxy = stats().proxy
      for (const outcome of PROXY_OUTCOMES) this.inc({ outcome }, proxy[outcome] ?? 0)
    }
  }))
  metrics.push(new Counter({
    name: names.proxyHeaders,
    help: 'PROXY protocol headers accepted from trusted peers.',
    registers,
    collect () {
      this.reset()
      this.inc(stats().proxyHeaders)
    }
  }))
  metrics.push(new Counter({
    name: names.errors,
    help: 'Errors by PORTMUX_ERR_* code (route matchers and handlers that threw).',
    labelNames: ['code'] as const,
    registers,
    collect () {
      this.reset()
      const errors = stats().errors
      for (const code of COUNTED_ERRORS) this.inc({ code }, errors[code] ?? 0)
      for (const [code, value] of Object.entries(errors)) {
        if (!COUNTED_ERRORS.includes(code)) this.inc({ code }, value)
      }
    }
  }))

  let stop = (): void => {}
  if (sniffDuration) {
    const histogram = new Histogram({
      name: names.sniff,
      help: 'Time from accept to decision, in seconds (destination https, http, redirect, reject, route, or refused).',
      labelNames: ['destination'] as const,
      buckets: [...buckets],
      registers
    })
    metrics.push(histogram)
    const onDecision = (info: ConnectionInfo): void => {
      const destination: DestinationLabel = (DESTINATIONS as readonly string[]).includes(info.route) ? info.route as Destination : 'route'
      histogram.observe({ destination }, info.sniffMs / 1000)
    }
    const onRefusal = (info: RefusalInfo): void => {
      histogram.observe({ destination: 'refused' }, info.sniffMs / 1000)
    }
    server.on('decision', onDecision)
    server.on('refusal', onRefusal)
    stop = () => {
      server.removeListener('decision', onDecision)
      server.removeListener('refusal', onRefusal)
    }
  }

  let registered = true
  return () => {
    if (!registered) return
    registered = false
    stop()
    for (const name of Object.values(names)) {
      // Remove only our own: another registration may have taken a name since.
      const metric: unknown = registry.getSingleMetric(name)
      if (metric !== undefined && metrics.includes(metric as Counter)) registry.removeSingleMetric(name)
    }
  }
}
