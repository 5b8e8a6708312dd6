/**
 * PROXY protocol version 2: a binary header.
 *
 *     signature (12)  0D 0A 0D 0A 00 0D 0A 51 55 49 54 0A
 *     ver_cmd (1)     high nibble version (2), low nibble command (0 LOCAL, 1 PROXY)
 *     fam (1)         high nibble family (0 UNSPEC, 1 INET, 2 INET6, 3 UNIX),
 *                     low nibble transport (0 UNSPEC, 1 STREAM, 2 DGRAM)
 *     len (2)         bytes that follow, big-endian
 *     addresses       INET: 4+4 address bytes, 2+2 ports (12); INET6: 16+16+2+2 (36);
 *                     UNIX: two 108-byte paths (216); UNSPEC: none
 *     TLVs            type (1), length (2, big-endian), value — until the end of `len`
 *
 * LOCAL (health checks from the proxy itself) means "use the real connection's addresses"; so do
 * UNSPEC family or transport, and the UNIX family: a socket path is no client address, so the
 * header reports the paths (`paths`) and no `source`, and the real connection's addresses stay
 * (the specification lets a receiver ignore addresses it cannot use).
 *
 * TLVs are read strictly, each inside the header's `len`: the registered types (ALPN, AUTHORITY,
 * CRC32C, NOOP, UNIQUE_ID, SSL with its sub-TLVs, NETNS) and the AWS (0xEA) and Azure (0xEE)
 * custom types are decoded into `tlvs`, and a malformed one refuses the header: a value of the
 * wrong size or encoding, a sub-TLV running past its SSL TLV, a CRC32C that does not verify, a
 * second copy of a type that may appear once. Every TLV, decoded or not, is also kept in
 * `tlvs.raw`; unknown types are the caller's to judge.
 */
import type {
  ProxyEncodeOptions, ProxyFamily, ProxyHeader, ProxyParseResult, ProxySslInfo, ProxyTlv, ProxyTlvs, ProxyTransport
} from './proxy-header.js'
import { formatIpv4, formatIpv6, pairAddresses } from './ip.js'

/** The 12 bytes every version 2 header starts with. */
export const PROXY_V2_SIGNATURE: Readonly<Uint8Array> = Uint8Array.of(0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a)
/** Signature, ver_cmd, fam and len. */
export const PROXY_V2_HEADER_LENGTH = 16
/** The largest possible header: the fixed part and a full 16-bit `len`. */
export const PROXY_V2_MAX_LENGTH = PROXY_V2_HEADER_LENGTH + 0xffff

/** Registered TLV types (section 2.2 of the specification). */
export const PP2_TYPE_ALPN = 0x01
export const PP2_TYPE_AUTHORITY = 0x02
export const PP2_TYPE_CRC32C = 0x03
export const PP2_TYPE_NOOP = 0x04
export const PP2_TYPE_UNIQUE_ID = 0x05
export const PP2_TYPE_SSL = 0x20
export const PP2_TYPE_NETNS = 0x30
/** Sub-TLVs of PP2_TYPE_SSL. */
export const PP2_SUBTYPE_SSL_VERSION = 0x21
export const PP2_SUBTYPE_SSL_CN = 0x22
export const PP2_SUBTYPE_SSL_CIPHER = 0x23
export const PP2_SUBTYPE_SSL_SIG_ALG = 0x24
export const PP2_SUBTYPE_SSL_KEY_ALG = 0x25
/** Bits of PP2_TYPE_SSL's `client` field. */
export const PP2_CLIENT_SSL = 0x01
export const PP2_CLIENT_CERT_CONN = 0x02
export const PP2_CLIENT_CERT_SESS = 0x04
/** Custom types in common use: AWS (subtype 0x01 PP2_SUBTYPE_AWS_VPCE_ID) and Azure (subtype 0x01 LINKID). */
export const PP2_TYPE_AWS = 0xea
export const PP2_SUBTYPE_AWS_VPCE_ID = 0x01
export const PP2_TYPE_AZURE = 0xee
export const PP2_SUBTYPE_AZURE_PRIVATEENDPOINT_LINKID = 0x01

