/**
 * A real certificate from an ACME CA (Let's Encrypt by default), obtained and renewed by
 * portmux on its own port: TLS-ALPN-01 answered on 443, HTTP-01 on 80 (which redirects
 * everything else to 443), an ECHO route beside HTTPS.
 *
 *   DOMAINS=example.com,www.example.com EMAIL=ops@example.com node build/examples/acme.js
 *
 * Env: DOMAINS, EMAIL, ACME_DIRECTORY (default Let's Encrypt production), ACME_STORAGE
 * (default ./.portmux/acme), PORT (443), HTTP_PORT (80; empty for none), HOST (::).
 * Started by systemd socket activation (LISTEN_FDS set), it listens on the inherited fd 3.
 * Ports below 1024 without root: see examples/portmux-acme.service.
 */
import Fastify from 'fastify'
import type { AddressInfo } from 'node:net'
import portmux, { serverFactory, type CertificateInfo } from 'portmux'

const domains = (process.env.DOMAINS ?? '').split(',').map((d) => d.trim()).filter((d) => d !== '')
if (domains.length === 0) {
  console.error('set DOMAINS=example.com[,www.example.com] (names that resolve to this machine)')
  process.exit(2)
}
const port = Number(process.env.PORT ?? 443)
const host = process.env.HOST ?? '::'
const httpPort = process.env.HTTP_PORT === '' ? undefined : Number(process.env.HTTP_PORT ?? 80)
const socketActivated = process.env.LISTEN_FDS !== undefined && Number(process.env.LISTEN_PID) === process.pid

const app = Fastify({
  logger: { level: process.env.LOG_LEVEL ?? 'info' },
  serverFactory: serverFactory({
    acme: {
      domains,
      email: process.env.EMAIL,
      agreeToTerms: true,
      directory: process.env.ACME_DIRECTORY,
      storage: process.env.ACME_STORAGE
    },
    // With socket activation systemd holds the ports; HTTP-01 then needs its own socket, so only TLS-ALPN-01 is used.
    httpPort: socketActivated ? undefined : httpPort,
    http: 'redirect'
  })
})
await app.register(portmux)

app.portmux.on('certificate', (e: CertificateInfo) => {
  app.log.info({ domains: e.domains, notAfter: e.notAfter, renewed: e.renewed }, 'certificate installed')
})

app.get('/', async (request) => ({ protocol: request.protocol, host: request.hostname }))

app.tcp('echo', {
  match: { prefix: 'ECHO ' },
  handler: (socket) => {
    socket.on('error', () => socket.destroy())
    socket.pipe(socket)
  }
})

if (socketActivated) {
  // Fastify's listen() takes no fd; its server does.
  await app.ready()
  await new Promise<void>((resolve, reject) => {
    app.server.once('error', reject)
    app.server.listen({ fd: 3 }, resolve)
  })
} else {
  await app.listen({ port, host })
}
const actual = (app.server.address() as AddressInfo).port
console.log(`portmux acme example on port ${actual} for ${domains.join(', ')}${httpPort !== undefined && !socketActivated ? ` (HTTP-01 and redirects on ${httpPort})` : ''}`)

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    app.close().then(() => process.exit(0), () => process.exit(1))
  })
}
