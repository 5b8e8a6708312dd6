/**
 * SSH and HTTPS on one port (what sslh does): OpenSSH clients are spliced to an sshd,
 * browsers and curl get the Fastify app over HTTPS, and plain HTTP is redirected to https://.
 *
 *   npm run build && node build/examples/ssh-and-https.js
 *
 * PORT (8443), HOST (localhost), SSH_HOST (127.0.0.1), SSH_PORT (22).
 *
 * An SSH client speaks first (`SSH-2.0-…`), so the `'ssh'` detector decides on its first line
 * and the connection goes to the sshd byte for byte: host keys and authentication are the
 * sshd's business. sshd sees every connection coming from the mux's address; it does not
 * speak the PROXY protocol, so no `proxyProtocol` is set here.
 */
import Fastify from 'fastify'
import type { AddressInfo } from 'node:net'
import portmux, { serverFactory } from 'portmux'

const port = Number(process.env.PORT ?? 8443)
const host = process.env.HOST ?? 'localhost'
const sshHost = process.env.SSH_HOST ?? '127.0.0.1'
const sshPort = Number(process.env.SSH_PORT ?? 22)

const app = Fastify({
  logger: { level: process.env.LOG_LEVEL ?? 'info' },
  serverFactory: serverFactory({ tls: 'dev', http: 'redirect' })
})
await app.register(portmux)

// SSH clients go to the sshd; everything else stays with Fastify.
app.tcp('ssh', { match: 'ssh', proxy: { host: sshHost, port: sshPort } })

app.get('/', async (request) => ({
  hello: 'from portmux',
  protocol: request.protocol,
  httpVersion: request.raw.httpVersion
}))

await app.listen({ port, host })
const actual = (app.server.address() as AddressInfo).port

console.log(`
ssh-and-https on port ${actual} (SSH goes to ${sshHost}:${sshPort}). Try:
  ssh -p ${actual} user@localhost                     # your sshd, through the same port
  curl -sk https://localhost:${actual}/               # the Fastify app over HTTPS
  curl -si http://localhost:${actual}/                # plain HTTP: 301 to https
`)

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    app.close().then(() => process.exit(0), () => process.exit(1))
  })
}
