/**
 * The portmux demo: one port for HTTPS (HTTP/1.1 and HTTP/2), a redirect for plain
 * HTTP, and a raw TCP echo for lines starting with `ECHO `.
 *
 *   npm start                 # PORT=8443 by default
 */
import Fastify from 'fastify'
import type { AddressInfo } from 'node:net'
import portmux, { serverFactory } from 'portmux'

const port = Number(process.env.PORT ?? 8443)
const host = process.env.HOST ?? 'localhost'

const app = Fastify({
  logger: { level: process.env.LOG_LEVEL ?? 'info' },
  serverFactory: serverFactory({ tls: 'dev', http: 'redirect' })
})
await app.register(portmux)

app.get('/', async (request) => ({
  protocol: request.protocol,
  httpVersion: request.raw.httpVersion,
  hello: 'from portmux'
}))

// Lines starting with "ECHO " come back as they were sent.
app.tcp('echo', {
  match: { prefix: 'ECHO ' },
  handler: (socket) => {
    socket.on('error', () => socket.destroy())
    socket.pipe(socket)
  }
})

await app.listen({ port, host })
const actual = (app.server.address() as AddressInfo).port

console.log(`
portmux demo on port ${actual}. Try:
  curl -sk https://localhost:${actual}/               # HTTPS, HTTP/1.1 or h2 by ALPN
  curl -sk --http2 https://localhost:${actual}/       # HTTP/2
  curl -si 'http://localhost:${actual}/a?b=1'         # plain HTTP: 301 to https
  printf 'ECHO hi\\n' | nc -q1 localhost ${actual}     # raw TCP echo route
`)

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    app.close().then(() => process.exit(0), () => process.exit(1))
  })
}
