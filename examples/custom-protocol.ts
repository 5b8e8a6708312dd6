/**
 * HTTP and your own TCP protocols on one port: a Fastify HTTPS app, a length-prefixed binary
 * protocol recognised by its magic bytes, and a line protocol inside TLS chosen by ALPN.
 *
 *   npm run build && node build/examples/custom-protocol.js
 *
 * PORT (8443), HOST (localhost).
 *
 * 1. HTTPS (HTTP/1.1 and h2) and a redirect for plain HTTP: the Fastify routes below.
 *
 * 2. "PMX1", a binary protocol: the client sends the magic bytes 50 4d 58 01 ("PMX\x01"),
 *    then frames of [u32 big-endian length][payload]. Each frame is answered with a frame
 *    holding the payload in upper case; a zero-length frame ends the session. A client:
 *
 *      import net from 'node:net'
 *      const frame = (s) => { const p = Buffer.from(s); const h = Buffer.alloc(4); h.writeUInt32BE(p.length); return Buffer.concat([h, p]) }
 *      const socket = net.connect(8443, 'localhost')
 *      socket.end(Buffer.concat([Buffer.of(0x50, 0x4d, 0x58, 0x01), frame('hello'), frame('')]))
 *      socket.on('data', (d) => console.log(d))   // <Buffer 00 00 00 05 48 45 4c 4c 4f>
 *
 * 3. A line protocol over TLS, chosen by the ALPN value "portmux-demo": the mux completes the
 *    handshake with its own certificate and the handler reads plaintext lines:
 *    `PING x` → `PONG x`, `WHO` → the SNI and ALPN seen, `QUIT` → `BYE`. Clients offering
 *    h2 or http/1.1 (browsers, curl) still get the app. A client:
 *
 *      openssl s_client -connect localhost:8443 -alpn portmux-demo -quiet   # then type PING hi
 *
 *      import tls from 'node:tls'
 *      const s = tls.connect({ port: 8443, host: 'localhost', ALPNProtocols: ['portmux-demo'], rejectUnauthorized: false })
 *      s.on('secureConnect', () => s.write('PING hi\nQUIT\n'))
 *      s.pipe(process.stdout)
 */
import Fastify from 'fastify'
import type { AddressInfo, Socket } from 'node:net'
import portmux, { serverFactory, type ConnectionInfo } from 'portmux'

const port = Number(process.env.PORT ?? 8443)
const host = process.env.HOST ?? 'localhost'

const MAGIC = Uint8Array.of(0x50, 0x4d, 0x58, 0x01) // "PMX\x01"
const MAX_FRAME = 1024 * 1024

/** The PMX1 session: magic, then length-prefixed frames answered in upper case. */
function pmx1 (socket: Socket): void {
  // The socket replays the sniffed bytes first: the magic is the first thing read.
  let buffered = Buffer.alloc(0)
  let greeted = false
  socket.on('error', () => socket.destroy())
  socket.on('data', (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk])
    if (!greeted) {
      if (buffered.length < MAGIC.length) return
      buffered = buffered.subarray(MAGIC.length)
      greeted = true
    }
    while (buffered.length >= 4) {
      const length = buffered.readUInt32BE(0)
      if (length > MAX_FRAME) {
        socket.destroy()
        return
      }
      if (buffered.length < 4 + length) return
      const payload = buffered.subarray(4, 4 + length)
      buffered = buffered.subarray(4 + length)
      if (length === 0) {
        socket.end()
        return
      }
      const answer = Buffer.from(payload.toString('utf8').toUpperCase())
      const header = Buffer.alloc(4)
      header.writeUInt32BE(answer.length)
      socket.write(Buffer.concat([header, answer]))
    }
  })
  // A client that stops sending (FIN) gets the end of the session too.
  socket.on('end', () => socket.end())
}

/** The line protocol inside TLS. */
function lines (socket: Socket, info: ConnectionInfo): void {
  let buffered = ''
  socket.setEncoding('utf8')
  socket.on('error', () => socket.destroy())
  socket.on('end', () => socket.end())
  socket.on('data', (chunk: string) => {
    buffered += chunk
    let nl: number
    while ((nl = buffered.indexOf('\n')) !== -1) {
      const line = buffered.slice(0, nl).replace(/\r$/, '')
      buffered = buffered.slice(nl + 1)
      if (line.startsWith('PING')) socket.write(`PONG${line.slice(4)}\n`)
      else if (line === 'WHO') socket.write(`sni=${info.sni ?? '-'} alpn=${(info.alpn ?? []).join(',')}\n`)
      else if (line === 'QUIT') socket.end('BYE\n')
      else socket.write('ERR try PING, WHO or QUIT\n')
    }
  })
}

const app = Fastify({
  logger: { level: process.env.LOG_LEVEL ?? 'info' },
  serverFactory: serverFactory({ tls: 'dev', http: 'redirect' })
})
await app.register(portmux)

app.tcp('pmx1', { match: { prefix: MAGIC }, handler: pmx1, idleTimeout: 60_000 })
app.tcp('demo-tls', { match: { tls: { alpn: 'portmux-demo' } }, terminateTls: true, handler: lines, idleTimeout: 60_000 })

app.get('/', async (request) => ({
  hello: 'from portmux',
  protocol: request.protocol,
  httpVersion: request.raw.httpVersion
}))

await app.listen({ port, host })
const actual = (app.server.address() as AddressInfo).port

console.log(`
custom-protocol on port ${actual}. Try:
  curl -sk https://localhost:${actual}/                                  # the Fastify app over HTTPS
  openssl s_client -connect localhost:${actual} -alpn portmux-demo -quiet  # then type: PING hi
  the PMX1 binary client in examples/custom-protocol.ts (magic 50 4d 58 01, u32-length frames)
`)

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    app.close().then(() => process.exit(0), () => process.exit(1))
  })
}
