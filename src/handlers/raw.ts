/**
 * Raw TCP routes: the decided socket, its sniffed bytes already replayed, goes to the
 * route's handler. A handler that forgets an `'error'` listener must not crash the
 * process, so every routed socket keeps a counting one.
 */
import type { Socket } from 'node:net'
import { HandlerError, type PortmuxError } from '../errors.js'
import type { ConnectionInfo, RawHandler } from '../types.js'

function onRouteSocketError (): void {
  // Errors on routed sockets belong to the handler; this listener only keeps an
  // unhandled 'error' from becoming an uncaught exception. The socket is destroyed by Node.
}

export function deliverRaw (socket: Socket, handler: RawHandler, info: ConnectionInfo, report: (err: PortmuxError) => void): void {
  socket.on('error', onRouteSocketError)
  try {
    handler(socket, info)
  } catch (err) {
    report(new HandlerError(info.route, err))
    socket.destroy()
  }
}
