/**
 * The demo app on every core: one listening socket held by the primary, the app in each
 * worker, and rolling restarts that lose no connection.
 *
 *   npm run build && node build/examples/cluster.js      # PORT=8443, WORKERS=cores
 *   kill -HUP <primary pid>                              # replace the workers one by one
 *   kill -TERM <primary pid>                             # drain everything and exit 0
 */
import Fastify from 'fastify'
import portmux, { serverFactory } from 'portmux'
import { runCluster } from 'portmux/cluster'

const port = Number(process.env.PORT ?? 8443)
const host = process.env.HOST ?? 'localhost'
const workers = process.env.WORKERS === undefined ? undefined : Number(process.env.WORKERS)

const cluster = await runCluster({
  workers,
  // One line per event, from the primary.
  onEvent: (event) => {
    if (event.type === 'ready') console.log(`worker ${event.pid} ready`)
    else if (event.type === 'exit') console.log(`worker ${event.pid} exited${event.expected ? '' : ` unexpectedly (${event.signal ?? `code ${String(event.code)}`})`}`)
    else if (event.type === 'restart') console.log(`rolling restart done in ${event.report.durationMs} ms: workers ${event.report.replaced.map((r) => r.newPid).join(', ')}`)
    else console.error(`cluster: ${event.error.message}`)
  },
  // Runs in each worker: build the app and listen. The workers all listen on the same
  // address; the primary holds the socket and hands them connections.
  start: async () => {
    const app = Fastify({
      logger: { level: process.env.LOG_LEVEL ?? 'info' },
      // While a worker drains, requests on connections it has already accepted are served
      // (with `Connection: close`) rather than answered 503.
      return503OnClosing: false,
      // A real deployment passes its key and certificate; with 'dev', each worker makes its own.
      serverFactory: serverFactory({ tls: 'dev', http: 'redirect' })
    })
    await app.register(portmux)
    app.get('/', async (request) => ({
      protocol: request.protocol,
      httpVersion: request.raw.httpVersion,
      pid: process.pid
    }))
    app.tcp('echo', {
      match: { prefix: 'ECHO ' },
      handler: (socket) => {
        socket.on('error', () => socket.destroy())
        socket.pipe(socket)
      }
    })
    await app.listen({ port, host })
    return app
  }
})

if (cluster.isPrimary) {
  const actual = cluster.addresses[0]?.port ?? port
  console.log(`portmux cluster (primary ${process.pid}) on port ${actual}: workers ${cluster.pids().join(', ')}. Try:
  curl -sk https://localhost:${actual}/    # answered by one of the workers
  kill -HUP ${process.pid}    # rolling restart, one worker at a time
  kill -TERM ${process.pid}   # drain every worker, then exit`)
}
