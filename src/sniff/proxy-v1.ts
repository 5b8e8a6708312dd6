/**
 * PROXY protocol version 1: one line of US-ASCII, at most 107 bytes with its CRLF.
 *
 *     PROXY TCP4 <src-ipv4> <dst-ipv4> <src-port> <dst-port>\r\n
 *     PROXY TCP6 <src-ipv6> <dst-ipv6> <src-port> <dst-port>\r\n
 *     PROXY UNKNOWN[ <anything>]\r\n
 *
 * Parsing is strict, as the specification asks: single spaces, IPv4 numbers and ports without
 * leading zeros, ports 0–65535, both addresses of the announced family, CRLF and nothing else
 * as the line end. After `UNKNOWN` everything up to the CRLF is ignored. The line is checked as
 * it arrives, so a wrong byte is refused at once rather than when the CRLF shows up.
 */
import type { ProxyEncodeOptions, ProxyHeader, ProxyParseResult } from './proxy-header.js'
import { formatIpv4, formatIpv6, pairAddresses, parseIpv4, parseIpv6 } from './ip.js'

/** The longest version 1 line, CRLF included (`PROXY UNKNOWN` with two full IPv6 addresses). */
export const PROXY_V1_MAX_LENGTH = 107

const SP = 0x20
const CR = 0x0d
const LF = 0x0a
const DOT = 0x2e
const COLON = 0x3a

const PREFIX = asciiBytes('PROXY ')
const TCP = asciiBytes('TCP')
const UNKNOWN = asciiBytes('UNKNOWN')
const FAMILY_DIGIT_4 = 0x34
const FAMILY_DIGIT_6 = 0x36

const MAX_IPV4_TEXT = 15
const MAX_IPV6_TEXT = 45
const MAX_PORT_TEXT = 5

/** Cursor results below zero: the bytes ran out, the 107-byte limit was hit, a byte was wrong. */
const NEED = -1
const TOO_LONG = -2
const BAD = -3

const MORE: ProxyParseResult = Object.freeze({ verdict: 'more' })

function asciiBytes (text: string): Uint8Array {
  return Uint8Array.from(text, (c) => c.charCodeAt(0))
}

/** The byte at `i`, or NEED when it has not arrived, or TOO_LONG past the line limit. */
function byteAt (bytes: Uint8Array, i: number): number {
  if (i >= PROXY_V1_MAX_LENGTH) return TOO_LONG
  if (i >= bytes.length) return NEED
  return bytes[i]
}

/** Match `literal` at `i`: the index after it, or NEED / TOO_LONG / BAD. */
function expectLiteral (bytes: Uint8Array, i: number, literal: Uint8Array): number {
  for (let k = 0; k < literal.length; k++) {
    const b = byteAt(bytes, i + k)
    if (b < 0) return b
    if (b !== literal[k]) return BAD
  }
  return i + literal.length
}

function isDigit (b: number): boolean {
  return b >= 0x30 && b <= 0x39
}

function isIpv4Char (b: number): boolean {
  return isDigit(b) || b === DOT
}

function isIpv6Char (b: number): boolean {
  return isDigit(b) || ((b | 0x20) >= 0x61 && (b | 0x20) <= 0x66) || b === COLON || b === DOT
}

/**
 * Scan a non-empty token of `accept`ed bytes ending at `terminator`, at most `maxLength` long.
 * Returns the terminator's index, or NEED / TOO_LONG / BAD.
 */
function scanToken (bytes: Uint8Array, start: number, maxLength: number, accept: (b: number) => boolean, terminator: number): number {
  for (let i = start; ; i++) {
    const b = byteAt(bytes, i)
    if (b < 0) return b
    if (b === terminator) return i === start ? BAD : i
    if (!accept(b) || i - start >= maxLength) return BAD
  }
}

function latin1 (bytes: Uint8Array, start: number, end: number): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset + start, end - start).toString('latin1')
}

/** A port token `bytes[start, end)`: decimal, no leading zero, at most 65535; -1 when invalid. */
function parsePort (bytes: Uint8Array, start: number, end: number): number {
  if (end - start > 1 && bytes[start] === 0x30) return -1
  let value = 0
  for (let i = start; i < end; i++) value = value * 10 + (bytes[i] - 0x30)
  return value <= 0xffff ? value : -1
}

/** An address token in the family's canonical text, or `undefined` when it is not one. */
function parseAddress (bytes: Uint8Array, start: number, end: number, family: 4 | 6): string | undefined {
  const text = latin1(bytes, start, end)
  if (family === 4) return parseIpv4(text) >= 0 ? text : undefined
  const raw = new Uint8Array(16)
  return parseIpv6(text, raw) ? formatIpv6(raw) : undefined
}

function no (reason: string): ProxyParseResult {
  return { verdict: 'no', reason }
}

/** Turn a negative cursor into a result; `reason` names what a BAD byte broke. */
function stop (cursor: number, reason: string): ProxyParseResult {
  if (cursor === NEED) return MORE
  if (cursor === TOO_LONG) return no('line-too-long')
  return no(reason)
}

/** `UNKNOWN`: skip to the CRLF, refusing a lone CR or LF. */
function parseUnknown (bytes: Uint8Array, i: number): ProxyParseResult {
  const next = byteAt(bytes, i)
  if (next < 0) return stop(next, 'bad-protocol')
  if (next !== SP && next !== CR) return no('bad-protocol')
  for (; ; i++) {
    const b = byteAt(bytes, i)
    if (b < 0) return stop(b, 'bad-line-end')
    if (b === LF) return no('bad-line-end')
    if (b !== CR) continue
    const after = byteAt(bytes, i + 1)
    if (after < 0) return stop(after, 'bad-line-end')
    if (after !== LF) return no('bad-line-end')
    const header: ProxyHeader = { version: 1, command: 'proxy', family: 'unknown', transport: 'unspec', tlvs: { raw: [] } }
    return { verdict: 'match', header, length: i + 2 }
  }
}

