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

/** One end of the proxied connection. For `unix` the address is the socket path and the port 0. */
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
 * A parsed PROXY header.
 *
 * `source` and `destination` are set exactly when the header carries usable addresses: a
 * `proxy` command with a known family and transport. Otherwise (`local`, v1 `UNKNOWN`, v2
 * `UNSPEC`) the receiver uses the real connection's addresses, as the specification says.
 */
export interface ProxyHeader {
  version: 1 | 2
  command: 'proxy' | 'local'
  family: ProxyFamily
  transport: ProxyTransport
  source?: ProxyAddress
  destination?: ProxyAddress
  /** Version 2 TLVs in wire order; always empty for version 1. */
  tlvs: ProxyTlv[]
}

/** `length` is the size of the header on the wire: the application's bytes start there. */
export type ProxyParseResult =
  | { verdict: 'more' }
  | { verdict: 'no', reason: string }
  | { verdict: 'match', header: ProxyHeader, length: number }

/** What the encoders take. `family` is inferred from the addresses when left out. */
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
