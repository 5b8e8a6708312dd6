/**
 * IP address text ↔ bytes, without I/O and without `node:net` state.
 *
 * Parsing is strict on purpose (the PROXY protocol forbids leading zeros in IPv4 numbers and
 * zone ids make no sense on the wire). Formatting follows Node's own output (libuv's
 * `inet_ntop`), so an address taken from a PROXY header compares equal to what
 * `socket.remoteAddress` would have said for the same peer:
 *
 * - lower-case hex, no leading zeros in a group;
 * - the longest run of two or more zero groups becomes `::` (the first one on a tie);
 * - `::a.b.c.d` when the first six groups are zero (and the address is not `::` or `::x`),
 *   `::ffff:a.b.c.d` for IPv4-mapped addresses.
 */

const DOT = 0x2e
const COLON = 0x3a

/** Value of an ASCII hex digit, or -1. */
function hexValue (c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10
  return -1
}

/**
 * Parse dotted-quad IPv4 text: exactly four decimal numbers 0–255, no leading zeros ("0" itself
 * is fine), single dots. Returns the address as an unsigned 32-bit number, or -1.
 */
export function parseIpv4 (text: string): number {
  const n = text.length
  if (n < 7 || n > 15) return -1
  let value = 0
  let parts = 0
  let i = 0
  while (i < n) {
    const start = i
    let part = 0
    while (i < n && i - start < 4) {
      const c = text.charCodeAt(i)
      if (c < 0x30 || c > 0x39) break
      part = part * 10 + (c - 0x30)
      i++
    }
    const digits = i - start
    if (digits === 0 || digits > 3 || part > 255) return -1
    if (digits > 1 && text.charCodeAt(start) === 0x30) return -1
    value = value * 256 + part
    parts++
    if (i === n) break
    if (text.charCodeAt(i) !== DOT || parts === 4) return -1
    i++
    if (i === n) return -1
  }
  return parts === 4 ? value : -1
}

/**
 * Parse IPv6 text (RFC 4291 §2.2: hex groups of 1–4 digits, at most one `::`, optionally a
 * dotted IPv4 tail) into 16 bytes at `out[offset]`. No zone ids, no brackets. Returns whether
 * the text was valid; `out` may be partly written when it was not.
 */
export function parseIpv6 (text: string, out: Uint8Array, offset = 0): boolean {
  const n = text.length
  if (n < 2 || n > 45) return false
  let words = 0
  let gap = -1
  let i = 0
  if (text.charCodeAt(0) === COLON) {
    if (text.charCodeAt(1) !== COLON) return false
    gap = 0
    i = 2
  }
  while (i < n) {
    if (words === 8) return false
    const start = i
    let value = 0
    while (i < n && i - start < 5) {
      const h = hexValue(text.charCodeAt(i))
      if (h < 0) break
      value = value * 16 + h
      i++
    }
    const digits = i - start
    if (digits === 0) return false
    if (i < n && text.charCodeAt(i) === DOT) {
      if (words > 6) return false
      const v4 = parseIpv4(text.slice(start))
      if (v4 < 0) return false
      writeWord(out, offset, words++, Math.floor(v4 / 65536))
      writeWord(out, offset, words++, v4 % 65536)
      i = n
      break
    }
    if (digits > 4) return false
    writeWord(out, offset, words++, value)
    if (i === n) break
    if (text.charCodeAt(i) !== COLON) return false
    i++
    if (i === n) return false
    if (text.charCodeAt(i) === COLON) {
      if (gap >= 0) return false
      gap = words
      i++
    }
  }
  if (gap < 0) return words === 8
  if (words === 8) return false
  // Move the groups written after the gap to the end, zero the middle.
  const tail = words - gap
  for (let k = 0; k < tail; k++) {
    const from = offset + (words - 1 - k) * 2
    const to = offset + (7 - k) * 2
    out[to] = out[from]
    out[to + 1] = out[from + 1]
  }
  out.fill(0, offset + gap * 2, offset + (8 - tail) * 2)
  return true
}

function writeWord (out: Uint8Array, offset: number, index: number, value: number): void {
  out[offset + index * 2] = value >>> 8
  out[offset + index * 2 + 1] = value & 0xff
}

function readWord (bytes: Uint8Array, offset: number, index: number): number {
  return (bytes[offset + index * 2] << 8) | bytes[offset + index * 2 + 1]
}

/** Dotted-quad text of the 4 bytes at `bytes[offset]`. */
export function formatIpv4 (bytes: Uint8Array, offset = 0): string {
  return `${bytes[offset]}.${bytes[offset + 1]}.${bytes[offset + 2]}.${bytes[offset + 3]}`
}

