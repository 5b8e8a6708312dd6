/**
 * 1. HTTPS keep-alive requests/s: Fastify through portmux (`serverFactory`, TLS port,
 *    defaults: h2 and HTTP/1.1 by ALPN) vs plain Fastify with its `https` option. wrk and
 *    h2load --h1 both speak HTTP/1.1. A third contender, portmux with `http2: false`
 *    (an https server inside, like plain Fastify's), tells the cost of the HTTP/2 server's
 *    HTTP/1 fallback from the cost of the sniffing itself. Target ≥ 0.97.
 */
import type { Scenario } from '../lib/context.js'
import { keepAlive } from '../lib/keepalive.js'
import { startNode } from '../lib/servers.js'

export const httpsKeepAlive: Scenario = {
  id: 'https-keepalive',
  title: '1. HTTPS keep-alive',
  method: 'Fastify + `serverFactory({ tls, http: \'redirect\' })` (h2 and HTTP/1.1 by ALPN, the default) vs `Fastify({ https })`, both serving `GET /` → `{"hello":"world"}` over HTTP/1.1. Saturating: `wrk -t1 -c32 --latency`. Fixed rate: `h2load --h1 -c16 --rps 100` (1,600 req/s offered), server CPU (utime+stime from /proc) over the run; the figure is requests per server CPU-second. A third server, portmux with `http2: false` (in the fixed-rate CPU figure only), shows how much is the HTTP/2 server\'s HTTP/1 fallback rather than the sniffing.',
  run: async (ctx) => {
    const profile = ctx.profileDir !== null
    return await keepAlive(ctx, {
      item: '1',
      scheme: 'https',
      label: 'HTTPS keep-alive',
      peer: 'fastify https',
      target: 0.97,
      contenders: [
        ['portmux', async () => await startNode(ctx, 'portmux', 'portmux-fastify.js', { tls: ctx.tls, http: 'redirect' }, { profile })],
        ['fastify https', async () => await startNode(ctx, 'fastify-https', 'fastify-https.js', { tls: ctx.tls }, { profile })],
        ['portmux (http2: false)', async () => await startNode(ctx, 'portmux-h1', 'portmux-fastify.js', { tls: ctx.tls, http: 'redirect', http2: false }, { profile })]
      ]
    })
  }
}
