import type { Detector, Verdict } from './types.js'

/** `CNXN` as the little-endian 32-bit command (0x4e584e43) writes it. */
const CNXN = Uint8Array.of(0x43, 0x4e, 0x58, 0x4e)
const HEADER_BYTES = 24
const VERSION_AT = 4
const MAXDATA_AT = 8
const LENGTH_AT = 12
const CHECK_AT = 16
const MAGIC_AT = 20

/** A_VERSION_MIN and A_VERSION (checksums optional from this one on). */
const VERSION_MIN = 0x01000000
const VERSION_SKIP_CHECKSUM = 0x01000001
/** maxdata: 4096 (A_VERSION_MIN's MAX_PAYLOAD_V1) up to 1 MiB (today's MAX_PAYLOAD). */
const MAXDATA_MIN = 4096
const MAXDATA_MAX = 1024 * 1024
/**
 * The largest CNXN payload: a host sends its identity before it knows the device's maxdata,
 * so it keeps to version 1's 4096 bytes.
 */
const MAX_CNXN_PAYLOAD = 4096
/** The host's identity, `host:<serial>:<banner>`: what a host sends a device. */
const HOST_PREFIX = Uint8Array.of(0x68, 0x6f, 0x73, 0x74, 0x3a)

function u32le (bytes: Uint8Array, at: number): number {
  return (bytes[at] | (bytes[at + 1] << 8) | (bytes[at + 2] << 16) | (bytes[at + 3] << 24)) >>> 0
}

/** The byte sum adb uses as `data_check`. */
function byteSum (bytes: Uint8Array, from: number, to: number): number {
  let sum = 0
  for (let i = from; i < to; i++) sum = (sum + bytes[i]) >>> 0
  return sum
}

/**
 * Android Debug Bridge, host to device: the CNXN message an adb server sends when it connects
 * to a device's adbd over TCP (`adb connect host:port`, wireless debugging, emulators).
 *
 * Every adb message is a 24-byte header of six little-endian 32-bit words, then its payload:
 *
 *     command      'CNXN' (0x4e584e43)
 *     arg0         protocol version: 0x01000000, or 0x01000001 (checksums optional)
 *     arg1         maxdata: the largest payload the host accepts (4096 … 1 MiB)
 *     data_length  payload length: 5 (`host:`) … 4096 (what fits any device)
 *     data_check   byte sum of the payload (0 allowed from version 0x01000001)
 *     magic        command ^ 0xffffffff
 *
 * and the payload is the host's identity, `host::features=…` (`host:<serial>:<banner>`).
 *
 * `'no'` at the first byte that differs from `CNXN`, at an impossible version, maxdata,
 * length or magic; `'match'` once the whole payload is in, starts with `host:` and agrees
 * with the checksum. The header and payload come in one write (143 bytes from adb 29).
 *
 * Decisions: only the device protocol's CNXN is recognised. The adb server protocol (what
 * the `adb` command sends its own server on port 5037, `000chost:version`) is another
 * service for another program, and is not matched here; nor is a device's CNXN (`device:…`),
 * which only an adb server ever receives.
 */
export const adb = {
  name: 'adb',
  detect (bytes: Uint8Array): Verdict {
    const n = bytes.length
    for (let i = 0; i < CNXN.length; i++) {
      if (i >= n) return 'more'
      if (bytes[i] !== CNXN[i]) return 'no'
    }
    // Fixed words, each judged as soon as it is complete.
    if (n >= VERSION_AT + 4) {
      const version = u32le(bytes, VERSION_AT)
      if (version !== VERSION_MIN && version !== VERSION_SKIP_CHECKSUM) return 'no'
    }
    if (n >= MAXDATA_AT + 4) {
      const maxdata = u32le(bytes, MAXDATA_AT)
      if (maxdata < MAXDATA_MIN || maxdata > MAXDATA_MAX) return 'no'
    }
    if (n >= LENGTH_AT + 4) {
      const length = u32le(bytes, LENGTH_AT)
      if (length < HOST_PREFIX.length || length > MAX_CNXN_PAYLOAD) return 'no'
    }
    for (let i = MAGIC_AT; i < Math.min(n, HEADER_BYTES); i++) {
      if (bytes[i] !== (bytes[i - MAGIC_AT] ^ 0xff)) return 'no'
    }
    if (n < HEADER_BYTES) return 'more'
    for (let i = 0; i < HOST_PREFIX.length; i++) {
      if (HEADER_BYTES + i >= n) return 'more'
      if (bytes[HEADER_BYTES + i] !== HOST_PREFIX[i]) return 'no'
    }
    const end = HEADER_BYTES + u32le(bytes, LENGTH_AT)
    if (n < end) return 'more'
    const check = u32le(bytes, CHECK_AT)
    if (check === byteSum(bytes, HEADER_BYTES, end)) return 'match'
    return check === 0 && u32le(bytes, VERSION_AT) === VERSION_SKIP_CHECKSUM ? 'match' : 'no'
  }
} satisfies Detector
