/**
 * HAProxy PROXY protocol (haproxy `doc/proxy-protocol.txt`): the header a trusted proxy puts in
 * front of a connection to tell the receiver who the real client was. Version 1 is one text
 * line (`proxy-v1.ts`), version 2 a binary block (`proxy-v2.ts`); both parse to the
 * {@link ProxyHeader} defined here, and {@link parseProxyHeader} picks the version from the
 * first byte.
 *
 * `proxy-v1.ts` and `proxy-v2.ts` import only types from here, so there is no import cycle at run
 * time.
 *
 * Reading a PROXY header is only safe from trusted peers: the caller checks the peer address
 * before asking, as the specification requires.
 */
import { parseProxyV1 } from './proxy-v1.js'
import { parseProxyV2 } from './proxy-v2.js'

/** One end of the proxied connection: an IP address (as Node writes it) and a port. */
export interface ProxyAddress {
  address: string
  port: number
}

/**
 * The address family, named as in version 1 (`TCP4`, `TCP6`, `UNKNOWN`) plus `unix` from
 * version 2. Whether the transport was a stream or datagrams is in `transport`.
 */
export type ProxyFamily = 'tcp4' | 'tcp6' | 'unix' | 'unknown'

/** Version 2's transport nibble; version 1 is always `stream` (or `unspec` for `UNKNOWN`). */
export type ProxyTransport = 'stream' | 'dgram' | 'unspec'

/** A version 2 Type-Length-Value entry, its value copied out of the input. */
export interface ProxyTlv {
  type: number
  value: Uint8Array
}

/**
 * PP2_TYPE_SSL (0x20): how the client reached the proxy over TLS. `client` holds the bit
 * field (PP2_CLIENT_SSL 0x01, PP2_CLIENT_CERT_CONN 0x02, PP2_CLIENT_CERT_SESS 0x04), spelled
 * out in the three booleans; `verify` is 0 exactly when the client presented a certificate
 * and it was verified. The texts come from the sub-TLVs, when present.
 */
export interface ProxySslInfo {
  client: number
  /** PP2_CLIENT_SSL: the client connected over SSL/TLS. */
  ssl: boolean
  /** PP2_CLIENT_CERT_CONN: the client sent a certificate on this connection. */
  certConnection: boolean
  /** PP2_CLIENT_CERT_SESS: the client sent a certificate at least once in this TLS session. */
  certSession: boolean
  verify: number
  /** PP2_SUBTYPE_SSL_VERSION (0x21), e.g. `TLSv1.3`. */
  version?: string
  /** PP2_SUBTYPE_SSL_CN (0x22): the client certificate's Common Name. */
  cn?: string
  /** PP2_SUBTYPE_SSL_CIPHER (0x23), e.g. `TLS_AES_256_GCM_SHA384`. */
  cipher?: string
  /** PP2_SUBTYPE_SSL_SIG_ALG (0x24): the certificate's signature algorithm, e.g. `SHA256`. */
  sigAlg?: string
  /** PP2_SUBTYPE_SSL_KEY_ALG (0x25): its key algorithm, e.g. `RSA2048` or `EC256`. */
  keyAlg?: string
  /** Every sub-TLV in wire order, known ones included. */
  raw: ProxyTlv[]
}

/**
 * The TLVs of a version 2 header: the registered and the common custom types decoded, and
 * all of them, decoded or not, in `raw` in wire order. A CRC32C TLV is only ever reported
 * after its checksum was verified. Version 1 headers carry none (`raw` is empty).
 */
export interface ProxyTlvs {
  /** PP2_TYPE_ALPN (0x01): the protocol the client negotiated with the proxy, e.g. `h2`. */
  alpn?: string
  /** PP2_TYPE_AUTHORITY (0x02): the host name the client asked for (TLS SNI), UTF-8. */
  authority?: string
  /** PP2_TYPE_CRC32C (0x03): the checksum, verified. */
  crc32c?: number
  /** PP2_TYPE_UNIQUE_ID (0x05): the proxy's opaque connection id, at most 128 bytes. */
  uniqueId?: Uint8Array
  /** PP2_TYPE_SSL (0x20). */
  ssl?: ProxySslInfo
  /** PP2_TYPE_NETNS (0x30): the network namespace the proxy accepted the connection in. */
  netns?: string
  /** AWS (0xEA, subtype 0x01, PP2_SUBTYPE_AWS_VPCE_ID): the VPC endpoint id, e.g. `vpce-08d2bf15fac5001c9`. */
  awsVpceId?: string
  /** Azure (0xEE, subtype 0x01, PP2_SUBTYPE_AZURE_PRIVATEENDPOINT_LINKID): the private endpoint's LINKID. */
  azureLinkId?: number
  /** Every TLV in wire order, NOOP and unknown ones included. */
  raw: ProxyTlv[]
}

/**
 * A parsed PROXY header.
 *
 * `source` and `destination` are set exactly when the header carries usable IP addresses: a
 * `proxy` command over TCP4/TCP6 (v1) or INET/INET6 with a known transport (v2). Otherwise
 * (`local`, v1 `UNKNOWN`, v2 `UNSPEC`, v2 `UNIX`) the receiver uses the real connection's
 * addresses, as the specification allows. For `unix`, the two socket paths are in `paths`,
 * for information only.
 */
export interface ProxyHeader {
  version: 1 | 2
  command: 'proxy' | 'local'
  family: ProxyFamily
  transport: ProxyTransport
  source?: ProxyAddress
  destination?: ProxyAddress
  /** A v2 `proxy` header over UNIX: the socket paths (abstract names start with `@`). */
  paths?: { source: string, destination: string }
  /** Version 2 TLVs; empty (`raw: []`) for version 1. */
  tlvs: ProxyTlvs
}

/** `length` is the size of the header on the wire: the application's bytes start there. */
export type ProxyParseResult =
  | { verdict: 'more' }
  | { verdict: 'no', reason: string }
  | { verdict: 'match', header: ProxyHeader, length: number }

/**
 * What the encoders take. `family` is inferred from the addresses when left out; with
 * `unix` (version 2 only) each `address` is a socket path and the ports are not written.
 */
export interface ProxyEncodeOptions {
  family?: ProxyFamily
  source?: ProxyAddress
  destination?: ProxyAddress
}

const MORE: ProxyParseResult = Object.freeze({ verdict: 'more' })

const V1_FIRST_BYTE = 0x50 // 'P' of "PROXY"
const V2_FIRST_BYTE = 0x0d // '\r' of the v2 signature

/**
 * Parse a PROXY header of either version at the start of `bytes`: `'P'` starts version 1,
 * `'\r'` version 2, anything else is `'no'`. `maxBytes` bounds a version 2 header (version 1
 * is bounded by its own 107 bytes).
 */
export function parseProxyHeader (bytes: Uint8Array, maxBytes?: number): ProxyParseResult {
  if (bytes.length === 0) return MORE
  if (bytes[0] === V1_FIRST_BYTE) return parseProxyV1(bytes)
  if (bytes[0] === V2_FIRST_BYTE) return parseProxyV2(bytes, maxBytes)
  return { verdict: 'no', reason: 'not-proxy-protocol' }
}