/** `TCP4`/`TCP6` after the family digit's following space: addresses, ports, CRLF. */
function parseTcp (bytes: Uint8Array, i: number, family: 4 | 6): ProxyParseResult {
  const accept = family === 4 ? isIpv4Char : isIpv6Char
  const maxText = family === 4 ? MAX_IPV4_TEXT : MAX_IPV6_TEXT

  const sourceEnd = scanToken(bytes, i, maxText, accept, SP)
  if (sourceEnd < 0) return stop(sourceEnd, 'bad-address')
  const destinationEnd = scanToken(bytes, sourceEnd + 1, maxText, accept, SP)
  if (destinationEnd < 0) return stop(destinationEnd, 'bad-address')
  const sourcePortEnd = scanToken(bytes, destinationEnd + 1, MAX_PORT_TEXT, isDigit, SP)
  if (sourcePortEnd < 0) return stop(sourcePortEnd, 'bad-port')
  const destinationPortEnd = scanToken(bytes, sourcePortEnd + 1, MAX_PORT_TEXT, isDigit, CR)
  if (destinationPortEnd < 0) return stop(destinationPortEnd, 'bad-port')
  const lf = byteAt(bytes, destinationPortEnd + 1)
  if (lf < 0) return stop(lf, 'bad-line-end')
  if (lf !== LF) return no('bad-line-end')

  const source = parseAddress(bytes, i, sourceEnd, family)
  const destination = parseAddress(bytes, sourceEnd + 1, destinationEnd, family)
  if (source === undefined || destination === undefined) return no('bad-address')
  const sourcePort = parsePort(bytes, destinationEnd + 1, sourcePortEnd)
  const destinationPort = parsePort(bytes, sourcePortEnd + 1, destinationPortEnd)
  if (sourcePort < 0 || destinationPort < 0) return no('bad-port')

  const header: ProxyHeader = {
    version: 1,
    command: 'proxy',
    family: family === 4 ? 'tcp4' : 'tcp6',
    transport: 'stream',
    source: { address: source, port: sourcePort },
    destination: { address: destination, port: destinationPort },
    tlvs: { raw: [] }
  }
  return { verdict: 'match', header, length: destinationPortEnd + 2 }
}

/**
 * Parse a version 1 PROXY line at the start of `bytes`: `'more'` while it may still become one,
 * `'no'` with a reason at the first byte that rules it out, `'match'` with the header and the
 * line's length (CRLF included) once the CRLF is in. Never throws.
 */
export function parseProxyV1 (bytes: Uint8Array): ProxyParseResult {
  let i = expectLiteral(bytes, 0, PREFIX)
  if (i < 0) return stop(i, 'bad-signature')

  const first = byteAt(bytes, i)
  if (first < 0) return stop(first, 'bad-protocol')
  if (first === UNKNOWN[0]) {
    i = expectLiteral(bytes, i, UNKNOWN)
    return i < 0 ? stop(i, 'bad-protocol') : parseUnknown(bytes, i)
  }
  i = expectLiteral(bytes, i, TCP)
  if (i < 0) return stop(i, 'bad-protocol')
  const digit = byteAt(bytes, i)
  if (digit < 0) return stop(digit, 'bad-protocol')
  if (digit !== FAMILY_DIGIT_4 && digit !== FAMILY_DIGIT_6) return no('bad-protocol')
  const space = byteAt(bytes, i + 1)
  if (space < 0) return stop(space, 'bad-protocol')
  if (space !== SP) return no('bad-protocol')
  return parseTcp(bytes, i + 2, digit === FAMILY_DIGIT_4 ? 4 : 6)
}

function checkPort (port: number): number {
  if (!Number.isInteger(port) || port < 0 || port > 0xffff) {
    throw new RangeError(`PROXY header port must be an integer 0–65535, got ${String(port)}`)
  }
  return port
}

/**
 * Encode a version 1 line. Both ends IPv4 (or IPv4-mapped IPv6, as a dual-stack socket reports
 * them) give `TCP4`; otherwise `TCP6`, with IPv4 ends mapped and IPv6 written as hex groups.
 * `family: 'tcp4' | 'tcp6'` forces the family. Without both addresses, or with family `unknown`
 * or `unix` (which version 1 cannot express), the line is `PROXY UNKNOWN\r\n`.
 *
 * @throws {TypeError} when an address is not IPv4/IPv6 text or does not fit the forced family.
 * @throws {RangeError} when a port is not an integer 0–65535.
 */
export function encodeProxyV1 (options: ProxyEncodeOptions): Buffer {
  const { family, source, destination } = options
  if (family === 'unknown' || family === 'unix' || source === undefined || destination === undefined) {
    return Buffer.from('PROXY UNKNOWN\r\n', 'latin1')
  }
  const want = family === 'tcp4' ? 4 : family === 'tcp6' ? 6 : undefined
  const pair = pairAddresses(source.address, destination.address, want)
  if (pair === undefined) {
    throw new TypeError(`cannot write ${source.address} and ${destination.address} as ${family ?? 'a PROXY v1 line'}`)
  }
  const text = (bytes: Uint8Array): string => pair.family === 4 ? formatIpv4(bytes) : formatIpv6(bytes, 0, false)
  const line = `PROXY TCP${pair.family} ${text(pair.source)} ${text(pair.destination)} ${checkPort(source.port)} ${checkPort(destination.port)}\r\n`
  return Buffer.from(line, 'latin1')
}
