import type { CloseReason, Destination, MuxStats, PlaintextMode, ProxyOutcome } from '../types.js'

export const CLOSE_REASONS: readonly CloseReason[] = [
  'sniff-timeout', 'client-closed', 'client-error', 'no-route', 'max-pending', 'max-pending-per-source',
  'max-sniff-bytes', 'max-connections', 'handshake-timeout', 'proxy-header', 'server-closing'
]
export const DESTINATIONS: readonly Destination[] = ['https', 'http', 'redirect', 'reject']

/** The destination plaintext HTTP is counted as, by what it gets. */
export const PLAINTEXT_DESTINATION: Readonly<Record<PlaintextMode, Destination>> = { serve: 'http', redirect: 'redirect', reject: 'reject' }
export const PROXY_OUTCOMES: readonly ProxyOutcome[] = [
  'connected', 'upstream-refused', 'connect-timeout', 'upstream-error', 'client-error', 'idle-timeout'
]

function zero<K extends string> (keys: readonly K[]): Record<K, number> {
  const out = {} as Record<K, number>
  for (const k of keys) out[k] = 0
  return out
}

/** The counters of one server. Only `src/core` writes them. */
export class Counters {
  accepted = 0
  proxyHeaders = 0
  readonly decided = zero(DESTINATIONS)
  readonly decidedRoutes = new Map<string, number>()
  readonly closed = zero(CLOSE_REASONS)
  readonly proxy = zero(PROXY_OUTCOMES)
  readonly errors = new Map<string, number>()

  route (name: string): void {
    this.decidedRoutes.set(name, (this.decidedRoutes.get(name) ?? 0) + 1)
  }

  error (code: string): void {
    this.errors.set(code, (this.errors.get(code) ?? 0) + 1)
  }

  snapshot (pending: number, handshakes: number, open: Record<Destination, number>, openRoutes: Record<string, number>): MuxStats {
    return {
      accepted: this.accepted,
      pending,
      handshakes,
      proxyHeaders: this.proxyHeaders,
      open: { ...open, routes: openRoutes },
      decided: { ...this.decided, routes: Object.fromEntries(this.decidedRoutes) },
      closed: { ...this.closed },
      proxy: { ...this.proxy },
      errors: Object.fromEntries(this.errors)
    }
  }
}
