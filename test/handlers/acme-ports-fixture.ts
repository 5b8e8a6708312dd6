/**
 * A portmux app as a service would run it: HTTPS (development certificate) with the
 * plaintext redirect and an ECHO route on one port. It listens on the socket systemd
 * passed as fd 3 when LISTEN_FDS is set (socket activation), else on PORT. Answers with
 * its uid; prints `listening` when ready.
 */
import { createServer } from '../../src/node.js'

const server = createServer((_req, res) => { res.end(`uid ${String(process.getuid?.())}`) }, {
  tls: 'dev',
  routes: { echo: { match: { prefix: 'ECHO' }, handler: (socket) => socket.pipe(socket) } }
})
process.on('warning', () => {})
if (process.env.LISTEN_FDS !== undefined && Number(process.env.LISTEN_PID) === process.pid) {
  server.listen({ fd: 3 })
} else {
  server.listen(Number(process.env.PORT), '127.0.0.1')
}
server.on('listening', () => { console.log('listening') })
process.on('SIGTERM', () => { server.close(() => process.exit(0)) })
