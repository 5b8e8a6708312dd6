/**
 * Option checks at construction time, each failing with a named error that says which
 * option is wrong and what it takes.
 */
import { isIP } from 'node:net'
import type { TlsOptions } from 'node:tls'
import { InvalidOptionError } from '../errors.js'
import { parseAuthority } from '../sniff/http-target.js'
import type { AcmeChallenge, HttpServerTimeouts, MuxOptions, PlaintextMode, RedirectOptions, ResolvedAcme, TcpRoute } from '../types.js'
import { TrustList } from './peer.js'

export const DEFAULTS = Object.freeze({
  sniffTimeout: 5000,
  maxSniffBytes: 16384,
  maxPending: 10000,
  maxPendingPerSource: 256,
  closeGrace: 1000
})

export interface ResolvedOptions {
  /** `'dev'` until the development certificate is made; `null` for a plaintext port. */
  tls: TlsOptions | 'dev' | null
  plaintext: PlaintextMode
  redirect: RedirectOptions
  http2: boolean
  routes: Array<[string, TcpRoute]>
  sniffTimeout: number
  maxSniffBytes: number
  maxPending: number
  maxPendingPerSource: number
  proxyProtocol: { trusted: TrustList, required: boolean } | null
  closeGrace: number
  /** A second, plaintext listener on the same host; `null` for none. */
  httpPort: number | null
  /** Only what was given: the inner servers keep their own defaults for the rest. */
  timeouts: HttpServerTimeouts
  acme: ResolvedAcme | null
}

/** Let's Encrypt's production directory: the default CA. */
export const LETS_ENCRYPT = 'https://acme-v02.api.letsencrypt.org/directory'
/** Where certificates are kept unless `acme.storage` says otherwise (from the working directory). */
export const DEFAULT_ACME_STORAGE = '.portmux/acme'
const CHALLENGES: readonly AcmeChallenge[] = ['tls-alpn-01', 'http-01']

/** Key material that `acme` would replace: giving both is a mistake. */
const CERTIFICATE_OPTIONS = ['key', 'cert', 'pfx'] as const
const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/

