/**
 * The route kinds, and the one function that turns a raw route into where its decided
 * connections go. TLS termination is a layer over any kind: it decrypts first.
 *
 * Adding a kind: its route type in src/types.ts (one more member of `TcpRoute`, with the
 * field that picks it), its module exporting a `RouteKind` (see `route.ts`), and one line in
 * `KINDS` below.
 */
import { checkRouteInteger, InvalidRouteError } from '../errors.js'
import type { TcpRoute } from '../types.js'
import { handlerKind } from './raw.js'
import { proxyKind } from './proxy.js'
import type { Deliver, RouteEnv, RouteKind } from './route.js'
import { terminating } from './tls-route.js'

const KINDS: readonly RouteKind[] = [handlerKind, proxyKind]

/** How a route's decided connections are delivered; `handshake`: a TLS handshake comes first. */
export interface RouteTarget {
  readonly deliver: Deliver
  readonly handshake: boolean
}

/** The checks every kind shares, then the kind's own: where a route's connections go. */
export function routeTarget (name: string, route: TcpRoute, env: RouteEnv): RouteTarget {
  const present = KINDS.filter((k) => (route as unknown as Record<string, unknown>)[k.field] !== undefined)
  if (present.length !== 1) throw new InvalidRouteError(name, `give exactly one of ${KINDS.map((k) => k.field).join(' or ')}`)
  checkRouteInteger(name, 'idleTimeout', route.idleTimeout)
  const deliver = present[0].compile(name, route, env)
  if (route.terminateTls !== undefined && typeof route.terminateTls !== 'boolean') throw new InvalidRouteError(name, 'terminateTls must be a boolean')
  if (route.terminateTls !== true) return { deliver, handshake: false }
  return { deliver: terminating(name, route, env, deliver), handshake: true }
}
