import type { Detector, Verdict } from './types.js'

const SP = 0x20
const LT = 0x3c
const GT = 0x3e
const DASH = 0x2d
const PLUS = 0x2b
const COLON = 0x3a
const DOT = 0x2e
const CHAR_0 = 0x30
const CHAR_1 = 0x31
const CHAR_9 = 0x39
const CHAR_T = 0x54
const CHAR_Z = 0x5a

/** RFC 5424 §6.2.1: PRIVAL is 0–191 (facility 0–23 times 8, plus severity 0–7). */
const MAX_PRI = 191
const MAX_PRI_DIGITS = 3
/** RFC 6587 octet counting: MSG-LEN digits. Seven cover 9,999,999 bytes, far above any receiver's limit. */
const MAX_LENGTH_DIGITS = 7
const MAX_FRACTION_DIGITS = 6

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']
  .map((m) => Uint8Array.from(m, (c) => c.charCodeAt(0)))

function isDigit (b: number): boolean {
  return b >= CHAR_0 && b <= CHAR_9
}

/**
 * A small cursor over the bytes so far: every `expect…` answers `'no'` at a byte that cannot
 * be there, `'more'` when the bytes run out first, or `undefined` when the field is whole
 * (and the cursor has moved past it).
 */
class Cursor {
  readonly bytes: Uint8Array
  at: number
  constructor (bytes: Uint8Array, at: number) {
    this.bytes = bytes
    this.at = at
  }

  /** One byte, equal to `b`. */
  byte (b: number): Verdict | undefined {
    if (this.at >= this.bytes.length) return 'more'
    if (this.bytes[this.at] !== b) return 'no'
    this.at++
    return undefined
  }

  /** Exactly `count` digits, read as a number in `[min, max]`. */
  number (count: number, min: number, max: number): Verdict | undefined {
    let value = 0
    for (let i = 0; i < count; i++) {
      if (this.at >= this.bytes.length) return 'more'
      const b = this.bytes[this.at++]
      if (!isDigit(b)) return 'no'
      value = value * 10 + b - CHAR_0
    }
    return value >= min && value <= max ? undefined : 'no'
  }

  /** `hh:mm:ss`, as RFC 5424 §6.2.3 and RFC 3164 §4.1.2 both write it. */
  time (): Verdict | undefined {
    return this.number(2, 0, 23) ?? this.byte(COLON) ?? this.number(2, 0, 59) ?? this.byte(COLON) ?? this.number(2, 0, 59)
  }
}

/** `<PRI>` at `at`: 1–3 digits without a leading zero (but `<0>`), 0–191. The index after `>`, or a verdict. */
function pri (bytes: Uint8Array, at: number): number | Verdict {
  if (at >= bytes.length) return 'more'
  if (bytes[at] !== LT) return 'no'
  let value = 0
  let digits = 0
  for (let i = at + 1; ; i++) {
    if (i >= bytes.length) return 'more'
    const b = bytes[i]
    if (b === GT) return digits > 0 ? i + 1 : 'no'
    if (!isDigit(b) || digits === MAX_PRI_DIGITS || (digits === 1 && value === 0)) return 'no'
    value = value * 10 + b - CHAR_0
    if (value > MAX_PRI) return 'no'
    digits++
  }
}

/** RFC 5424 §6.2.3 TIMESTAMP after `1 `: NILVALUE, or FULL-DATE `T` FULL-TIME; then SP. */
function timestamp5424 (c: Cursor): Verdict | undefined {
  if (c.at >= c.bytes.length) return 'more'
  if (c.bytes[c.at] === DASH) {
    c.at++
    return c.byte(SP)
  }
  const date = c.number(4, 0, 9999) ?? c.byte(DASH) ?? c.number(2, 1, 12) ?? c.byte(DASH) ?? c.number(2, 1, 31) ?? c.byte(CHAR_T) ?? c.time()
  if (date !== undefined) return date
  if (c.at >= c.bytes.length) return 'more'
  if (c.bytes[c.at] === DOT) {
    c.at++
    let digits = 0
    while (c.at < c.bytes.length && isDigit(c.bytes[c.at])) {
      if (++digits > MAX_FRACTION_DIGITS) return 'no'
      c.at++
    }
    if (c.at >= c.bytes.length) return 'more'
    if (digits === 0) return 'no'
  }
  const zone = c.bytes[c.at]
  if (zone === CHAR_Z) {
    c.at++
  } else if (zone === PLUS || zone === DASH) {
    c.at++
    const offset = c.number(2, 0, 23) ?? c.byte(COLON) ?? c.number(2, 0, 59)
    if (offset !== undefined) return offset
  } else {
    return 'no'
  }
  return c.byte(SP)
}

