/**
 * A cluster driven by a test over IPC: two workers with a plain `net` echo server (the
 * `net.Server` form of what `start()` may return), events and results sent to the parent.
 *
 * Messages from the parent: `'restart'`, `'stop'`. A worker refuses to start while the
 * file named by FAIL_FILE exists.
 */
import { existsSync } from 'node:fs'
import net from 'node:net'
import { runCluster } from '../../src/cluster.js'

const failFile = process.env.FAIL_FILE ?? ''

const c = await runCluster({
  workers: 2,
  signals: false,
  readyTimeout: 15_000,
  drainTimeout: 5_000,
  onEvent: (event) => {
    process.send?.({ event: event.type === 'error' ? { type: 'error', message: event.error.message } : event })
  },
  start: async () => {
    if (failFile !== '' && existsSync(failFile)) throw new Error('refusing to start (FAIL_FILE exists)')
    const server = net.createServer((socket) => {
      socket.on('error', () => socket.destroy())
      socket.pipe(socket)
    })
    server.listen(0, '127.0.0.1')
    return server
  }
})

if (c.isPrimary) {
  process.send?.({ port: c.addresses[0].port, pids: c.pids() })
  process.on('message', (m: unknown) => {
    if (m === 'restart') {
      c.restart().then(
        (report) => process.send?.({ report, pids: c.pids() }),
        (err: Error & { code?: string }) => process.send?.({ error: { name: err.name, code: err.code, message: err.message }, pids: c.pids() })
      )
    } else if (m === 'stop') {
      c.stop().then(() => process.exit(0), () => process.exit(1))
    }
  })
}