const VERSION_2 = 0x2
const COMMAND_LOCAL = 0x0
const COMMAND_PROXY = 0x1
const FAMILY_UNSPEC = 0x0
const FAMILY_INET = 0x1
const FAMILY_INET6 = 0x2
const FAMILY_UNIX = 0x3
const TRANSPORT_UNSPEC = 0x0
const TRANSPORT_STREAM = 0x1
const TRANSPORT_DGRAM = 0x2

/** Address block size by family nibble. */
const ADDRESS_LENGTH = [0, 12, 36, 216] as const
const UNIX_PATH_LENGTH = 108
const TLV_HEADER_LENGTH = 3
const CRC32C_LENGTH = 4
/** PP2_TYPE_SSL: client (1) and verify (4) before its sub-TLVs. */
const SSL_FIXED_LENGTH = 5
/** The specification caps PP2_TYPE_UNIQUE_ID at 128 bytes. */
const UNIQUE_ID_MAX_LENGTH = 128
/** An ALPN protocol id is 1–255 bytes (RFC 7301). */
const ALPN_MAX_LENGTH = 255
/** Azure's LINKID: subtype (1), then a 32-bit little-endian integer. */
const AZURE_LINKID_LENGTH = 1 + 4

const FAMILY_NAMES: readonly ProxyFamily[] = ['unknown', 'tcp4', 'tcp6', 'unix']
const TRANSPORT_NAMES: readonly ProxyTransport[] = ['unspec', 'stream', 'dgram']

const MORE: ProxyParseResult = Object.freeze({ verdict: 'more' })

/** CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) lookup table. */
const CRC32C_TABLE = ((): Uint32Array => {
  const table = new Uint32Array(256)
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = (c & 1) !== 0 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1
    table[n] = c >>> 0
  }
  return table
})()

/**
 * CRC-32C of `bytes[0, end)`, reading the 4 bytes at `zeroAt` as zeros (the checksum field
 * itself, per section 2.2.3). Pass `zeroAt = -1` to read everything as is.
 */
export function crc32c (bytes: Uint8Array, end = bytes.length, zeroAt = -1): number {
  let crc = 0xffffffff
  for (let i = 0; i < end; i++) {
    const b = zeroAt >= 0 && i >= zeroAt && i < zeroAt + CRC32C_LENGTH ? 0 : bytes[i]
    crc = CRC32C_TABLE[(crc ^ b) & 0xff] ^ (crc >>> 8)
  }
  return (crc ^ 0xffffffff) >>> 0
}

function no (reason: string): ProxyParseResult {
  return { verdict: 'no', reason }
}

function u16 (bytes: Uint8Array, at: number): number {
  return (bytes[at] << 8) | bytes[at + 1]
}

function u32 (bytes: Uint8Array, at: number): number {
  return ((bytes[at] << 24) | (bytes[at + 1] << 16) | (bytes[at + 2] << 8) | bytes[at + 3]) >>> 0
}

/** A UNIX socket path from its NUL-padded 108 bytes; an abstract name (leading NUL) gets an `@`. */
function unixPath (bytes: Uint8Array, at: number): string {
  const abstract = bytes[at] === 0
  const start = abstract ? at + 1 : at
  let end = start
  while (end < at + UNIX_PATH_LENGTH && bytes[end] !== 0) end++
  const path = Buffer.from(bytes.buffer, bytes.byteOffset + start, end - start).toString('utf8')
  return abstract ? '@' + path : path
}

/**
 * Read the two ends of the address block at offset 16: IP addresses into `source` and
 * `destination`, UNIX socket paths into `paths` (no usable client address).
 */
