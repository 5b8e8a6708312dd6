/**
 * 1. HTTPS keep-alive (HTTP/1.1): Fastify through portmux (`serverFactory`, TLS port,
 *    defaults: h2 and HTTP/1.1 by ALPN) vs plain Fastify with its `https` option. wrk and
 *    h2load --h1 both speak HTTP/1.1. A third contender, portmux with `http2: false`
 *    (an https server inside, like plain Fastify's), tells the cost of the HTTP/2 server's
 *    HTTP/1 fallback from the cost of the sniffing itself. Target ≥ 0.98 of plain Fastify,
 *    per CPU and in throughput; alternating rounds and same instant (bench/lib/keepalive.ts).
 */
import type { Scenario } from '../lib/context.js'
import { KEEPALIVE_METHOD, keepAlive } from '../lib/keepalive.js'
import { startNode } from '../lib/servers.js'

export const httpsKeepAlive: Scenario = {
  id: 'https-keepalive',
  title: '1. HTTPS keep-alive',
  method: 'Fastify + `serverFactory({ tls, http: \'redirect\' })` (h2 and HTTP/1.1 by ALPN, the default) vs `Fastify({ https })`, both serving `GET /` → `{"hello":"world"}` over HTTP/1.1 (ALPN http/1.1 checked). ' +
    KEEPALIVE_METHOD.h1 +
    ' A third server, portmux with `http2: false` (in the CPU figures only), shows how much is the HTTP/2 server\'s HTTP/1 fallback rather than the sniffing.',
  run: async (ctx) => {
    const profile = ctx.profileDir !== null
    return await keepAlive(ctx, {
      item: '1',
      scheme: 'https',
      protocol: 'h1',
      label: 'HTTPS keep-alive',
      peer: 'fastify https',
      target: 0.98,
      contenders: [
        ['portmux', async () => await startNode(ctx, 'portmux', 'portmux-fastify.js', { tls: ctx.tls, http: 'redirect' }, { profile })],
        ['fastify https', async () => await startNode(ctx, 'fastify-https', 'fastify-https.js', { tls: ctx.tls }, { profile })],
        ['portmux (http2: false)', async () => await startNode(ctx, 'portmux-h1', 'portmux-fastify.js', { tls: ctx.tls, http: 'redirect', http2: false }, { profile })]
      ]
    })
  }
}
