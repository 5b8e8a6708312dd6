/**
 * Compiles the public `Match` forms into matchers over a connection's sniff context.
 * A matcher answers with a `Verdict`; on `'match'` it records the protocol it saw.
 */
import { detectors } from '../sniff/index.js'
import { matchAlpn, matchServerName, parseClientHello, type ClientHelloResult } from '../sniff/tls.js'
import type { ProtocolName, Verdict } from '../sniff/types.js'
import type { Socket } from 'node:net'
import { checkRouteInteger, InvalidRouteError, MatcherError } from '../errors.js'
import type { ConnectionInfo, Match, TcpRoute, TlsMatch } from '../types.js'

/** What matchers read: the bytes so far, and the ClientHello parsed once per length. */
export interface SniffContext {
  bytes: Buffer
  /** The protocol the deciding matcher saw. */
  protocol: string
  /** `parseClientHello` of the first `helloLength` bytes, shared by every TLS matcher. */
  hello: ClientHelloResult | undefined
  helloLength: number
  maxSniffBytes: number
}

export type Matcher = (ctx: SniffContext) => Verdict

export interface CompiledRoute {
  readonly name: string
  readonly route: TcpRoute
  /** Over the bytes; `null` when the route only takes silent clients. */
  readonly match: Matcher | null
  /** The route takes clients that stay silent for `sniffTimeout`. */
  readonly onTimeout: boolean
  /** The route takes what no detector, route or built-in destination claims (`'unknown'`). */
  readonly catchAll: boolean
  /** The route needs the whole ClientHello (SNI or ALPN patterns). */
  readonly readsClientHello: boolean
  /** Where its decided connections go. */
  readonly target: RouteTarget
}

/**
 * Deliver a decided connection: `head` holds the bytes sniffed from it, no longer in the
 * socket. `handshake`: a TLS handshake comes first, counted against the pending limits
 * until the target reports it done.
 */
export interface RouteTarget {
  readonly deliver: (socket: Socket, info: ConnectionInfo, head: Buffer) => void
  readonly handshake: boolean
}

export type MatcherErrorSink = (err: MatcherError) => void

export function clientHello (ctx: SniffContext): ClientHelloResult {
  if (ctx.helloLength !== ctx.bytes.length || ctx.hello === undefined) {
    ctx.hello = parseClientHello(ctx.bytes, ctx.maxSniffBytes)
    ctx.helloLength = ctx.bytes.length
  }
  return ctx.hello
}

const VERDICTS = new Set<unknown>(['match', 'no', 'more'])

function protocolMatcher (name: ProtocolName): Matcher {
  if (name === 'tls') {
    return (ctx) => {
      const v = clientHello(ctx).verdict
      if (v === 'match') ctx.protocol = 'tls'
      return v
    }
  }
  const detector = detectors[name]
  return (ctx) => {
    const v = detector.detect(ctx.bytes)
    if (v === 'match') ctx.protocol = name
    return v
  }
}

function list (value: string | string[] | undefined, what: string, route: string): string[] | undefined {
  if (value === undefined) return undefined
  const out = Array.isArray(value) ? value : [value]
  if (out.length === 0 || out.some((s) => typeof s !== 'string' || s.length === 0)) {
    throw new InvalidRouteError(route, `tls.${what} must be a non-empty string or a non-empty array of them`)
  }
  return out
}

function tlsMatcher (spec: TlsMatch, route: string): Matcher {
  if (spec === null || typeof spec !== 'object') throw new InvalidRouteError(route, '{ tls } must be an object')
  const sni = list(spec.sni, 'sni', route)
  const alpn = list(spec.alpn, 'alpn', route)
  return (ctx) => {
    const result = clientHello(ctx)
    if (result.verdict !== 'match') return result.verdict
    const { hello } = result
    if (sni !== undefined && !sni.some((p) => matchServerName(p, hello.sni))) return 'no'
    if (alpn !== undefined && !matchAlpn(alpn, hello.alpn)) return 'no'
    ctx.protocol = 'tls'
    return 'match'
  }
}