function readAddresses (bytes: Uint8Array, family: number, header: ProxyHeader): void {
  const at = PROXY_V2_HEADER_LENGTH
  if (family === FAMILY_INET) {
    header.source = { address: formatIpv4(bytes, at), port: u16(bytes, at + 8) }
    header.destination = { address: formatIpv4(bytes, at + 4), port: u16(bytes, at + 10) }
  } else if (family === FAMILY_INET6) {
    header.source = { address: formatIpv6(bytes, at), port: u16(bytes, at + 32) }
    header.destination = { address: formatIpv6(bytes, at + 16), port: u16(bytes, at + 34) }
  } else {
    header.paths = { source: unixPath(bytes, at), destination: unixPath(bytes, at + UNIX_PATH_LENGTH) }
  }
}

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/** `bytes[start, end)` as UTF-8, or `undefined` when it is not valid UTF-8 or holds a NUL. */
function utf8 (bytes: Uint8Array, start: number, end: number): string | undefined {
  for (let i = start; i < end; i++) if (bytes[i] === 0) return undefined
  try {
    return UTF8.decode(bytes.subarray(start, end))
  } catch {
    return undefined
  }
}

/** `bytes[start, end)` as printable US-ASCII (space to `~`), or `undefined`. */
function ascii (bytes: Uint8Array, start: number, end: number): string | undefined {
  let out = ''
  for (let i = start; i < end; i++) {
    const b = bytes[i]
    if (b < 0x20 || b > 0x7e) return undefined
    out += String.fromCharCode(b)
  }
  return out
}

/** A non-empty text value, decoded by `decode`; `undefined` when empty or badly encoded. */
function text (bytes: Uint8Array, start: number, end: number, decode: typeof ascii): string | undefined {
  return end > start ? decode(bytes, start, end) : undefined
}

const SSL_TEXT_FIELDS: ReadonlyMap<number, { key: 'version' | 'cn' | 'cipher' | 'sigAlg' | 'keyAlg', decode: typeof ascii }> = new Map([
  [PP2_SUBTYPE_SSL_VERSION, { key: 'version', decode: ascii }],
  [PP2_SUBTYPE_SSL_CN, { key: 'cn', decode: utf8 }],
  [PP2_SUBTYPE_SSL_CIPHER, { key: 'cipher', decode: ascii }],
  [PP2_SUBTYPE_SSL_SIG_ALG, { key: 'sigAlg', decode: ascii }],
  [PP2_SUBTYPE_SSL_KEY_ALG, { key: 'keyAlg', decode: ascii }]
] as const)

/** Walk the TLVs of `bytes[start, end)`, calling `each` with type and value bounds; a reason or `undefined`. */
function walkTlvs (bytes: Uint8Array, start: number, end: number, each: (type: number, from: number, to: number) => string | undefined): string | undefined {
  for (let p = start; p < end;) {
    if (p + TLV_HEADER_LENGTH > end) return 'bad-tlv'
    const from = p + TLV_HEADER_LENGTH
    const to = from + u16(bytes, p + 1)
    if (to > end) return 'bad-tlv'
    const reason = each(bytes[p], from, to)
    if (reason !== undefined) return reason
    p = to
  }
  return undefined
}

/** PP2_TYPE_SSL's value `bytes[from, to)`: client bits, verify, then sub-TLVs inside it; or a reason. */
function readSsl (bytes: Uint8Array, from: number, to: number): ProxySslInfo | string {
  if (to - from < SSL_FIXED_LENGTH) return 'bad-ssl-tlv'
  const client = bytes[from]
  const ssl: ProxySslInfo = {
    client,
    ssl: (client & PP2_CLIENT_SSL) !== 0,
    certConnection: (client & PP2_CLIENT_CERT_CONN) !== 0,
    certSession: (client & PP2_CLIENT_CERT_SESS) !== 0,
    verify: u32(bytes, from + 1),
    raw: []
  }
  const reason = walkTlvs(bytes, from + SSL_FIXED_LENGTH, to, (type, start, end) => {
    const field = SSL_TEXT_FIELDS.get(type)
    if (field !== undefined) {
      if (ssl[field.key] !== undefined) return 'duplicate-tlv'
      const value = text(bytes, start, end, field.decode)
      if (value === undefined) return 'bad-ssl-tlv'
      ssl[field.key] = value
    }
    ssl.raw.push({ type, value: new Uint8Array(bytes.subarray(start, end)) })
    return undefined
  })
  return reason ?? ssl
}

