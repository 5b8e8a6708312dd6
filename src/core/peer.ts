/** Who may send PROXY headers. */
import net from 'node:net'
import { InvalidOptionError } from '../errors.js'

/** Trusted senders of PROXY headers: addresses and CIDRs, IPv4 and IPv6. */
export class TrustList {
  private readonly list = new net.BlockList()

  constructor (entries: readonly string[]) {
    if (!Array.isArray(entries) || entries.length === 0) {
      throw new InvalidOptionError('proxyProtocol.trusted must be a non-empty array of addresses or CIDRs')
    }
    for (const entry of entries) this.add(entry)
  }

  private add (entry: string): void {
    if (typeof entry !== 'string') throw new InvalidOptionError(`proxyProtocol.trusted: ${String(entry)} is not an address or CIDR`)
    const slash = entry.indexOf('/')
    const address = slash === -1 ? entry : entry.slice(0, slash)
    const family = net.isIPv4(address) ? 'ipv4' : net.isIPv6(address) ? 'ipv6' : null
    if (family === null) throw new InvalidOptionError(`proxyProtocol.trusted: "${entry}" is not an address or CIDR`)
    if (slash === -1) {
      this.list.addAddress(address, family)
      return
    }
    const bits = entry.slice(slash + 1)
    const prefix = /^[0-9]{1,3}$/.test(bits) ? Number(bits) : -1
    if (prefix < 0 || prefix > (family === 'ipv4' ? 32 : 128)) {
      throw new InvalidOptionError(`proxyProtocol.trusted: "${entry}" has an invalid prefix length`)
    }
    this.list.addSubnet(address, prefix, family)
  }

  /** Whether a connection from `address` may send a PROXY header. IPv4-mapped IPv6 counts as IPv4. */
  has (address: string | undefined): boolean {
    if (address === undefined) return false
    if (net.isIPv4(address)) return this.list.check(address, 'ipv4')
    if (address.toLowerCase().startsWith('::ffff:')) {
      const v4 = address.slice(7)
      if (net.isIPv4(v4) && this.list.check(v4, 'ipv4')) return true
    }
    return net.isIPv6(address) && this.list.check(address, 'ipv6')
  }
}
