/**
 * Fastify: `serverFactory(options)` swaps Fastify's server for the sniffing listener;
 * the default-exported plugin adds `fastify.tcp(name, route)` and `fastify.portmux`.
 */
import type { RequestListener, Server as HttpServer } from 'node:http'
import type { Server as HttpsServer } from 'node:https'
import type { Http2SecureServer, Http2Server } from 'node:http2'
import type { FastifyBaseLogger, FastifyInstance, FastifyPluginCallback, FastifyServerFactoryHandler } from 'fastify'
import fp from 'fastify-plugin'
import { kMuxServer, MuxServer } from './server.js'
import { NoFactoryError } from './errors.js'
import type { MuxOptions, TcpRoute } from './types.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Add a raw TCP route next to the HTTP routes. */
    tcp (name: string, route: TcpRoute): this
    /** The listener Fastify serves through. */
    portmux: MuxServer
  }
}

/**
 * What `serverFactory()` returns: a server factory that every Fastify constructor overload
 * takes — plain (`Fastify({ serverFactory })`), with Fastify's `https` option, with
 * `http2: true`, or both — so `fastify.server` gets the type Fastify gives it there. The
 * server made is a `MuxServer` (`fastify.portmux`), which serves all of them.
 *
 * The order matters: TypeScript infers Fastify's server type from the last signature and
 * falls back to each overload's own when that does not fit.
 */
export interface MuxServerFactory {
  (handler: FastifyServerFactoryHandler<HttpsServer>, opts: Record<string, unknown>): HttpsServer
  (handler: FastifyServerFactoryHandler<Http2SecureServer>, opts: Record<string, unknown>): Http2SecureServer
  (handler: FastifyServerFactoryHandler<HttpServer>, opts: Record<string, unknown>): HttpServer
  (handler: FastifyServerFactoryHandler<Http2Server>, opts: Record<string, unknown>): Http2Server
}

/** Fastify's own options that it leaves to a server factory. */
const INHERITED = ['keepAliveTimeout', 'requestTimeout', 'connectionTimeout', 'maxRequestsPerSocket', 'http2SessionTimeout'] as const

/** Whether the port will speak TLS: a certificate given, a development one, or one obtained automatically. */
function speaksTls (options: MuxOptions): boolean {
  if (options.tls !== undefined && options.tls !== null) return true
  return 'acme' in options && options.acme !== undefined && options.acme !== null
}

/**
 * A server factory for `Fastify({ serverFactory })`. Fastify's own `keepAliveTimeout`,
 * `requestTimeout`, `connectionTimeout`, `maxRequestsPerSocket` and `http2SessionTimeout`
 * are applied to the inner servers unless `options` sets them. When the port speaks TLS,
 * Fastify's startup log and `fastify.listeningOrigin` say `https://`.
 */
export function serverFactory (options: MuxOptions = {}): MuxServerFactory {
  const secure = speaksTls(options)
  const factory = (handler: RequestListener, fastifyOptions: Record<string, unknown>): MuxServer => {
    const inherited: MuxOptions = {}
    for (const key of INHERITED) {
      const v = fastifyOptions?.[key]
      if (typeof v === 'number') inherited[key] = v
    }
    const server = new MuxServer(handler, { ...inherited, ...options })
    // Fastify hands the factory the options object it keeps, and reads `https` from it
    // only to write the scheme of its startup log and of `listeningOrigin`.
    if (secure && typeof fastifyOptions === 'object' && fastifyOptions !== null &&
      (fastifyOptions.https === undefined || fastifyOptions.https === null)) {
      fastifyOptions.https = true
    }
    return server
  }
  // Fastify's types expect one of Node's HTTP server types; MuxServer is a net.Server
  // that serves all of them.
  return factory as unknown as MuxServerFactory
}

function isMuxServer (server: unknown): server is MuxServer {
  return typeof server === 'object' && server !== null && (server as Record<symbol, unknown>)[kMuxServer] === true
}

/** pino answers `isLevelEnabled`; other loggers are judged by their level name. */
function debugEnabled (log: FastifyBaseLogger & { isLevelEnabled?: (level: string) => boolean }): boolean {
  if (typeof log.isLevelEnabled === 'function') return log.isLevelEnabled('debug')
  return log.level === 'debug' || log.level === 'trace'
}

/**
 * Plaintext HTTP that the mux redirects or rejects itself never reaches Fastify's routes,
 * hooks or request log: its decision's debug line says so.
 */
function answeredHere (obj: object): string | undefined {
  const info = (obj as { portmux?: { route?: unknown } }).portmux
  if (info?.route === 'redirect') return 'portmux decision: redirect to https (answered by portmux, outside Fastify\'s routes and hooks)'
  if (info?.route === 'reject') return 'portmux decision: reject plaintext HTTP (answered by portmux, outside Fastify\'s routes and hooks)'
  return undefined
}

const plugin: FastifyPluginCallback = (fastify: FastifyInstance, _opts, done) => {
  const server: unknown = fastify.server
  if (!isMuxServer(server)) {
    done(new NoFactoryError())
    return
  }
  server.logger = {
    warn: (obj, msg) => fastify.log.warn(obj, msg),
    debug: (obj, msg) => fastify.log.debug(obj, answeredHere(obj) ?? msg),
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