function prefixMatcher (prefix: string | Uint8Array, route: string): Matcher {
  const bytes = typeof prefix === 'string' ? Buffer.from(prefix, 'latin1') : Buffer.from(prefix)
  if (bytes.length === 0) throw new InvalidRouteError(route, '{ prefix } must not be empty')
  return (ctx) => {
    const have = ctx.bytes
    const n = Math.min(have.length, bytes.length)
    for (let i = 0; i < n; i++) if (have[i] !== bytes[i]) return 'no'
    if (n < bytes.length) return 'more'
    ctx.protocol = 'custom'
    return 'match'
  }
}

function regexpMatcher (re: RegExp): Matcher {
  return (ctx) => {
    re.lastIndex = 0
    if (!re.test(ctx.bytes.toString('latin1'))) return 'no'
    ctx.protocol = 'custom'
    return 'match'
  }
}

function functionMatcher (fn: (bytes: Uint8Array) => Verdict, route: string, onError: MatcherErrorSink): Matcher {
  return (ctx) => {
    let v: unknown
    try {
      v = fn(ctx.bytes)
    } catch (err) {
      onError(new MatcherError(route, err))
      return 'no'
    }
    if (!VERDICTS.has(v)) {
      onError(new MatcherError(route, new TypeError(`returned ${String(v)}, not 'match', 'no' or 'more'`)))
      return 'no'
    }
    if (v === 'match') ctx.protocol = 'custom'
    return v as Verdict
  }
}

/** Any of the list: `'match'` as soon as one matches, `'more'` while one may still, else `'no'`. */
function anyOf (matchers: Matcher[]): Matcher {
  if (matchers.length === 1) return matchers[0]
  return (ctx) => {
    let more = false
    for (const m of matchers) {
      const v = m(ctx)
      if (v === 'match') return 'match'
      if (v === 'more') more = true
    }
    return more ? 'more' : 'no'
  }
}

function compileOne (m: Match, route: string, onError: MatcherErrorSink): Matcher {
  if (typeof m === 'string') {
    if (!Object.hasOwn(detectors, m)) {
      throw new InvalidRouteError(route, `unknown protocol "${m}"; known: ${Object.keys(detectors).join(', ')}, timeout, unknown`)
    }
    return protocolMatcher(m as ProtocolName)
  }
  if (m instanceof RegExp) return regexpMatcher(m)
  if (typeof m === 'function') return functionMatcher(m, route, onError)
  if (m !== null && typeof m === 'object') {
    if ('tls' in m) return tlsMatcher(m.tls, route)
    if ('prefix' in m) {
      if (typeof m.prefix !== 'string' && !(m.prefix instanceof Uint8Array)) {
        throw new InvalidRouteError(route, '{ prefix } must be a string or a Uint8Array')
      }
      return prefixMatcher(m.prefix, route)
    }
  }
  throw new InvalidRouteError(route, 'match must be a protocol name, { tls }, { prefix }, a RegExp, a function, \'timeout\' or \'unknown\'')
}

function isTlsMatch (m: Match): m is 'tls' | { tls: TlsMatch } {
  return m === 'tls' || (typeof m === 'object' && m !== null && !(m instanceof RegExp) && 'tls' in m)
}

/**
 * Compile a route's matches, and check what the pipeline enforces of it (`maxConnections`).
 * `target` is where its connections go, made (and checked) by the route kinds.
 */
export function compileRoute (name: string, route: TcpRoute, onError: MatcherErrorSink, target: (name: string, route: TcpRoute) => RouteTarget): CompiledRoute {
  const all = Array.isArray(route.match) ? route.match : [route.match]
  if (all.length === 0) throw new InvalidRouteError(name, 'match must not be an empty list')
  const onTimeout = all.includes('timeout')
  const catchAll = all.includes('unknown')
  const byBytes = all.filter((m) => m !== 'timeout' && m !== 'unknown')
  const readsClientHello = byBytes.some(isTlsMatch)
  const match = byBytes.length === 0 ? null : anyOf(byBytes.map((m) => compileOne(m, name, onError)))
  checkRouteInteger(name, 'maxConnections', route.maxConnections)
  return { name, route, match, onTimeout, catchAll, readsClientHello, target: target(name, route) }
}
