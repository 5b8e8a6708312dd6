/**
 * Where an HTTP request points: the authority of a Host header (or of an absolute-form
 * target) and the request-target split into authority and path. Pure parsers; the redirect
 * rules and the option checks both use them.
 */
import { isIPv4, isIPv6 } from 'node:net'

export interface Authority {
  /** As it goes into a URL: IPv6 literals keep their brackets. */
  host: string
  port: number | undefined
}

// A DNS-style name; one trailing dot (the fully qualified form) is kept as given.
const REG_NAME = /^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9_])?\.?$/
const PORT = /^[0-9]{1,5}$/

/**
 * Parse a Host header (or an absolute-form authority): `host[:port]`, where host is a
 * DNS name, an IPv4 address or a bracketed IPv6 address. Userinfo, paths, spaces,
 * control characters, percent-encoding and out-of-range ports make it malformed.
 */
export function parseAuthority (value: string | undefined): Authority | null {
  if (value === undefined || value.length === 0 || value.length > 261) return null
  let host: string
  let rest: string
  if (value.charCodeAt(0) === 0x5b /* [ */) {
    const close = value.indexOf(']')
    if (close === -1) return null
    const literal = value.slice(1, close)
    if (!isIPv6(literal) || literal.includes('%')) return null
    host = '[' + literal.toLowerCase() + ']'
    rest = value.slice(close + 1)
  } else {
    const colon = value.indexOf(':')
    host = colon === -1 ? value : value.slice(0, colon)
    rest = colon === -1 ? '' : value.slice(colon)
    if (host.length > 253 || !(REG_NAME.test(host) || isIPv4(host))) return null
    host = host.toLowerCase()
  }
  if (rest === '' || rest === ':') return { host, port: undefined }
  if (rest.charCodeAt(0) !== 0x3a /* : */) return null
  const digits = rest.slice(1)
  if (!PORT.test(digits)) return null
  const port = Number(digits)
  if (port < 1 || port > 65535) return null
  return { host, port }
}

export interface Target {
  authority: string | undefined
  /** Path and query, unchanged. */
  path: string
}

/** Split a request-target into the authority it names (absolute-form) and the path. */
export function requestTarget (url: string | undefined): Target | null {
  if (url === undefined || url.length === 0) return null
  if (url.charCodeAt(0) === 0x2f /* / */) return { authority: undefined, path: url }
  const m = /^https?:\/\/([^/?#]*)([^#]*)$/i.exec(url)
  if (m === null) return null
  const path = m[2] === '' ? '/' : m[2].charCodeAt(0) === 0x3f /* ? */ ? '/' + m[2] : m[2]
  return { authority: m[1], path }
}
