/**
 * The whole sniff engine as a fuzz target: the decision the pipeline makes (`classify`)
 * over a route table using every kind of match, fed the input in chunks the way bytes
 * arrive, with the final judgement at the end — the same calls a connection makes.
 */
import { classify, type ClassifyState, type Decision } from '../../src/core/classify.js'
import { compileRoute, type CompiledRoute, type RouteTarget } from '../../src/core/match.js'
import { detectors } from '../../src/sniff/index.js'
import type { ProtocolName } from '../../src/sniff/types.js'
import type { TcpRoute } from '../../src/types.js'
import type { FuzzTarget } from './fuzz.js'

const noop = (): void => {}

/** The engine is fuzzed for its decisions only: no connection is ever delivered. */
function decideOnly (): RouteTarget {
  return { deliver: () => { throw new Error('the decision engine delivers nothing') }, handshake: false }
}

function routeTable (): CompiledRoute[] {
  const routes: Array<[string, TcpRoute]> = [
    ['sni', { match: { tls: { sni: ['a.test', '*.b.test'] } }, handler: noop }],
    ['alpn', { match: { tls: { alpn: ['h2', 'myproto'] } }, handler: noop }],
    ['prefix', { match: { prefix: 'ECHO ' }, handler: noop }],
    ['regexp', { match: /^[A-Z]{4} \/[^ ]* HTTP\/1\.[01]\r?\n/, handler: noop }],
    ['function', { match: (b) => b.length < 4 ? 'more' : b[3] === 0x7f ? 'match' : 'no', handler: noop }],
    ['list', { match: ['timeout', { prefix: Uint8Array.of(0, 1, 2) }], handler: noop }],
    ...(Object.keys(detectors) as ProtocolName[]).map((name): [string, TcpRoute] => [name, { match: name, handler: noop }])
  ]
  return routes.map(([name, route]) => compileRoute(name, route, noop, decideOnly))
}

function decisionName (d: Decision): string {
  return typeof d === 'object' ? 'route:' + d.name : d
}

/** Feed `bytes` in up to four chunks chosen from the input itself, then judge finally. */
export function engineTarget (): FuzzTarget {
  const routes = routeTable()
  const options = { tls: true, h2c: true }
  return {
    name: 'engine',
    run: (bytes: Uint8Array) => {
      const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
      const state: ClassifyState = { bytes: buf.subarray(0, 0), protocol: '', hello: undefined, helloLength: -1, nextRoute: 0, maxSniffBytes: 16384 }
      const cuts = [bytes.length >> 3, bytes.length >> 2, bytes.length >> 1, bytes.length]
      for (const end of cuts) {
        if (end === 0) continue
        state.bytes = buf.subarray(0, end)
        const d = classify(state, routes, options, false)
        if (d !== 'more') return decisionName(d)
      }
      return decisionName(classify(state, routes, options, true))
    }
  }
}
