/**
 * Peer: plain Fastify with its own `https` option — Node's https.Server (HTTP/1.1), or with
 * `"http2": true` Node's http2 secure server (`Fastify({ http2: true, https })`: h2 only).
 *
 *     node fastify-https.js '{"tls":{"key":"…","cert":"…"},"http2":false}'
 */
import Fastify from 'fastify'
import { BODY, config, exitOnSignal, portOf, readTls, ready, type TlsFiles } from '../lib/child.js'

const c = config<{ tls: TlsFiles, http2?: boolean, port?: number }>()
exitOnSignal()

/** What both kinds of Fastify instance are used for here. */
interface App {
  get: (path: string, handler: () => Promise<unknown>) => unknown
  listen: (o: { port: number, host: string }) => Promise<string>
  server: { address: () => unknown }
}

async function serve (app: App): Promise<void> {
  app.get('/', async () => BODY)
  await app.listen({ port: c.port ?? 0, host: '127.0.0.1' })
  ready({ port: portOf(app.server) })
}

await serve(c.http2 === true ? Fastify({ logger: false, http2: true, https: readTls(c.tls) }) : Fastify({ logger: false, https: readTls(c.tls) }))
