/**
 * Without Fastify: the same listener for Express or any `(req, res)` handler.
 */
import type { RequestListener } from 'node:http'
import { MuxServer } from './server.js'
import type { MuxOptions } from './types.js'

/**
 * Express and Connect apps (`app.handle` and `app.use`) replace the prototypes of `req` and
 * `res` with HTTP/1 ones, which breaks Node's HTTP/2 compatibility objects: such an app
 * would throw on the first h2 request.
 */
function isHttp1OnlyApp (handler: RequestListener | undefined): boolean {
  const h = handler as (RequestListener & { handle?: unknown, use?: unknown }) | undefined
  return typeof h?.handle === 'function' && typeof h.use === 'function'
}

/**
 * A `MuxServer` (a `net.Server`) serving `handler` over HTTPS, HTTP/2 and, as `options.http`
 * says, plaintext HTTP — with raw TCP routes added by `route(name, route)`. For Express and
 * Connect apps, `http2` defaults to `false` (they handle HTTP/1 only).
 */
export function createServer (handler?: RequestListener, options?: MuxOptions): MuxServer {
  if (isHttp1OnlyApp(handler) && options?.http2 === undefined) {
    return new MuxServer(handler, { ...options, http2: false })
  }
  return new MuxServer(handler, options)
}
