/**
 * Express on one port: HTTPS served by the app, plain HTTP redirected to https, and a
 * raw TCP route next to it.
 *
 *   npm run build && node build/examples/express.js   # PORT=8443 by default
 */
import express from 'express'
import type { AddressInfo } from 'node:net'
import { createServer, devCertificate } from 'portmux'

const app = express()
app.get('/', (req, res) => {
  res.json({ secure: req.secure, protocol: req.protocol, httpVersion: req.httpVersion })
})

// A real deployment passes its own key and certificate here. Express handles HTTP/1.1
// only (its req and res extend Node's HTTP/1 classes), so h2 is not offered by ALPN.
const { key, cert } = await devCertificate()
const server = createServer(app, { tls: { key, cert }, http: 'redirect', http2: false })

server.route('echo', {
  match: { prefix: 'ECHO ' },
  handler: (socket) => {
    socket.on('error', () => socket.destroy())
    socket.pipe(socket)
  }
})

server.listen(Number(process.env.PORT ?? 8443), process.env.HOST ?? 'localhost', () => {
  const { port } = server.address() as AddressInfo
  console.log(`express behind portmux on port ${port}:
  curl -sk https://localhost:${port}/
  curl -si http://localhost:${port}/
  printf 'ECHO hi\\n' | nc -q1 localhost ${port}`)
})

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => server.close(() => process.exit(0)))
}
