/**
 * 2. Plaintext keep-alive requests on portmux's TLS port with `http: 'serve'` vs plain
 *    Fastify over http. Target ≥ 0.98 of plain Fastify, per CPU and in throughput;
 *    alternating rounds and same instant (bench/lib/keepalive.ts).
 */
import type { Scenario } from '../lib/context.js'
import { KEEPALIVE_METHOD, keepAlive } from '../lib/keepalive.js'
import { startNode } from '../lib/servers.js'

export const plainKeepAlive: Scenario = {
  id: 'plain-keepalive',
  title: '2. Plaintext keep-alive (http: serve)',
  method: 'portmux on its TLS port with `http: \'serve\'`, plaintext HTTP/1.1 keep-alive, vs `Fastify()` over http. ' + KEEPALIVE_METHOD.h1,
  run: async (ctx) => {
    const profile = ctx.profileDir !== null
    return await keepAlive(ctx, {
      item: '2',
      scheme: 'http',
      protocol: 'h1',
      label: 'Plaintext keep-alive, `http: \'serve\'`',
      peer: 'fastify http',
      target: 0.98,
      contenders: [
        ['portmux', async () => await startNode(ctx, 'portmux-serve', 'portmux-fastify.js', { tls: ctx.tls, http: 'serve' }, { profile })],
        ['fastify http', async () => await startNode(ctx, 'fastify-http', 'fastify-http.js', {}, { profile })]
      ]
    })
  }
}
