/**
 * A server ordering its certificate from the CA at DIRECTORY (trusting CA_FILE) for DOMAIN,
 * on PORT, storing in STORAGE, with a minute between its looks at a pending challenge.
 * Prints `listening`; on SIGUSR2 it closes the server and prints `closed`, and then nothing
 * of its own keeps the process alive: it should exit at once.
 */
import { readFileSync } from 'node:fs'
import { createServer } from '../../src/node.js'
import type { AcmeOptions } from '../../src/types.js'

const env = process.env
const server = createServer((_req, res) => { res.end('app') }, {
  acme: {
    domains: [env.DOMAIN ?? ''],
    agreeToTerms: true,
    directory: env.DIRECTORY,
    storage: env.STORAGE,
    [Symbol.for('portmux.acme.tuning')]: { ca: readFileSync(env.CA_FILE ?? '', 'utf8'), pollMin: 60_000, pollMax: 60_000, retryMin: 60_000 }
  } as AcmeOptions
})
server.on('warning', (err: Error) => { console.error(`warning: ${err.message}`) })
server.listen(Number(env.PORT), '127.0.0.1', () => { console.log('listening') })
process.once('SIGUSR2', () => {
  server.close(() => { console.log('closed') })
})
