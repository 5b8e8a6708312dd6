/**
 * The smallest portmux app: HTTPS on one port, and plain HTTP sent to that same port
 * redirected to https:// (301 for GET and HEAD, 308 otherwise; host, port, path and
 * query kept).
 *
 *   npm run build && node build/examples/redirect.js     # PORT=8443 by default
 */
import Fastify from 'fastify'
import type { AddressInfo } from 'node:net'
import portmux, { serverFactory } from 'portmux'

const port = Number(process.env.PORT ?? 8443)
const host = process.env.HOST ?? 'localhost'

// A real deployment passes `tls: { key, cert }`; 'dev' makes a self-signed certificate.
const app = Fastify({
  logger: { level: process.env.LOG_LEVEL ?? 'info' },
  serverFactory: serverFactory({ tls: 'dev', http: 'redirect' })
})
await app.register(portmux)

app.get('/', async () => ({ hello: 'over https' }))

await app.listen({ port, host })
const actual = (app.server.address() as AddressInfo).port

console.log(`
redirect example on port ${actual}. Try:
  curl -sk https://localhost:${actual}/          # served over HTTPS
  curl -si 'http://localhost:${actual}/a?b=1'    # 301 Location: https://localhost:${actual}/a?b=1
`)

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    app.close().then(() => process.exit(0), () => process.exit(1))
  })
}
