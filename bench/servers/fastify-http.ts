/**
 * Peer: plain Fastify over plaintext HTTP (Node's http.Server).
 *
 *     node fastify-http.js '{}'
 */
import Fastify from 'fastify'
import { BODY, config, exitOnSignal, portOf, ready } from '../lib/child.js'

const c = config<{ port?: number }>()
exitOnSignal()
const app = Fastify({ logger: false })
app.get('/', async () => BODY)
await app.listen({ port: c.port ?? 0, host: '127.0.0.1' })
ready({ port: portOf(app.server) })
