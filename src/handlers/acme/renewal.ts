/**
 * When to renew. With a CA that offers ACME Renewal Information (RFC 9773), at a random
 * moment inside the window it suggests for this certificate, asked again when its
 * `Retry-After` says; otherwise when one third of the certificate's lifetime is left.
 */
import { X509Certificate } from 'node:crypto'

export interface CertificateFacts {
  notBefore: number
  notAfter: number
  /** The names the certificate covers (DNS subject alternative names), lower case. */
  names: string[]
  /** The RFC 9773 certificate identifier, or `null` without an Authority Key Identifier. */
  certId: string | null
}

/** Read the leaf (the first certificate of a PEM chain). */
export function certificateFacts (chain: string): CertificateFacts {
  const leaf = new X509Certificate(chain)
  const names = (leaf.subjectAltName ?? '').split(', ')
    .filter((n) => n.startsWith('DNS:'))
    .map((n) => n.slice(4).toLowerCase())
  return {
    notBefore: Date.parse(leaf.validFrom),
    notAfter: Date.parse(leaf.validTo),
    names,
    certId: certId(leaf)
  }
}

/** The fallback rule: once two thirds of the lifetime have passed. */
export function thirdLeft (facts: CertificateFacts): number {
  return facts.notAfter - Math.floor((facts.notAfter - facts.notBefore) / 3)
}

/** A moment inside an RFC 9773 suggested window, or `null` when the document has none that makes sense. */
export function pickInWindow (doc: unknown, random = Math.random()): number | null {
  const w = (doc as { suggestedWindow?: { start?: unknown, end?: unknown } } | null)?.suggestedWindow
  if (typeof w?.start !== 'string' || typeof w.end !== 'string') return null
  const start = Date.parse(w.start)
  const end = Date.parse(w.end)
  if (Number.isNaN(start) || Number.isNaN(end) || end < start) return null
  return start + Math.floor(random * (end - start))
}

/** RFC 9773 section 4.1: base64url(keyIdentifier of the AKI) "." base64url(serial number, DER content). */
function certId (cert: X509Certificate): string | null {
  const aki = authorityKeyIdentifier(cert.raw)
  if (aki === null) return null
  let hex = cert.serialNumber.replace(/[^0-9A-Fa-f]/g, '')
  if (hex.length % 2 === 1) hex = '0' + hex
  let serial = Buffer.from(hex, 'hex')
  // A DER INTEGER is two's complement: a positive number with its top bit set gets a zero first.
  if (serial.length === 0 || (serial[0] & 0x80) !== 0) serial = Buffer.concat([Buffer.from([0]), serial])
  return `${aki.toString('base64url')}.${serial.toString('base64url')}`
}

/** The extension's OID, 2.5.29.35, as DER. */
const AKI_OID = Buffer.from([0x06, 0x03, 0x55, 0x1d, 0x23])

/** The `keyIdentifier` of the Authority Key Identifier extension, found in the certificate's DER. */
function authorityKeyIdentifier (der: Buffer): Buffer | null {
  const at = der.indexOf(AKI_OID)
  if (at === -1) return null
  let i = at + AKI_OID.length
  // An optional `critical` BOOLEAN.
  if (der[i] === 0x01) i += 2 + der[i + 1]
  if (der[i] !== 0x04) return null
  const octets = readLength(der, i + 1)
  if (octets === null) return null
  i = octets.start
  if (der[i] !== 0x30) return null
  const seq = readLength(der, i + 1)
  if (seq === null) return null
  // [0] IMPLICIT KeyIdentifier
  if (der[seq.start] !== 0x80) return null
  const id = readLength(der, seq.start + 1)
  if (id === null || id.start + id.length > der.length) return null
  return der.subarray(id.start, id.start + id.length)
}

function readLength (der: Buffer, i: number): { start: number, length: number } | null {
  const first = der[i]
  if (first === undefined) return null
  if (first < 0x80) return { start: i + 1, length: first }
  const n = first & 0x7f
  if (n === 0 || n > 3) return null
  let length = 0
  for (let k = 1; k <= n; k++) length = length * 256 + (der[i + k] ?? 0)
  return { start: i + 1 + n, length }
}