/**
 * Read the TLVs in `bytes[start, end)` into `tlvs`; a CRC32C TLV is checked against the header
 * `bytes[0, end)`. Returns a reason, or `undefined` when all is well.
 */
function readTlvs (bytes: Uint8Array, start: number, end: number, tlvs: ProxyTlvs): string | undefined {
  return walkTlvs(bytes, start, end, (type, from, to) => {
    const reason = readTlv(bytes, type, from, to, end, tlvs)
    if (reason === undefined) tlvs.raw.push({ type, value: new Uint8Array(bytes.subarray(from, to)) })
    return reason
  })
}

/** Decode one TLV, value `bytes[from, to)`, into `tlvs`; a reason, or `undefined` when all is well. */
function readTlv (bytes: Uint8Array, type: number, from: number, to: number, end: number, tlvs: ProxyTlvs): string | undefined {
  const size = to - from
  switch (type) {
    case PP2_TYPE_ALPN: {
      if (tlvs.alpn !== undefined) return 'duplicate-tlv'
      const alpn = size <= ALPN_MAX_LENGTH ? text(bytes, from, to, ascii) : undefined
      if (alpn === undefined) return 'bad-alpn'
      tlvs.alpn = alpn
      return undefined
    }
    case PP2_TYPE_AUTHORITY: {
      if (tlvs.authority !== undefined) return 'duplicate-tlv'
      const authority = text(bytes, from, to, utf8)
      if (authority === undefined) return 'bad-authority'
      tlvs.authority = authority
      return undefined
    }
    case PP2_TYPE_CRC32C: {
      if (tlvs.crc32c !== undefined) return 'duplicate-tlv'
      if (size !== CRC32C_LENGTH) return 'bad-crc32c'
      const expected = u32(bytes, from)
      if (crc32c(bytes, end, from) !== expected) return 'bad-crc32c'
      tlvs.crc32c = expected
      return undefined
    }
    case PP2_TYPE_UNIQUE_ID:
      if (tlvs.uniqueId !== undefined) return 'duplicate-tlv'
      if (size > UNIQUE_ID_MAX_LENGTH) return 'bad-unique-id'
      tlvs.uniqueId = new Uint8Array(bytes.subarray(from, to))
      return undefined
    case PP2_TYPE_SSL: {
      if (tlvs.ssl !== undefined) return 'duplicate-tlv'
      const ssl = readSsl(bytes, from, to)
      if (typeof ssl === 'string') return ssl
      tlvs.ssl = ssl
      return undefined
    }
    case PP2_TYPE_NETNS: {
      if (tlvs.netns !== undefined) return 'duplicate-tlv'
      const netns = text(bytes, from, to, ascii)
      if (netns === undefined) return 'bad-netns'
      tlvs.netns = netns
      return undefined
    }
    case PP2_TYPE_AWS: {
      if (size === 0) return 'bad-aws-tlv'
      if (bytes[from] !== PP2_SUBTYPE_AWS_VPCE_ID) return undefined
      if (tlvs.awsVpceId !== undefined) return 'duplicate-tlv'
      const id = text(bytes, from + 1, to, ascii)
      if (id === undefined) return 'bad-aws-tlv'
      tlvs.awsVpceId = id
      return undefined
    }
    case PP2_TYPE_AZURE:
      if (size === 0) return 'bad-azure-tlv'
      if (bytes[from] !== PP2_SUBTYPE_AZURE_PRIVATEENDPOINT_LINKID) return undefined
      if (tlvs.azureLinkId !== undefined) return 'duplicate-tlv'
      if (size !== AZURE_LINKID_LENGTH) return 'bad-azure-tlv'
      tlvs.azureLinkId = (bytes[from + 1] | (bytes[from + 2] << 8) | (bytes[from + 3] << 16) | (bytes[from + 4] << 24)) >>> 0
      return undefined
    default:
      return undefined // NOOP and unknown types: kept in `raw` only
  }
}

