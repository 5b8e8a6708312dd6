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
import type { MuxServer } from './server.js'
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

/** One sample of a metric read from `stats()`: its labels (none for a metric without labels) and value. */
type Sample = [labels: Record<string, string> | null, value: number]

/** A counter or gauge whose value is read from `stats()` at every scrape. */
interface FromStats {
  /** After the prefix. */
  name: string
  kind: 'counter' | 'gauge'
  help: string
  labelNames?: readonly string[]
  samples: (stats: MuxStats) => Sample[]
}

const BY_DESTINATION = 'by where they went (destination https, http, redirect, reject, or route with the route\'s name).'

/** Where connections went: one sample per destination (route `''`), then one per route. */
function byDestination (counts: MuxStats['open']): Sample[] {
  const samples: Sample[] = DESTINATIONS.map((d) => [{ destination: d satisfies DestinationLabel, route: '' }, counts[d]])
  for (const [route, value] of Object.entries(counts.routes)) samples.push([{ destination: 'route' satisfies DestinationLabel, route }, value])
  return samples
}

/** Every metric read from `stats()`, in the order they are registered (and exposed). */
const FROM_STATS: readonly FromStats[] = [
  { name: 'connections_accepted_total', kind: 'counter', help: 'Connections accepted.', samples: (s) => [[null, s.accepted]] },
  { name: 'connections_pending', kind: 'gauge', help: 'Connections being sniffed now.', samples: (s) => [[null, s.pending]] },
  {
    name: 'connections_handshaking',
    kind: 'gauge',
    help: 'Decided TLS connections in their handshake now (counted against maxPending).',
    samples: (s) => [[null, s.handshakes]]
  },
  { name: 'connections_open', kind: 'gauge', help: `Open connections ${BY_DESTINATION}`, labelNames: ['destination', 'route'], samples: (s) => byDestination(s.open) },
  { name: 'connections_decided_total', kind: 'counter', help: `Decided connections ${BY_DESTINATION}`, labelNames: ['destination', 'route'], samples: (s) => byDestination(s.decided) },
  {
    name: 'connections_closed_total',
    kind: 'counter',
    help: 'Connections portmux closed before handing them on, by reason.',
    labelNames: ['reason'],
    samples: (s) => CLOSE_REASONS.map((reason) => [{ reason }, s.closed[reason] ?? 0])
  },
  {
    name: 'proxy_connections_total',
    kind: 'counter',
    help: 'Proxy routes\' upstream connections by outcome (connected once per upstream connection, the rest once per failure).',
    labelNames: ['outcome'],
    samples: (s) => PROXY_OUTCOMES.map((outcome) => [{ outcome }, s.proxy[outcome] ?? 0])
  },
  { name: 'proxy_headers_total', kind: 'counter', help: 'PROXY protocol headers accepted from trusted peers.', samples: (s) => [[null, s.proxyHeaders]] },
  {
    name: 'errors_total',
    kind: 'counter',
    help: 'Errors by PORTMUX_ERR_* code (route matchers and handlers that threw).',
    labelNames: ['code'],
    // The counted codes always (at 0 until one happens), then any other code that occurred.
    samples: (s) => [
      ...COUNTED_ERRORS.map((code): Sample => [{ code }, s.errors[code] ?? 0]),
      ...Object.entries(s.errors).filter(([code]) => !COUNTED_ERRORS.includes(code)).map(([code, value]): Sample => [{ code }, value])
    ]
  }
]

/** One sample into a metric just reset: a counter counts up from 0 to it, a gauge is set to it. */
function put (metric: Counter | Gauge, labels: Record<string, string> | null, value: number): void {
  if (metric instanceof Counter) {
    if (labels === null) metric.inc(value)
    else metric.inc(labels, value)
  } else if (labels === null) {
    metric.set(value)
  } else {
    metric.set(labels, value)
  }
}

/** The sniff-time histogram's name, after the prefix. */
const SNIFF_DURATION = 'sniff_duration_seconds'

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

  const names = [...FROM_STATS.map((m) => prefix + m.name), prefix + SNIFF_DURATION]
  const sniffDuration = options.sniffDuration !== false
  const taken = names
    .filter((name) => name !== prefix + SNIFF_DURATION || sniffDuration)
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

  const metrics: Array<Counter | Gauge | Histogram> = FROM_STATS.map((m) => {
    const config = {
      name: prefix + m.name,
      help: m.help,
      labelNames: m.labelNames ?? [],
      registers,
      collect (this: Counter | Gauge) {
        this.reset()
        for (const [labels, value] of m.samples(stats())) put(this, labels, value)
      }
    }
    return m.kind === 'counter' ? new Counter(config) : new Gauge(config)
  })

  let stop = (): void => {}
  if (sniffDuration) {
    const histogram = new Histogram({
      name: prefix + SNIFF_DURATION,
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
    for (const name of names) {
      // Remove only our own: another registration may have taken a name since.
      const metric: unknown = registry.getSingleMetric(name)
      if (metric !== undefined && metrics.includes(metric as Counter)) registry.removeSingleMetric(name)
    }
  }
}