function acmeOptions (value: unknown, tls: MuxOptions['tls']): ResolvedAcme {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new InvalidOptionError('acme must be { domains, agreeToTerms: true, email?, directory?, storage?, challenges? }')
  }
  const a = value as Record<string | symbol, unknown>
  if (a.agreeToTerms !== true) throw new InvalidOptionError('acme.agreeToTerms must be true: the CA\'s terms of service have to be accepted')
  if (!Array.isArray(a.domains) || a.domains.length === 0) throw new InvalidOptionError('acme.domains must be a non-empty array of domain names')
  const domains: string[] = []
  for (const d of a.domains as unknown[]) {
    if (typeof d !== 'string') throw new InvalidOptionError(`acme.domains: ${String(d)} is not a string`)
    const name = d.toLowerCase().replace(/\.$/, '')
    if (name.startsWith('*.')) throw new InvalidOptionError(`acme.domains: ${d} is a wildcard; wildcards need the dns-01 challenge, which portmux does not answer`)
    if (isIP(name) !== 0) throw new InvalidOptionError(`acme.domains: ${d} is an IP address; only domain names are supported`)
    if (name.length > 253 || !name.split('.').every((l) => LABEL.test(l))) throw new InvalidOptionError(`acme.domains: ${d} is not a valid domain name`)
    if (!domains.includes(name)) domains.push(name)
  }
  if (a.email !== undefined && (typeof a.email !== 'string' || !/^[^\s@]+@[^\s@]+$/.test(a.email))) {
    throw new InvalidOptionError(`acme.email must be an e-mail address, got ${String(a.email)}`)
  }
  let directory = LETS_ENCRYPT
  if (a.directory !== undefined) {
    const url = typeof a.directory === 'string' && URL.canParse(a.directory) ? new URL(a.directory) : null
    if (url === null || (url.protocol !== 'https:' && url.protocol !== 'http:')) throw new InvalidOptionError(`acme.directory must be an http(s) URL, got ${String(a.directory)}`)
    directory = url.href
  }
  if (a.storage !== undefined && (typeof a.storage !== 'string' || a.storage.length === 0)) throw new InvalidOptionError('acme.storage must be a directory path')
  let challenges: AcmeChallenge[] = [...CHALLENGES]
  if (a.challenges !== undefined) {
    if (!Array.isArray(a.challenges) || a.challenges.length === 0) throw new InvalidOptionError('acme.challenges must be a non-empty array of \'tls-alpn-01\' and \'http-01\'')
    challenges = []
    for (const c of a.challenges as unknown[]) {
      if (!CHALLENGES.includes(c as AcmeChallenge)) throw new InvalidOptionError(`acme.challenges: ${String(c)} is not one portmux answers ('tls-alpn-01', 'http-01')`)
      if (challenges.includes(c as AcmeChallenge)) throw new InvalidOptionError(`acme.challenges: ${String(c)} is given twice`)
      challenges.push(c as AcmeChallenge)
    }
  }
  if (tls === 'dev') throw new InvalidOptionError('acme and tls: \'dev\' exclude each other: the certificate comes from the CA')
  if (tls !== undefined && tls !== null && typeof tls === 'object') {
    const given = CERTIFICATE_OPTIONS.filter((k) => (tls as Record<string, unknown>)[k] !== undefined)
    if (given.length > 0) throw new InvalidOptionError(`acme and tls.${given.join('/')} exclude each other: the certificate comes from the CA (other tls options are fine)`)
  }
  const tuning = a[Symbol.for('portmux.acme.tuning')]
  return {
    domains,
    email: a.email as string | undefined,
    directory,
    storage: (a.storage as string | undefined) ?? DEFAULT_ACME_STORAGE,
    challenges,
    tuning: tuning !== null && typeof tuning === 'object' ? tuning as Record<string, unknown> : {}
  }
}

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308])
const TIMEOUT_OPTIONS = ['keepAliveTimeout', 'headersTimeout', 'requestTimeout', 'connectionTimeout', 'maxRequestsPerSocket', 'http2SessionTimeout', 'connectionsCheckingInterval'] as const

function ms (name: string, value: unknown, min: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > 2 ** 31 - 1) {
    throw new InvalidOptionError(`${name} must be an integer from ${min} to ${2 ** 31 - 1}, got ${String(value)}`)
  }
  return value
}

function port (name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 65535) {
    throw new InvalidOptionError(`${name} must be a port number from 0 to 65535, got ${String(value)}`)
  }
  return value
}

function redirectOptions (value: unknown): RedirectOptions {
  if (value === null || typeof value !== 'object') throw new InvalidOptionError('http.redirect must be an object')
  const r = value as RedirectOptions
  const out: RedirectOptions = {}
  if (r.status !== undefined) {
    if (!REDIRECT_STATUSES.has(r.status)) throw new InvalidOptionError(`http.redirect.status must be 301, 302, 303, 307 or 308, got ${String(r.status)}`)
    out.status = r.status
  }
  if (r.host !== undefined) {
    const a = typeof r.host === 'string' ? parseAuthority(r.host) : null
    if (a === null) throw new InvalidOptionError(`http.redirect.host must be a host name or address with an optional port, got ${String(r.host)}`)
    out.host = r.host
  }
  if (r.port !== undefined) out.port = ms('http.redirect.port', r.port, 1)
  if (out.port !== undefined && out.port > 65535) throw new InvalidOptionError('http.redirect.port must be at most 65535')
  if (r.trustForwardedHost !== undefined) {
    if (typeof r.trustForwardedHost !== 'boolean') throw new InvalidOptionError('http.redirect.trustForwardedHost must be a boolean')
    out.trustForwardedHost = r.trustForwardedHost
  }
  return out
}

