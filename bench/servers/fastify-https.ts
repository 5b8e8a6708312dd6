/**
 * Peer: plain Fastify with its own `https` option (Node's https.Server, HTTP/1.1).
 *
 *     node fastify-https.js '{"tls":{"key":"…","cert":"…"}}'
 */
import Fastify from 'fastify'
import { BODY, config, exitOnSignal, portOf, readTls, ready, type TlsFiles } from '../lib/child.js'

const c = config<{ tls: TlsFiles, port?: number }>()
exitOnSignal()
const app = Fastify({ logger: false, https: readTls(c.tls) })
app.get('/', async () => BODY)
await app.listen({ port: c.port ?? 0, host: '127.0.0.1' })
ready({ port: portOf(app.server) })
