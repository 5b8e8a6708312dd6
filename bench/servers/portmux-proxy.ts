/**
 * Server under test: Fastify through portmux on a TLS port with one raw TCP route,
 * `app.tcp('ssh', { match: 'ssh', proxy: { port } })`, splicing SSH-like connections to an
 * upstream. `sniffTimeout` and `maxPending` may be raised for the memory scenario (which
 * holds 10,000 silent connections in the sniffing state).
 *
 *     node portmux-proxy.js '{"tls":{…},"upstream":12345,"sniffTimeout":120000,"maxPending":20000}'
 */
import Fastify from 'fastify'
import portmux, { serverFactory } from '../../src/index.js'
import { BODY, config, exitOnSignal, portOf, readTls, ready, type TlsFiles } from '../lib/child.js'

interface Config { tls: TlsFiles, upstream: number, sniffTimeout?: number, maxPending?: number, port?: number }

const c = config<Config>()
exitOnSignal()
const options: Parameters<typeof serverFactory>[0] = { tls: readTls(c.tls), http: 'redirect' }
if (c.sniffTimeout !== undefined) options.sniffTimeout = c.sniffTimeout
// The bench client opens every connection from one address: the per-source share is raised with it.
if (c.maxPending !== undefined) {
  options.maxPending = c.maxPending
  options.maxPendingPerSource = c.maxPending
}
const app = Fastify({ logger: false, serverFactory: serverFactory(options) })
await app.register(portmux)
app.tcp('ssh', { match: 'ssh', proxy: { host: '127.0.0.1', port: c.upstream } })
app.get('/', async () => BODY)
await app.listen({ port: c.port ?? 0, host: '127.0.0.1' })
ready({ port: portOf(app.server) })
