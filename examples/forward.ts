/**
 * Forwarding HTTP to other services behind the one port: Fastify on portmux, with
 * @fastify/http-proxy doing the forwarding.
 *
 *   https://<host>:PORT/api/...                 → http://127.0.0.1:API_PORT/...   (prefix removed)
 *   https://admin.localhost:PORT/...            → http://127.0.0.1:ADMIN_PORT/...
 *   WebSockets the same way (wss://, and ws:// is redirected like any plain HTTP)
 *   http://<host>:PORT/...                      → 301 to https://
 *
 * The upstreams get X-Forwarded-For (the client; the one a trusted PROXY header names,
 * when portmux is given `proxyProtocol`), X-Forwarded-Proto and X-Forwarded-Host.
 *
 *   npm run build && START_UPSTREAMS=1 node build/examples/forward.js
 *
 * PORT (8443), HOST (localhost), API_PORT (3001), ADMIN_PORT (3002). With
 * START_UPSTREAMS=1 the example also starts two tiny upstreams on those ports (0: any
 * free port) that answer with what they received.
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import Fastify, { type FastifyRequest } from 'fastify'
import httpProxy, { type FastifyHttpProxyOptions } from '@fastify/http-proxy'
import { WebSocketServer } from 'ws'
import portmux, { serverFactory } from 'portmux'

const port = Number(process.env.PORT ?? 8443)
const host = process.env.HOST ?? 'localhost'
let apiPort = Number(process.env.API_PORT ?? 3001)
let adminPort = Number(process.env.ADMIN_PORT ?? 3002)

// Two demo upstreams: they answer (and greet WebSockets) with what reached them, the
// size of the body included.
const upstreams: http.Server[] = []
async function demoUpstream (name: string, listenPort: number): Promise<number> {
  const server = http.createServer((req, res) => {
    let bytes = 0
    req.on('data', (chunk: Buffer) => { bytes += chunk.length })
    req.on('end', () => {
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({ service: name, method: req.method, url: req.url, headers: req.headers, bytes }))
    })
  })
  new WebSocketServer({ server }).on('connection', (ws, req) => {
    ws.send(JSON.stringify({ service: name, url: req.url, headers: req.headers }))
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }))
  })
  await new Promise<void>((resolve) => server.listen(listenPort, '127.0.0.1', resolve))
  upstreams.push(server)
  return (server.address() as AddressInfo).port
}
if (process.env.START_UPSTREAMS === '1') {
  apiPort = await demoUpstream('api', apiPort)
  adminPort = await demoUpstream('admin', adminPort)
}

// What the upstream should know about the client. portmux already made these right:
// request.ip is the client (from a trusted PROXY header when there is one), and
// request.protocol is 'https' over TLS (HTTP/1.1 and HTTP/2 alike), 'http' otherwise.
function forwarded (request: Pick<FastifyRequest, 'ip' | 'protocol' | 'host'>): Record<string, string> {
  return {
    'x-forwarded-for': request.ip,
    'x-forwarded-proto': request.protocol,
    'x-forwarded-host': request.host
  }
}

// @fastify/reply-from passes the client's headers on (Host set to the upstream's) and adds
// no X-Forwarded-* itself; any the client sent are replaced here, never trusted.
const replyOptions: FastifyHttpProxyOptions['replyOptions'] = {
  rewriteRequestHeaders: (request, headers) => {
    const out = { ...headers, ...forwarded(request) }
    // Node has answered `Expect: 100-continue` already, and undici refuses to send it on
    // (curl asks for it on uploads above 1 MB).
    delete out.expect
    return out
  },
  // A refused connection would be a 500 with the upstream's address in the message.
  onError: (reply, { error }) => {
    const code = (error as { statusCode?: number }).statusCode ?? 0
    const status = code >= 502 && code <= 504 ? code : 502
    void reply.code(status).send({ statusCode: status, error: http.STATUS_CODES[status] })
  }
}

// WebSockets: the headers of the upstream handshake. The plugin's default forwards the
// cookie only; its types lack this documented option, hence the intersection.
type WsClientOptions = NonNullable<FastifyHttpProxyOptions['wsClientOptions']> & {
  rewriteRequestHeaders: (headers: Record<string, unknown>, request: FastifyRequest) => Record<string, unknown>
}
const wsClientOptions: WsClientOptions = {
  rewriteRequestHeaders: (headers, request) => ({
    ...headers,
    ...(request.headers.cookie !== undefined ? { cookie: request.headers.cookie } : {}),
    ...forwarded(request)
  })
}

const app = Fastify({
  logger: { level: process.env.LOG_LEVEL ?? 'info' },
  serverFactory: serverFactory({ tls: 'dev', http: 'redirect' })
})
await app.register(portmux)

// /api/* → the API service, without the /api prefix.
await app.register(httpProxy, {
  upstream: `http://127.0.0.1:${apiPort}`,
  prefix: '/api',
  websocket: true,
  replyOptions,
  wsClientOptions
})

// Host admin.localhost (any port) → the admin service, whole path.
await app.register(httpProxy, {
  upstream: `http://127.0.0.1:${adminPort}`,
  constraints: { host: /^admin\.localhost(:\d+)?$/i },
  websocket: true,
  replyOptions,
  wsClientOptions
})

app.get('/', async () => ({ hello: 'from portmux', try: ['/api/…', 'Host: admin.localhost'] }))

// Before the banner: whoever waits for it may stop the example at once.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    for (const s of upstreams) s.closeAllConnections()
    Promise.all([
      app.close(),
      ...upstreams.map((s) => new Promise<void>((resolve) => s.close(() => resolve())))
    ]).then(() => process.exit(0), () => process.exit(1))
  })
}

await app.listen({ port, host })
const actual = (app.server.address() as AddressInfo).port

console.log(`
portmux forwarding example on port ${actual}:
  /api/*                → http://127.0.0.1:${apiPort}
  Host: admin.localhost → http://127.0.0.1:${adminPort}
Try:
  curl -sk https://localhost:${actual}/api/hello
  curl -sk --resolve admin.localhost:${actual}:127.0.0.1 https://admin.localhost:${actual}/users
  curl -si http://localhost:${actual}/api/hello           # 301 to https
`)
