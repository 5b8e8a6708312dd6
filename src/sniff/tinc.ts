import type { Detector, Verdict } from './types.js'

const CHAR_0 = 0x30
const CHAR_9 = 0x39
const SPACE = 0x20
const DOT = 0x2e
const NEWLINE = 0x0a
const QUESTION = 0x3f
const ID_REQUEST = CHAR_0
const MAX_NAME = 255
const MAX_VERSION_DIGITS = 3

function isDigit (b: number): boolean {
  return b >= CHAR_0 && b <= CHAR_9
}

/** check_id(): [A-Za-z0-9_]. */
function isNameByte (b: number): boolean {
  return (b >= 0x61 && b <= 0x7a) || (b >= 0x41 && b <= 0x5a) || isDigit(b) || b === 0x5f
}

/** Base64 in either alphabet, with padding: [A-Za-z0-9+/=_-]. */
function isKeyByte (b: number): boolean {
  return isNameByte(b) || b === 0x2b || b === 0x2f || b === 0x3d || b === 0x2d
}

/** The parts of the line, in order. */
const enum Part { Request, Space, NameStart, Name, Major, Minor }

/**
 * tinc: `0 <name> <major>[.<minor>]\n`, or `0 ?<key> <major>[.<minor>]\n` for an invitation.
 *
 * tinc's meta protocol is line-based; the connecting side speaks first, with an ID request:
 *
 *   tinc 1.0:  `0 <name> 17\n`                  (request 0 = ID, name, protocol version)
 *   tinc 1.1:  `0 <name> 17.<minor>\n`          (major.minor, e.g. 17.7)
 *   invitation (tinc 1.1 `tinc join`): `0 ?<base64 key> 17.1\n`
 *
 * Node names are what tinc's check_id() allows: ASCII letters, digits and `_`, never empty.
 * The invitation key is base64 (either alphabet). tinc 1.1's control connections
 * (`0 ^<cookie> …`) go over a local socket, never through a multiplexed port: refused.
 * sslh matches `0 ` alone; this detector follows the whole line, says `'no'` at the first
 * byte out of place and `'match'` at the newline. Names are bounded at 255 bytes and each
 * version number at 3 digits, so a line that runs on is a `'no'`, never a long `'more'`.
 */
export const tinc = {
  name: 'tinc',
  detect (bytes: Uint8Array): Verdict {
    let part = Part.Request
    let count = 0
    let invitation = false
    for (let i = 0; i < bytes.length; i++) {
      const b = bytes[i]
      switch (part) {
        case Part.Request:
          if (b !== ID_REQUEST) return 'no'
          part = Part.Space
          break
        case Part.Space:
          if (b !== SPACE) return 'no'
          part = Part.NameStart
          break
        case Part.NameStart:
          if (b === QUESTION) invitation = true
          else if (isNameByte(b)) count = 1
          else return 'no'
          part = Part.Name
          break
        case Part.Name:
          if (b === SPACE) {
            if (count === 0) return 'no'
            part = Part.Major
            count = 0
          } else if (invitation ? isKeyByte(b) : isNameByte(b)) {
            if (++count > MAX_NAME) return 'no'
          } else {
            return 'no'
          }
          break
        case Part.Major:
        case Part.Minor:
          if (isDigit(b)) {
            if (++count > MAX_VERSION_DIGITS) return 'no'
          } else if (count === 0) {
            return 'no'
          } else if (b === NEWLINE) {
            return 'match'
          } else if (b === DOT && part === Part.Major) {
            part = Part.Minor
            count = 0
          } else {
            return 'no'
          }
          break
      }
    }
    return 'more'
  }
} satisfies Detector