/**
 * Parse a version 2 header at the start of `bytes`. `'more'` until the whole header (16 + len
 * bytes) is in, `'no'` at the first wrong signature byte, version, command, family or transport,
 * or when `16 + len` exceeds `maxBytes`; then the address block and TLVs are checked.
 *
 * A PROXY command with a known family and transport must carry a full address block. LOCAL, or
 * an UNSPEC family or transport, reports no addresses; its TLVs are read when the block is long
 * enough to hold the family's addresses (none for UNSPEC). UNIX reports its paths in `paths`,
 * never as `source`/`destination`. Never throws.
 */
export function parseProxyV2 (bytes: Uint8Array, maxBytes: number = PROXY_V2_MAX_LENGTH): ProxyParseResult {
  const n = bytes.length
  for (let i = 0; i < PROXY_V2_SIGNATURE.length; i++) {
    if (i >= n) return MORE
    if (bytes[i] !== PROXY_V2_SIGNATURE[i]) return no('bad-signature')
  }
  if (n <= 12) return MORE
  if (bytes[12] >> 4 !== VERSION_2) return no('bad-version')
  const command = bytes[12] & 0x0f
  if (command !== COMMAND_LOCAL && command !== COMMAND_PROXY) return no('bad-command')
  if (n <= 13) return MORE
  const family = bytes[13] >> 4
  const transport = bytes[13] & 0x0f
  if (family > FAMILY_UNIX || transport > TRANSPORT_DGRAM) return no('bad-family')
  if (n < PROXY_V2_HEADER_LENGTH) return MORE
  const total = PROXY_V2_HEADER_LENGTH + u16(bytes, 14)
  if (total > maxBytes) return no('header-too-large')
  if (n < total) return MORE

  const addressLength = ADDRESS_LENGTH[family]
  const hasAddresses = command === COMMAND_PROXY && family !== FAMILY_UNSPEC && transport !== TRANSPORT_UNSPEC
  const blockFits = total - PROXY_V2_HEADER_LENGTH >= addressLength
  if (hasAddresses && !blockFits) return no('bad-address-length')

  const header: ProxyHeader = {
    version: 2,
    command: command === COMMAND_PROXY ? 'proxy' : 'local',
    family: FAMILY_NAMES[family],
    transport: TRANSPORT_NAMES[transport],
    tlvs: { raw: [] }
  }
  if (hasAddresses) readAddresses(bytes, family, header)
  if (blockFits) {
    const reason = readTlvs(bytes, PROXY_V2_HEADER_LENGTH + addressLength, total, header.tlvs)
    if (reason !== undefined) return no(reason)
  }
  return { verdict: 'match', header, length: total }
}

/** What {@link encodeProxyV2} takes on top of the version 1 options. */
export interface ProxyV2EncodeOptions extends ProxyEncodeOptions {
  /** `local` writes no addresses (a connection of the proxy's own). Default `proxy`. */
  command?: 'proxy' | 'local'
  /** Default `stream`. */
  transport?: 'stream' | 'dgram'
  tlvs?: readonly ProxyTlv[]
  /** Append a PP2_TYPE_CRC32C TLV holding the checksum of the whole header. */
  crc32c?: boolean
}

function checkPort (port: number): number {
  if (!Number.isInteger(port) || port < 0 || port > 0xffff) {
    throw new RangeError(`PROXY header port must be an integer 0–65535, got ${String(port)}`)
  }
  return port
}

function unixPathBytes (path: string): Buffer {
  const bytes = Buffer.alloc(UNIX_PATH_LENGTH)
  const text = path.startsWith('@') ? '\0' + path.slice(1) : path
  if (Buffer.byteLength(text) > UNIX_PATH_LENGTH) throw new RangeError(`UNIX socket path longer than ${UNIX_PATH_LENGTH} bytes: ${path}`)
  bytes.write(text, 'utf8')
  return bytes
}

