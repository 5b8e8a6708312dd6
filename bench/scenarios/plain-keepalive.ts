/**
 * 2. Plaintext keep-alive requests/s on portmux's TLS port with `http: 'serve'` vs plain
 *    Fastify over http. Target ≥ 0.97.
 */
import type { Scenario } from '../lib/context.js'
import { keepAlive } from '../lib/keepalive.js'
import { startNode } from '../lib/servers.js'

export const plainKeepAlive: Scenario = {
  id: 'plain-keepalive',
  title: '2. Plaintext keep-alive (http: serve)',
  method: 'portmux on its TLS port with `http: \'serve\'`, plaintext HTTP/1.1 keep-alive, vs `Fastify()` over http. Same two measures as item 1 (`wrk -t1 -c32`; `h2load --h1 -c16 --rps 100` with server CPU).',
  run: async (ctx) => {
    const profile = ctx.profileDir !== null
    return await keepAlive(ctx, {
      item: '2',
      scheme: 'http',
      label: 'Plaintext keep-alive, `http: \'serve\'`',
      peer: 'fastify http',
      target: 0.97,
      contenders: [
        ['portmux', async () => await startNode(ctx, 'portmux-serve', 'portmux-fastify.js', { tls: ctx.tls, http: 'serve' }, { profile })],
        ['fastify http', async () => await startNode(ctx, 'fastify-http', 'fastify-http.js', {}, { profile })]
      ]
    })
  }
}
