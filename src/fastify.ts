/**
 * Fastify: `serverFactory(options)` swaps Fastify's server for the sniffing listener;
 * the default-exported plugin adds `fastify.tcp(name, route)` and `fastify.portmux`.
 */
import type { FastifyBaseLogger, FastifyInstance, FastifyPluginCallback, FastifyServerFactory, FastifyServerFactoryHandler } from 'fastify'
import fp from 'fastify-plugin'
import { kMuxServer, MuxServer } from './core/server.js'
import { NoFactoryError } from './errors.js'
import type { MuxOptions, TcpRoute } from './types.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Add a raw TCP route next to the HTTP routes. */
    tcp (name: string, route: TcpRoute): FastifyInstance
    /** The listener Fastify serves through. */
    portmux: MuxServer
  }
}

/** The options Fastify hands a server factory that it no longer applies itself. */
interface FastifyFactoryOptions {
  keepAliveTimeout?: number
  requestTimeout?: number
  connectionTimeout?: number
  maxRequestsPerSocket?: number
  http2SessionTimeout?: number
}

/**
 * A server factory for `Fastify({ serverFactory })`. Fastify's own `keepAliveTimeout`,
 * `requestTimeout`, `connectionTimeout`, `maxRequestsPerSocket` and `http2SessionTimeout`
 * are applied to the inner servers unless `options` sets them.
 */
export function serverFactory (options: MuxOptions = {}): FastifyServerFactory {
  const factory = (handler: FastifyServerFactoryHandler, fastifyOptions: FastifyFactoryOptions): MuxServer => {
    const inherited: MuxOptions = {}
    for (const key of ['keepAliveTimeout', 'requestTimeout', 'connectionTimeout', 'maxRequestsPerSocket', 'http2SessionTimeout'] as const) {
      const v = fastifyOptions?.[key]
      if (typeof v === 'number') inherited[key] = v
    }
    return new MuxServer(handler, { ...inherited, ...options })
  }
  // Fastify's types expect one of Node's HTTP server types; MuxServer is a net.Server
  // that serves all of them.
  return factory as unknown as FastifyServerFactory
}

function isMuxServer (server: unknown): server is MuxServer {
  return typeof server === 'object' && server !== null && (server as Record<symbol, unknown>)[kMuxServer] === true
}

/** pino answers `isLevelEnabled`; other loggers are judged by their level name. */
function debugEnabled (log: FastifyBaseLogger & { isLevelEnabled?: (level: string) => boolean }): boolean {
  if (typeof log.isLevelEnabled === 'function') return log.isLevelEnabled('debug')
  return log.level === 'debug' || log.level === 'trace'
}

const plugin: FastifyPluginCallback = (fastify: FastifyInstance, _opts, done) => {
  const server: unknown = fastify.server
  if (!isMuxServer(server)) {
    done(new NoFactoryError())
    return
  }
  server.logger = {
    warn: (obj, msg) => fastify.log.warn(obj, msg),
    debug: (obj, msg) => fastify.log.debug(obj, msg),
    debugEnabled: () => debugEnabled(fastify.log)
  }
  fastify.decorate('portmux', server)
  fastify.decorate('tcp', function tcp (this: FastifyInstance, name: string, route: TcpRoute) {
    server.route(name, route)
    return this
  })
  done()
}

export const portmux = fp(plugin, { name: 'portmux', fastify: '5.x' })