/** RFC 3164 §4.1.2 TIMESTAMP: `Mmm dd hh:mm:ss` (day space-padded, or zero-padded as some senders do), then SP. */
function timestamp3164 (c: Cursor): Verdict | undefined {
  const { bytes } = c
  const candidates = MONTHS.filter((m) => {
    for (let i = 0; i < m.length && c.at + i < bytes.length; i++) if (bytes[c.at + i] !== m[i]) return false
    return true
  })
  if (candidates.length === 0) return 'no'
  if (c.at + 3 > bytes.length) return 'more'
  c.at += 3
  const sp = c.byte(SP)
  if (sp !== undefined) return sp
  if (c.at >= bytes.length) return 'more'
  if (bytes[c.at] === SP) {
    c.at++
    const day = c.number(1, 1, 9)
    if (day !== undefined) return day
  } else {
    const day = c.number(2, 1, 31)
    if (day !== undefined) return day
  }
  return c.byte(SP) ?? c.time() ?? c.byte(SP)
}

/** A syslog message's start at `at`: PRI, then an RFC 5424 header's first fields or an RFC 3164 timestamp. */
function message (bytes: Uint8Array, at: number): { verdict: Verdict, end: number } {
  const after = pri(bytes, at)
  if (typeof after !== 'number') return { verdict: after, end: bytes.length }
  if (after >= bytes.length) return { verdict: 'more', end: after }
  const c = new Cursor(bytes, after)
  const verdict = bytes[after] === CHAR_1 ? (c.byte(CHAR_1) ?? c.byte(SP) ?? timestamp5424(c)) : timestamp3164(c)
  return { verdict: verdict ?? 'match', end: c.at }
}

/**
 * Syslog over TCP (RFC 6587): a client's first message, in either framing.
 *
 * - Octet counting (RFC 6587 §3.4.1, RFC 5425): `MSG-LEN SP SYSLOG-MSG`, MSG-LEN a decimal
 *   number without leading zero (here at most 7 digits); `logger --octet-count` sends it.
 * - Non-transparent framing (§3.4.2): the message itself, ended by LF; what `logger --tcp`,
 *   rsyslog and syslog-ng send by default.
 *
 * The message starts with `<PRI>`, PRI 0–191 in 1–3 digits with no leading zero, and then one
 * of the two formats in use:
 *
 * - RFC 5424: VERSION `1`, SP, TIMESTAMP (`-`, or `YYYY-MM-DDThh:mm:ss[.frac](Z|±hh:mm)`), SP;
 * - RFC 3164 (BSD): TIMESTAMP `Mmm dd hh:mm:ss` (day space- or zero-padded), SP.
 *
 * `'match'` at the SP after the timestamp; the rest (host, app, message, LF) is not waited
 * for. With octet counting, MSG-LEN must be at least what was read of the message. `'no'`
 * at the first byte that fits neither: the first byte is `<` or a digit 1–9, which no other
 * built-in protocol starts with, except tinc's `0 ` (a zero never starts MSG-LEN) and XML's
 * `<` (a digit never follows it in XMPP).
 *
 * Decisions: messages that skip the timestamp (a bare `<13>app: text`, which RFC 3164 lets a
 * relay repair) and RFC 5424 versions other than 1 are refused: without the timestamp a
 * PRI is too little to be sure of. Leap seconds (`:60`) are refused, as RFC 5424's grammar does.
 */
export const syslog = {
  name: 'syslog',
  detect (bytes: Uint8Array): Verdict {
    if (bytes.length === 0) return 'more'
    const first = bytes[0]
    if (first === LT) return message(bytes, 0).verdict
    if (first < CHAR_1 || first > CHAR_9) return 'no'
    let length = 0
    let i = 0
    for (; i < bytes.length && isDigit(bytes[i]); i++) {
      if (i === MAX_LENGTH_DIGITS) return 'no'
      length = length * 10 + bytes[i] - CHAR_0
    }
    if (i >= bytes.length) return 'more'
    if (bytes[i] !== SP) return 'no'
    const start = i + 1
    const { verdict, end } = message(bytes, start)
    // What was read of the message must fit in MSG-LEN: all of it while undecided.
    const read = (verdict === 'match' ? end : bytes.length) - start
    return read > length ? 'no' : verdict
  }
} satisfies Detector
