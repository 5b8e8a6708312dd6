/**
 * One app, both schemes, one port: `http: 'serve'` serves plain HTTP instead of
 * redirecting it. `request.protocol` says which one a request came over.
 *
 *   npm run build && node build/examples/serve-both.js   # PORT=8080 by default
 *
 * Useful behind something that already decides about TLS (a health checker speaking plain
 * HTTP, an internal network), or while moving clients to https:// one by one.
 */
import Fastify from 'fastify'
import type { AddressInfo } from 'node:net'
import portmux, { serverFactory } from 'portmux'

const port = Number(process.env.PORT ?? 8080)
const host = process.env.HOST ?? 'localhost'

const app = Fastify({
  logger: { level: process.env.LOG_LEVEL ?? 'info' },
  serverFactory: serverFactory({ tls: 'dev', http: 'serve' })
})
await app.register(portmux)

app.get('/', async (request) => ({
  protocol: request.protocol,
  httpVersion: request.raw.httpVersion
}))

await app.listen({ port, host })
const actual = (app.server.address() as AddressInfo).port

console.log(`
serve-both example on port ${actual}. Try:
  curl -sk https://localhost:${actual}/    # {"protocol":"https",...}
  curl -s  http://localhost:${actual}/     # {"protocol":"http",...}
`)

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    app.close().then(() => process.exit(0), () => process.exit(1))
  })
}