/** fam byte and address block for the options. */
function encodeAddresses (options: ProxyV2EncodeOptions): { fam: number, block: Uint8Array } {
  const { family, source, destination } = options
  const transport = options.transport === 'dgram' ? TRANSPORT_DGRAM : TRANSPORT_STREAM
  if (options.command === 'local' || family === 'unknown' || source === undefined || destination === undefined) {
    return { fam: (FAMILY_UNSPEC << 4) | TRANSPORT_UNSPEC, block: new Uint8Array(0) }
  }
  if (family === 'unix') {
    return { fam: (FAMILY_UNIX << 4) | transport, block: Buffer.concat([unixPathBytes(source.address), unixPathBytes(destination.address)]) }
  }
  const want = family === 'tcp4' ? 4 : family === 'tcp6' ? 6 : undefined
  const pair = pairAddresses(source.address, destination.address, want)
  if (pair === undefined) {
    throw new TypeError(`cannot write ${source.address} and ${destination.address} as ${family ?? 'a PROXY v2 header'}`)
  }
  const size = pair.source.length
  const block = new Uint8Array(2 * size + 4)
  block.set(pair.source, 0)
  block.set(pair.destination, size)
  const ports = new DataView(block.buffer)
  ports.setUint16(2 * size, checkPort(source.port))
  ports.setUint16(2 * size + 2, checkPort(destination.port))
  return { fam: ((pair.family === 4 ? FAMILY_INET : FAMILY_INET6) << 4) | transport, block }
}

/**
 * Encode a version 2 header. Addresses pair up as in version 1 (`::ffff:a.b.c.d` on both ends
 * gives INET); without both addresses, or with family `unknown`, the header is PROXY over
 * UNSPEC; `command: 'local'` always writes UNSPEC with no addresses. TLVs follow in the given
 * order, then the CRC32C TLV when asked for.
 *
 * @throws {TypeError} when an address is not IPv4/IPv6 text or does not fit the forced family.
 * @throws {RangeError} for a bad port, TLV type or size, a too-long UNIX path, or a header
 *   over 65535 bytes of `len`.
 */
export function encodeProxyV2 (options: ProxyV2EncodeOptions): Buffer {
  const { fam, block } = encodeAddresses(options)
  const tlvs = options.tlvs ?? []
  let length = block.length
  for (const tlv of tlvs) {
    if (!Number.isInteger(tlv.type) || tlv.type < 0 || tlv.type > 0xff) throw new RangeError(`TLV type must be a byte, got ${String(tlv.type)}`)
    if (tlv.value.length > 0xffff) throw new RangeError('TLV value longer than 65535 bytes')
    length += TLV_HEADER_LENGTH + tlv.value.length
  }
  if (options.crc32c === true) length += TLV_HEADER_LENGTH + CRC32C_LENGTH
  if (length > 0xffff) throw new RangeError('PROXY v2 header longer than 65535 bytes')

  const out = Buffer.alloc(PROXY_V2_HEADER_LENGTH + length)
  out.set(PROXY_V2_SIGNATURE, 0)
  out[12] = (VERSION_2 << 4) | (options.command === 'local' ? COMMAND_LOCAL : COMMAND_PROXY)
  out[13] = fam
  out.writeUInt16BE(length, 14)
  out.set(block, PROXY_V2_HEADER_LENGTH)
  let p = PROXY_V2_HEADER_LENGTH + block.length
  for (const tlv of tlvs) {
    out[p] = tlv.type
    out.writeUInt16BE(tlv.value.length, p + 1)
    out.set(tlv.value, p + TLV_HEADER_LENGTH)
    p += TLV_HEADER_LENGTH + tlv.value.length
  }
  if (options.crc32c === true) {
    out[p] = PP2_TYPE_CRC32C
    out.writeUInt16BE(CRC32C_LENGTH, p + 1)
    out.writeUInt32BE(crc32c(out), p + TLV_HEADER_LENGTH)
  }
  return out
}
