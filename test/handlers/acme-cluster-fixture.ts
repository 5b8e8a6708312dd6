/**
 * Two workers under portmux/cluster answering HTTPS with their pid, on PORT. With
 * MODE=dev they use `tls: 'dev'`; with MODE=acme they obtain the certificate from the CA
 * at DIRECTORY (trusting CA_FILE) for DOMAIN, storing it in STORAGE. The primary prints
 * `ready <pids>` once both are.
 */
import { readFileSync } from 'node:fs'
import { runCluster } from '../../src/cluster.js'
import { createServer } from '../../src/node.js'
import type { AcmeOptions, MuxOptions } from '../../src/types.js'

const env = process.env
const options: MuxOptions = env.MODE === 'acme'
  ? {
      acme: {
        domains: [env.DOMAIN ?? ''],
        agreeToTerms: true,
        directory: env.DIRECTORY,
        storage: env.STORAGE,
        [Symbol.for('portmux.acme.tuning')]: { ca: readFileSync(env.CA_FILE ?? '', 'utf8'), pollInterval: 50, retryMin: 100, retryMax: 400, pollMin: 50, pollMax: 200, lockRefresh: 100, lockStale: 2000 }
      } as AcmeOptions
    }
  : { tls: 'dev' }

const c = await runCluster({
  workers: 2,
  signals: false,
  start: async () => {
    const server = createServer((_req, res) => { res.end(String(process.pid)) }, options)
    server.on('warning', (err: Error) => { console.error(`worker ${process.pid}: ${err.message}`) })
    server.on('certificate', () => { console.log(`worker ${process.pid} certificate`) })
    server.listen(Number(env.PORT), '127.0.0.1')
    return server
  }
})

if (c.isPrimary) {
  console.log(`ready ${c.pids().join(',')}`)
  process.on('SIGTERM', () => { c.stop().then(() => process.exit(0), () => process.exit(1)) })
}
