/**
 * Handler routes: the decided socket, its sniffed bytes replayed into it, goes to the
 * route's handler. A handler that forgets an `'error'` listener must not crash the
 * process, so every routed socket keeps a listener that swallows the error (Node destroys
 * the socket). A route's `idleTimeout` is the socket's inactivity timeout.
 */
import type { Socket } from 'node:net'
import { HandlerError, InvalidRouteError, type PortmuxError } from '../errors.js'
import type { ConnectionInfo, RawHandler } from '../types.js'
import { replay, type RouteKind } from './route.js'

function onRouteSocketError (): void {
  // Errors on routed sockets belong to the handler; this listener only keeps an
  // unhandled 'error' from becoming an uncaught exception. The socket is destroyed by Node.
}

function destroyOnTimeout (this: Socket): void {
  this.destroy()
}

function deliverRaw (socket: Socket, handler: RawHandler, info: ConnectionInfo, report: (err: PortmuxError) => void): void {
  socket.on('error', onRouteSocketError)
  try {
    handler(socket, info)
  } catch (err) {
    report(new HandlerError(info.route, err))
    socket.destroy()
  }
}

export const handlerKind: RouteKind = {
  field: 'handler',
  compile (name, route, env) {
    const handler = route.handler
    if (typeof handler !== 'function') throw new InvalidRouteError(name, 'handler must be a function')
    const idle = route.idleTimeout
    return (socket, info, head) => {
      replay(socket, head)
      if (idle !== undefined) {
        socket.setTimeout(idle)
        socket.once('timeout', destroyOnTimeout)
      }
      deliverRaw(socket, handler, info, env.report)
    }
  }
}
