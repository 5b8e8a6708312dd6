/**
 * 1b. HTTP/2 keep-alive over TLS (ALPN h2): Fastify through portmux (`serverFactory`, the
 *     default `http2: true`) vs `Fastify({ http2: true, https })`, both serving `GET /`.
 *     `h2load -c32 -m10`: 32 connections, 10 concurrent streams each. Target ≥ 0.98 of
 *     plain Fastify, per CPU and in throughput; alternating rounds (saturating) and same
 *     instant (saturating and at a fixed rate) — bench/lib/keepalive.ts.
 */
import type { Scenario } from '../lib/context.js'
import { KEEPALIVE_METHOD, keepAlive } from '../lib/keepalive.js'
import { startNode } from '../lib/servers.js'

export const h2KeepAlive: Scenario = {
  id: 'h2-keepalive',
  title: '1b. HTTP/2 keep-alive',
  method: 'Fastify + `serverFactory({ tls, http: \'redirect\' })` (h2 and HTTP/1.1 by ALPN) vs `Fastify({ http2: true, https })`, both serving `GET /` → `{"hello":"world"}` over HTTP/2 (ALPN h2 checked). ' + KEEPALIVE_METHOD.h2,
  run: async (ctx) => {
    const profile = ctx.profileDir !== null
    return await keepAlive(ctx, {
      item: '1b',
      scheme: 'https',
      protocol: 'h2',
      label: 'HTTP/2 keep-alive',
      peer: 'fastify http2',
      target: 0.98,
      contenders: [
        ['portmux', async () => await startNode(ctx, 'portmux-h2', 'portmux-fastify.js', { tls: ctx.tls, http: 'redirect' }, { profile })],
        ['fastify http2', async () => await startNode(ctx, 'fastify-http2', 'fastify-https.js', { tls: ctx.tls, http2: true }, { profile })]
      ]
    })
  }
}