/** Whether the 16 bytes at `bytes[offset]` are an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`). */
export function isV4Mapped (bytes: Uint8Array, offset = 0): boolean {
  for (let i = 0; i < 10; i++) if (bytes[offset + i] !== 0) return false
  return bytes[offset + 10] === 0xff && bytes[offset + 11] === 0xff
}

/**
 * Text of the 16 bytes at `bytes[offset]`, as Node prints IPv6 addresses. With
 * `embedIpv4 = false` the address is always written as hex groups (the PROXY v1 grammar).
 */
export function formatIpv6 (bytes: Uint8Array, offset = 0, embedIpv4 = true): string {
  let bestStart = -1
  let bestLength = 0
  for (let i = 0; i < 8;) {
    if (readWord(bytes, offset, i) !== 0) { i++; continue }
    let j = i
    while (j < 8 && readWord(bytes, offset, j) === 0) j++
    if (j - i > bestLength) { bestStart = i; bestLength = j - i }
    i = j
  }
  if (bestLength < 2) bestStart = -1

  if (embedIpv4 && bestStart === 0 &&
      (bestLength === 6 || (bestLength === 5 && readWord(bytes, offset, 5) === 0xffff))) {
    return (bestLength === 5 ? '::ffff:' : '::') + formatIpv4(bytes, offset + 12)
  }

  let text = ''
  for (let i = 0; i < 8; i++) {
    if (i === bestStart) {
      text += '::'
      i += bestLength - 1
      continue
    }
    if (text.length > 0 && text.charCodeAt(text.length - 1) !== COLON) text += ':'
    text += readWord(bytes, offset, i).toString(16)
  }
  return text
}

/** A parsed address: 4 bytes for IPv4, 16 for IPv6. */
export interface IpBytes {
  family: 4 | 6
  bytes: Uint8Array
}

/** Parse IPv4 or IPv6 text into bytes, or `undefined` when it is neither. */
export function parseIp (text: string): IpBytes | undefined {
  const v4 = parseIpv4(text)
  if (v4 >= 0) {
    return { family: 4, bytes: Uint8Array.of(v4 >>> 24, (v4 >>> 16) & 0xff, (v4 >>> 8) & 0xff, v4 & 0xff) }
  }
  const bytes = new Uint8Array(16)
  return parseIpv6(text, bytes) ? { family: 6, bytes } : undefined
}

/** 4-byte form of an IPv4 or IPv4-mapped IPv6 address, or `undefined`. */
function asIpv4 (ip: IpBytes): Uint8Array | undefined {
  if (ip.family === 4) return ip.bytes
  return isV4Mapped(ip.bytes) ? ip.bytes.slice(12, 16) : undefined
}

/** 16-byte form of any address (IPv4 becomes IPv4-mapped). */
function asIpv6 (ip: IpBytes): Uint8Array {
  if (ip.family === 6) return ip.bytes
  const bytes = new Uint8Array(16)
  bytes[10] = 0xff
  bytes[11] = 0xff
  bytes.set(ip.bytes, 12)
  return bytes
}

function withoutZone (address: string): string {
  const percent = address.indexOf('%')
  return percent === -1 ? address : address.slice(0, percent)
}

/** Two addresses in one family, as a PROXY header needs them. */
export interface IpPair {
  family: 4 | 6
  source: Uint8Array
  destination: Uint8Array
}

/**
 * Bring two address texts into one family: IPv4 when both are IPv4 or IPv4-mapped IPv6
 * (`::ffff:1.2.3.4`, what a dual-stack listener reports), IPv6 otherwise (IPv4 ends become
 * mapped). `want` forces a family; `undefined` when the text is not an address or the forced
 * family cannot hold it. A zone id (`fe80::1%eth0`, as Node reports link-local peers) is dropped:
 * a PROXY header has no room for it.
 */
export function pairAddresses (source: string, destination: string, want?: 4 | 6): IpPair | undefined {
  const a = parseIp(withoutZone(source))
  const b = parseIp(withoutZone(destination))
  if (a === undefined || b === undefined) return undefined
  if (want !== 6) {
    const a4 = asIpv4(a)
    const b4 = asIpv4(b)
    if (a4 !== undefined && b4 !== undefined) return { family: 4, source: a4, destination: b4 }
    if (want === 4) return undefined
  }
  return { family: 6, source: asIpv6(a), destination: asIpv6(b) }
}
