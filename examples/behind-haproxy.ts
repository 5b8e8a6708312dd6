/**
 * Behind HAProxy in TCP mode: HAProxy passes the connection through untouched and puts a
 * PROXY protocol v2 header in front of it, so the app sees the real client — in
 * `request.ip`, in logs, in raw routes' `info.remoteAddress` — while TLS, the redirect
 * and the raw routes still happen here.
 *
 *   npm run build && node build/examples/behind-haproxy.js   # PORT=8443 by default
 *
 * The matching HAProxy configuration (HAProxy listens on 443 and forwards everything):
 *
 *   frontend public
 *       mode tcp
 *       bind :443
 *       default_backend portmux
 *
 *   backend portmux
 *       mode tcp
 *       server app1 127.0.0.1:8443 send-proxy-v2
 *
 * `mode tcp` keeps HAProxy out of TLS and HTTP; `send-proxy-v2` writes the header
 * (`send-proxy` for version 1 works too). Only peers listed in `trusted` may send one: from
 * anyone else, a PROXY header is never believed. Add `required: true` once every
 * connection comes through HAProxy, so a connection without a header is refused.
 */
import Fastify from 'fastify'
import type { AddressInfo } from 'node:net'
import portmux, { serverFactory } from 'portmux'

const port = Number(process.env.PORT ?? 8443)
const host = process.env.HOST ?? 'localhost'

const app = Fastify({
  logger: { level: process.env.LOG_LEVEL ?? 'info' },
  serverFactory: serverFactory({
    tls: 'dev',
    http: 'redirect',
    // The address HAProxy connects from.
    proxyProtocol: { trusted: ['127.0.0.1', '::1'] }
  })
})
await app.register(portmux)

app.get('/', async (request) => ({ ip: request.ip, protocol: request.protocol }))

await app.listen({ port, host })
const actual = (app.server.address() as AddressInfo).port

console.log(`
behind-haproxy example on port ${actual}. Point HAProxy's backend at it (see the comment at
the top of examples/behind-haproxy.ts); HTTPS through HAProxy answers with the client's
address. Directly, without a header, it answers with the real peer:
  curl -sk https://localhost:${actual}/
`)

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    app.close().then(() => process.exit(0), () => process.exit(1))
  })
}
