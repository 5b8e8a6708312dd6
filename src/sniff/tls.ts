// PLACEHOLDER — replaced by the real parser.
import type { Detector, Verdict } from './types.js'
export interface ClientHello { sni?: string, alpn: string[], versions: number[] }
export type ClientHelloResult = { verdict: 'more' } | { verdict: 'no', reason: string } | { verdict: 'match', hello: ClientHello, length: number }
export function looksLikeTls (bytes: Uint8Array): Verdict {
  if (bytes.length === 0) return 'more'
  if (bytes[0] !== 0x16) return 'no'
  if (bytes.length < 2) return 'more'
  if (bytes[1] !== 0x03) return 'no'
  if (bytes.length < 3) return 'more'
  return bytes[2] <= 0x04 ? 'match' : 'no'
}
export function parseClientHello (bytes: Uint8Array): ClientHelloResult {
  return looksLikeTls(bytes) === 'no' ? { verdict: 'no', reason: 'x' } : { verdict: 'more' }
}
export function matchServerName (pattern: string, name: string | undefined): boolean { return pattern === name }
export const tls = { name: 'tls', detect: (b: Uint8Array) => parseClientHello(b).verdict } satisfies Detector
