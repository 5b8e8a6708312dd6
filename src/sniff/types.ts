/**
 * The shape every detector shares. Detectors are pure: bytes in, a verdict out.
 * They never throw, never keep state between calls and never do I/O.
 *
 * - `'match'`: these bytes are certainly this protocol.
 * - `'no'`:    these bytes can never become this protocol, however many follow.
 *              A `'no'` is final: the pipeline does not ask again.
 * - `'more'`:  not decided yet; ask again when more bytes have arrived.
 */
export type Verdict = 'match' | 'no' | 'more'

/** The protocols with a built-in detector, named as in the public `Match` type. */
export type ProtocolName =
  | 'ssh'
  | 'socks4'
  | 'socks5'
  | 'openvpn'
  | 'xmpp'
  | 'tinc'
  | 'postgres'
  | 'rdp'
  | 'dns'
  | 'syslog'
  | 'adb'
  | 'winbox'
  | 'http'
  | 'tls'

/** A detector for one protocol: `detect` is called with every byte received so far. */
export interface Detector {
  readonly name: ProtocolName
  detect (bytes: Uint8Array): Verdict
}
