/**
 * Connections in their first stage (being sniffed, or in the TLS handshake) per client
 * source, so that one address cannot take every slot while others wait. IPv6 clients are
 * counted by their /64 (one host is usually given a whole /64); IPv4-mapped IPv6 counts as
 * the IPv4 address.
 */
import { formatIpv4, isV4Mapped, parseIp, parseIpv4 } from '../sniff/ip.js'

/** The key a client address is counted under; `undefined` when it is no address. */
export function sourceKey (address: string | undefined): string | undefined {
  if (address === undefined) return undefined
  // IPv4, the common case, is its own key: checked without allocating.
  if (parseIpv4(address) >= 0) return address
  const percent = address.indexOf('%')
  const ip = parseIp(percent === -1 ? address : address.slice(0, percent))
  if (ip === undefined) return undefined
  if (ip.family === 4) return ip.bytes.join('.')
  if (isV4Mapped(ip.bytes)) return formatIpv4(ip.bytes, 12)
  const b = ip.bytes
  let key = ''
  for (let i = 0; i < 8; i += 2) key += (key === '' ? '' : ':') + ((b[i] << 8) | b[i + 1]).toString(16)
  return key + '::/64'
}

export class SourceCounts {
  private readonly counts = new Map<string, number>()

  constructor (readonly max: number) {}

  /** Count one more connection from `key`; false (and nothing counted) when it has `max` already. */
  take (key: string): boolean {
    const n = this.counts.get(key) ?? 0
    if (n >= this.max) return false
    this.counts.set(key, n + 1)
    return true
  }

  give (key: string): void {
    const n = this.counts.get(key)
    if (n === undefined) return
    if (n <= 1) this.counts.delete(key)
    else this.counts.set(key, n - 1)
  }

  /** How many sources are counted now. */
  get size (): number {
    return this.counts.size
  }
}
