import type { Verdict } from './types.js'

/** The client connection preface of HTTP/2 over cleartext with prior knowledge (RFC 9113 §3.4). */
export const H2C_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1')

/**
 * `'match'` once all 24 preface bytes are there, `'more'` while the bytes so far are a
 * prefix of it, `'no'` at the first byte that differs.
 */
export function detectH2cPreface (bytes: Uint8Array): Verdict {
  const n = Math.min(bytes.length, H2C_PREFACE.length)
  for (let i = 0; i < n; i++) {
    if (bytes[i] !== H2C_PREFACE[i]) return 'no'
  }
  return n === H2C_PREFACE.length ? 'match' : 'more'
}
