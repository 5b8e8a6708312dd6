import type { Detector, ProtocolName } from './types.js'
import { adb } from './adb.js'
import { dns } from './dns.js'
import { http } from './http.js'
import { openvpn } from './openvpn.js'
import { postgres } from './postgres.js'
import { rdp } from './rdp.js'
import { socks4 } from './socks4.js'
import { socks5 } from './socks5.js'
import { ssh } from './ssh.js'
import { syslog } from './syslog.js'
import { tinc } from './tinc.js'
import { tls } from './tls.js'
import { winbox } from './winbox.js'
import { xmpp } from './xmpp.js'

export type { Detector, ProtocolName, Verdict } from './types.js'

/** Every built-in detector, by the name the public `Match` type uses for it. */
export const detectors: Readonly<Record<ProtocolName, Detector>> = Object.freeze({
  ssh,
  socks4,
  socks5,
  openvpn,
  xmpp,
  tinc,
  postgres,
  rdp,
  dns,
  syslog,
  adb,
  winbox,
  http,
  tls
})
