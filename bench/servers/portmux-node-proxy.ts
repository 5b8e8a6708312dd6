/**
 * Server under test: portmux without Fastify (`createServer` from src/node.ts) on a TLS port
 * with the same raw TCP route as portmux-proxy.ts, `route('ssh', { match: 'ssh', proxy })`.
 * Beside portmux-proxy.ts it tells the proxy route's own cost from what the larger Fastify
 * process adds (its heap, its allocator state).
 *
 *     node portmux-node-proxy.js '{"tls":{…},"upstream":12345}'
 */
import { createServer } from '../../src/node.js'
import { BODY, config, exitOnSignal, portOf, readTls, ready, type TlsFiles } from '../lib/child.js'

interface Config { tls: TlsFiles, upstream: number, port?: number }

const c = config<Config>()
exitOnSignal()
const server = createServer((_req, res) => { res.end(BODY) }, { tls: readTls(c.tls), http: 'redirect' })
server.route('ssh', { match: 'ssh', proxy: { host: '127.0.0.1', port: c.upstream } })
server.listen({ port: c.port ?? 0, host: '127.0.0.1' }, () => { ready({ port: portOf(server) }) })
