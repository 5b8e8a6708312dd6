/**
 * The decision: which route or built-in destination the bytes so far belong to.
 * Pure apart from the per-connection memo in the context; no I/O, no timers.
 */
import { detectH2cPreface } from '../sniff/h2c.js'
import { http } from '../sniff/http.js'
import { looksLikeTls } from '../sniff/tls.js'
import type { CompiledRoute, SniffContext } from './match.js'

/**
 * What no route took, by protocol: TLS (to HTTPS), plaintext HTTP/1 and h2c (to the
 * plaintext destination the `http` option names), or nothing that can be served.
 */
export type Builtin = 'tls' | 'http' | 'h2c' | 'no-route'

/** `'more'`: not decided yet. */
export type Decision = CompiledRoute | Builtin | 'more'

export interface ClassifyState extends SniffContext {
  /** Index of the first route that has not answered `'no'` yet: `'no'` is final, so earlier routes are skipped. */
  nextRoute: number
}

export interface ClassifyOptions {
  /** The mux has TLS configured: TLS goes to HTTPS. Without it, TLS no route takes is closed. */
  tls: boolean
  /** h2c prior knowledge goes to the HTTP/2 server (else it is plaintext HTTP/1 and gets its 400). */
  h2c: boolean
}

/**
 * Routes first, in order; a route answering `'more'` holds the decision. With `final`
 * (no more bytes will be waited for: the deadline passed, the buffer is full or the
 * client finished sending), `'more'` counts as `'no'` for routes, and a built-in that
 * is still undecided gives `'more'` back for the caller to close. `catchAll` (a route
 * matching `'unknown'`) takes what neither a route nor a built-in destination claims.
 */
export function classify (state: ClassifyState, routes: readonly CompiledRoute[], options: ClassifyOptions, final: boolean, catchAll?: CompiledRoute): Decision {
  for (let i = state.nextRoute; i < routes.length; i++) {
    const route = routes[i]
    if (route.match === null) {
      if (i === state.nextRoute) state.nextRoute++
      continue
    }
    const v = route.match(state)
    if (v === 'match') return route
    if (v === 'no') {
      if (i === state.nextRoute) state.nextRoute++
      continue
    }
    if (!final) return 'more'
  }
  return builtin(state, options, final, catchAll)
}

/**
 * TLS, h2c and HTTP/1 by the built-in detectors. Bytes none of them claims are
 * `'unknown'`: the catch-all route's, else the plaintext HTTP server's (which answers
 * them with its 400). Without a catch-all the HTTP/1 detector is not waited for: the HTTP
 * server judges the request line itself.
 */
function builtin (state: SniffContext, options: ClassifyOptions, final: boolean, catchAll: CompiledRoute | undefined): Decision {
  const bytes = state.bytes
  const tls = looksLikeTls(bytes)
  if (tls === 'match') {
    state.protocol = 'tls'
    return options.tls ? 'tls' : catchAll ?? 'no-route'
  }
  if (tls === 'more') return 'more'
  const h2c = detectH2cPreface(bytes)
  if (h2c === 'more') return 'more'
  if (h2c === 'match') {
    state.protocol = 'h2c'
    return options.h2c ? 'h2c' : 'http'
  }
  const h1 = http.detect(bytes)
  if (h1 === 'more' && !final && catchAll !== undefined) return 'more'
  if (h1 !== 'no') {
    state.protocol = 'http'
    return 'http'
  }
  state.protocol = 'unknown'
  return catchAll ?? 'http'
}
