/**
 * Without Fastify: the same listener for Express or any `(req, res)` handler.
 */
import type { RequestListener } from 'node:http'
import { MuxServer } from './core/server.js'
import type { MuxOptions } from './types.js'

/**
 * A `MuxServer` (a `net.Server`) serving `handler` over HTTPS, HTTP/2 and, as `options.http`
 * says, plaintext HTTP — with raw TCP routes added by `route(name, route)`.
 */
export function createServer (handler?: RequestListener, options?: MuxOptions): MuxServer {
  return new MuxServer(handler, options)
}