export function resolveOptions (options: MuxOptions | undefined): ResolvedOptions {
  const o: MuxOptions = options ?? {}
  if (o === null || typeof o !== 'object') throw new InvalidOptionError('options must be an object')

  let tls: ResolvedOptions['tls'] = null
  if (o.tls !== undefined) {
    if (o.tls === 'dev') tls = 'dev'
    else if (o.tls !== null && typeof o.tls === 'object') tls = o.tls
    else throw new InvalidOptionError('tls must be tls.createServer options (key, cert, SNICallback…) or \'dev\'')
  }

  let plaintext: ResolvedOptions['plaintext'] = 'redirect'
  let redirect: RedirectOptions = {}
  const h = o.http
  if (h === 'redirect' || h === 'serve' || h === 'reject') plaintext = h
  else if (h !== undefined) {
    if (h === null || typeof h !== 'object' || !('redirect' in h)) {
      throw new InvalidOptionError('http must be \'redirect\', \'serve\', \'reject\' or { redirect: { status?, host?, port? } }')
    }
    redirect = redirectOptions(h.redirect)
  }

  if (o.http2 !== undefined && typeof o.http2 !== 'boolean') throw new InvalidOptionError('http2 must be a boolean')

  let routes: Array<[string, TcpRoute]> = []
  if (o.routes !== undefined) {
    if (o.routes === null || typeof o.routes !== 'object') throw new InvalidOptionError('routes must be an object of { name: route }')
    routes = Object.entries(o.routes)
  }

  let proxyProtocol: ResolvedOptions['proxyProtocol'] = null
  if (o.proxyProtocol !== undefined) {
    const pp = o.proxyProtocol
    if (pp === null || typeof pp !== 'object') throw new InvalidOptionError('proxyProtocol must be { trusted: string[], required?: boolean }')
    if (pp.required !== undefined && typeof pp.required !== 'boolean') throw new InvalidOptionError('proxyProtocol.required must be a boolean')
    proxyProtocol = { trusted: new TrustList(pp.trusted), required: pp.required === true }
  }

  const resolved: ResolvedOptions = {
    tls,
    plaintext,
    redirect,
    http2: o.http2 ?? true,
    routes,
    sniffTimeout: o.sniffTimeout === undefined ? DEFAULTS.sniffTimeout : ms('sniffTimeout', o.sniffTimeout, 1),
    maxSniffBytes: o.maxSniffBytes === undefined ? DEFAULTS.maxSniffBytes : ms('maxSniffBytes', o.maxSniffBytes, 64),
    maxPending: o.maxPending === undefined ? DEFAULTS.maxPending : ms('maxPending', o.maxPending, 1),
    maxPendingPerSource: o.maxPendingPerSource === undefined ? DEFAULTS.maxPendingPerSource : ms('maxPendingPerSource', o.maxPendingPerSource, 1),
    proxyProtocol,
    closeGrace: o.closeGrace === undefined ? DEFAULTS.closeGrace : ms('closeGrace', o.closeGrace, 0),
    httpPort: o.httpPort === undefined ? null : port('httpPort', o.httpPort),
    timeouts: {},
    acme: o.acme === undefined ? null : acmeOptions(o.acme, o.tls)
  }
  // The port speaks TLS with the certificate the CA gives; until then handshakes fail.
  if (resolved.acme !== null && resolved.tls === null) resolved.tls = {}
  for (const name of TIMEOUT_OPTIONS) {
    if (o[name] !== undefined) resolved.timeouts[name] = ms(name, o[name], 0)
  }
  const { headersTimeout, requestTimeout } = resolved.timeouts
  if (headersTimeout !== undefined && requestTimeout !== undefined && requestTimeout > 0 && headersTimeout > requestTimeout) {
    throw new InvalidOptionError('headersTimeout must not be greater than requestTimeout (Node would enforce neither)')
  }
  return resolved
}
