/**
 * Node references (what the least a Node process can do costs), one mode each:
 *
 * - `idle`: a `net.Server` that accepts sockets and holds them (reading, as any server does);
 * - `pipe`: the naive proxy `client.pipe(upstream); upstream.pipe(client)`;
 * - `redirect`: `node:http` on a plaintext port answering every request with the same 301
 *   (`Connection: close`) that portmux sends.
 *
 *     node node-baseline.js '{"mode":"pipe","upstream":12345}'
 */
import http from 'node:http'
import net from 'node:net'
import { config, exitOnSignal, portOf, ready } from '../lib/child.js'

const c = config<{ mode: 'idle' | 'pipe' | 'redirect', upstream?: number, port?: number }>()
exitOnSignal()
let server: net.Server
if (c.mode === 'idle') {
  const held = new Set<net.Socket>()
  server = net.createServer((socket) => {
    held.add(socket)
    socket.on('error', () => {})
    socket.on('close', () => held.delete(socket))
  })
} else if (c.mode === 'pipe') {
  server = net.createServer({ noDelay: true }, (client) => {
    const upstream = net.connect({ host: '127.0.0.1', port: c.upstream ?? 0, noDelay: true })
    client.pipe(upstream)
    upstream.pipe(client)
    client.on('error', () => upstream.destroy())
    upstream.on('error', () => client.destroy())
    client.on('close', () => upstream.destroy())
    upstream.on('close', () => client.destroy())
  })
} else {
  server = http.createServer((req, res) => {
    const location = `https://${req.headers.host ?? '127.0.0.1'}${req.url ?? '/'}`
    const body = `Redirecting to ${location}\n`
    res.writeHead(301, { location, 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), connection: 'close' })
    res.end(body)
  })
}
server.listen({ port: c.port ?? 0, host: '127.0.0.1', backlog: 4096 }, () => ready({ port: portOf(server) }))
