/**
 * A real HAProxy in front of portmux, in TCP mode, speaking PROXY v1 (`send-proxy`) and
 * v2 (`send-proxy-v2`, with the CRC32C and unique-id TLVs) to it. The client connects to
 * HAProxy from 127.0.0.2; HAProxy connects to the mux from 127.0.0.1, the only trusted
 * address, and the mux requires the header. The app seeing 127.0.0.2 proves the address
 * came through the header.
 *
 * HAProxy runs in the foreground (`-db`) from a config in a temporary directory; the test
 * skips only when the `haproxy` program is absent (Debian package `haproxy`).
 */
import { test, type TestContext } from 'node:test'
import {
  checkDirectRefused, checkHeaders, checkHttps, checkPlaintext, checkRaw,
  findProgram, freePort, startHaproxy, startMux, type Mux
} from './load-balancer.js'

const haproxy = await findProgram('haproxy')
const skip = haproxy === null ? 'haproxy is not installed (Debian package: haproxy)' : false
const T = { timeout: 30_000, skip }

type Version = 'send-proxy' | 'send-proxy-v2'

/** The mux, and HAProxy in front of it sending the header `version`; HAProxy's port. */
async function setup (t: TestContext, version: Version): Promise<{ mux: Mux, port: number }> {
  const mux = await startMux(t)
  const port = await freePort()
  const extra = version === 'send-proxy-v2' ? ' proxy-v2-options crc32c,unique-id' : ''
  await startHaproxy(t, haproxy ?? 'haproxy', port, [
    'global',
    '    maxconn 256',
    'defaults',
    '    mode tcp',
    '    timeout connect 5s',
    '    timeout client 30s',
    '    timeout server 30s',
    'frontend lb',
    `    bind 127.0.0.1:${port}`,
    '    unique-id-format %ci:%cp:%rt',
    '    default_backend mux',
    'backend mux',
    `    server portmux 127.0.0.1:${mux.port} ${version}${extra}`
  ])
  return { mux, port }
}

for (const version of ['send-proxy', 'send-proxy-v2'] as const) {
  test(`HAProxy ${version}: plaintext HTTP is redirected, and the mux saw the client's address`, T, async (t) => {
    const { mux, port } = await setup(t, version)
    await checkPlaintext(t, mux, port)
    checkHeaders(mux)
  })

  test(`HAProxy ${version}: HTTPS passes through untouched; the app sees 127.0.0.2 (HTTP/1.1 and h2)`, T, async (t) => {
    const { mux, port } = await setup(t, version)
    await checkHttps(t, mux, port)
    checkHeaders(mux)
  })

  test(`HAProxy ${version}: a raw route's info.remoteAddress is 127.0.0.2; a direct client without a header is refused`, T, async (t) => {
    const { mux, port } = await setup(t, version)
    await checkRaw(t, mux, port)
    checkHeaders(mux)
    await checkDirectRefused(t, mux)
  })
}
