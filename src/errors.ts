/**
 * One error family. Every error portmux raises or emits is a `PortmuxError` with a
 * stable `code`; the README lists them all, and a test checks that the list and
 * this file agree.
 */

export type PortmuxErrorCode =
  | 'PORTMUX_ERR_INVALID_OPTION'
  | 'PORTMUX_ERR_INVALID_ROUTE'
  | 'PORTMUX_ERR_DUPLICATE_ROUTE'
  | 'PORTMUX_ERR_NO_FACTORY'
  | 'PORTMUX_ERR_DEV_CERTIFICATE'
  | 'PORTMUX_ERR_MATCHER'
  | 'PORTMUX_ERR_HANDLER'
  | 'PORTMUX_ERR_WORKER_START'
  | 'PORTMUX_ERR_CLUSTER_STOPPED'
  | 'PORTMUX_ERR_ACME'

export class PortmuxError extends Error {
  readonly code: PortmuxErrorCode

  constructor (code: PortmuxErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'PortmuxError'
    this.code = code
  }
}

/** An option given to `createServer`, `serverFactory` or the plugin is invalid. */
export class InvalidOptionError extends PortmuxError {
  constructor (message: string) {
    super('PORTMUX_ERR_INVALID_OPTION', message)
    this.name = 'InvalidOptionError'
  }
}

/** A route given to `route()` / `fastify.tcp()` is invalid. */
export class InvalidRouteError extends PortmuxError {
  constructor (route: string, message: string) {
    super('PORTMUX_ERR_INVALID_ROUTE', `route "${route}": ${message}`)
    this.name = 'InvalidRouteError'
  }
}

/** An optional integer field of a route must be from 1 to `max`: else an `InvalidRouteError`. */
export function checkRouteInteger (route: string, field: string, value: unknown, max = 2 ** 31 - 1): void {
  if (value === undefined) return
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
    throw new InvalidRouteError(route, `${field} must be an integer from 1 to ${max}, got ${String(value)}`)
  }
}

/** Two routes with the same name. */
export class DuplicateRouteError extends PortmuxError {
  constructor (route: string) {
    super('PORTMUX_ERR_DUPLICATE_ROUTE', `route "${route}" already exists`)
    this.name = 'DuplicateRouteError'
  }
}

/** The plugin was registered on a Fastify instance whose server is not portmux's. */
export class NoFactoryError extends PortmuxError {
  constructor () {
    super('PORTMUX_ERR_NO_FACTORY',
      'the portmux plugin needs Fastify to be created with portmux\'s server: ' +
      'Fastify({ serverFactory: serverFactory(options) })')
    this.name = 'NoFactoryError'
  }
}

/** The development certificate could not be made. */
export class DevCertificateError extends PortmuxError {
  constructor (cause: unknown) {
    super('PORTMUX_ERR_DEV_CERTIFICATE', 'could not create the development certificate', { cause })
    this.name = 'DevCertificateError'
  }
}

/** A user-supplied matcher function threw; the route is treated as not matching. */
export class MatcherError extends PortmuxError {
  constructor (route: string, cause: unknown) {
    super('PORTMUX_ERR_MATCHER', `the matcher of route "${route}" threw; treated as "no"`, { cause })
    this.name = 'MatcherError'
  }
}

/** A raw route's handler threw; the connection is destroyed. */
export class HandlerError extends PortmuxError {
  constructor (route: string, cause: unknown) {
    super('PORTMUX_ERR_HANDLER', `the handler of route "${route}" threw; connection destroyed`, { cause })
    this.name = 'HandlerError'
  }
}

/** Obtaining or renewing a certificate failed; the message carries the CA's problem detail. Retried with back-off. */
export class AcmeError extends PortmuxError {
  constructor (message: string, cause?: unknown) {
    super('PORTMUX_ERR_ACME', message, { cause })
    this.name = 'AcmeError'
  }
}
