/**
 * Peer: @httptoolkit/httpolyglot (installed by the harness into bench/.deps) on a TLS
 * port, with the redirect handler its README shows: plaintext requests get a 301 to the
 * same host and path over https (`Connection: close`), TLS requests the JSON body.
 *
 *     node httpolyglot.js '{"tls":{…},"module":"/abs/path/to/httpolyglot/dist/index.js"}'
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Server } from 'node:net'
import type { TLSSocket } from 'node:tls'
import { pathToFileURL } from 'node:url'
import { BODY, config, exitOnSignal, portOf, readTls, ready, type TlsFiles } from '../lib/child.js'

interface Httpolyglot {
  createServer: (options: { tls: object }, handler: (req: IncomingMessage, res: ServerResponse) => void) => Server
}

const c = config<{ tls: TlsFiles, module: string, port?: number }>()
exitOnSignal()
const hp = await import(pathToFileURL(c.module).href) as Httpolyglot
const json = JSON.stringify(BODY)

const server = hp.createServer({ tls: readTls(c.tls) }, (req, res) => {
  if ((req.socket as TLSSocket).encrypted !== true) {
    const location = `https://${req.headers.host ?? '127.0.0.1'}${req.url ?? '/'}`
    const body = `Redirecting to ${location}\n`
    res.writeHead(301, { location, 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), connection: 'close' })
    res.end(body)
    return
  }
  res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(json) })
  res.end(json)
})
server.listen(c.port ?? 0, '127.0.0.1', () => ready({ port: portOf(server) }))
