/**
 * Server under test: Fastify served through portmux (`serverFactory` + the plugin) on a
 * TLS port. `http` says what plaintext HTTP gets there (`'redirect'` or `'serve'`).
 *
 *     node portmux-fastify.js '{"tls":{"key":"…","cert":"…"},"http":"serve","http2":true}'
 */
import Fastify from 'fastify'
import portmux, { serverFactory } from '../../src/index.js'
import { BODY, config, exitOnSignal, portOf, readTls, ready, type TlsFiles } from '../lib/child.js'

interface Config { tls: TlsFiles, http?: 'redirect' | 'serve', http2?: boolean, port?: number }

const c = config<Config>()
exitOnSignal()
const app = Fastify({
  logger: false,
  serverFactory: serverFactory({ tls: readTls(c.tls), http: c.http ?? 'redirect', http2: c.http2 ?? true })
})
await app.register(portmux)
app.get('/', async () => BODY)
await app.listen({ port: c.port ?? 0, host: '127.0.0.1' })
ready({ port: portOf(app.server) })
