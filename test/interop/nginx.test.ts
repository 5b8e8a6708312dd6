/**
 * A real nginx in front of portmux: the `stream {}` module in TCP mode with
 * `proxy_protocol on` (PROXY v1). The client connects to nginx from 127.0.0.2; nginx
 * connects to the mux from 127.0.0.1, the only trusted address, and the mux requires the
 * header. The app seeing 127.0.0.2 proves the address came through the header.
 *
 * nginx runs in the foreground (`daemon off`) with its config, pid file, lock file and error
 * log in a temporary directory (`-p`, `-c`, `-e`, `-g`), so nothing under /etc, /run or
 * /var/log is touched. Debian builds the stream module as a dynamic module (package
 * `libnginx-mod-stream`), loaded here with `load_module` from nginx's modules path; a build
 * with the module compiled in needs no `load_module`. The tests skip only when `nginx` is
 * absent or has no stream module at all.
 */
import { test, type TestContext } from 'node:test'
import {
  checkDirectRefused, checkHeaders, checkHttps, checkPlaintext, checkRaw,
  findNginxStream, freePort, startMux, startNginx, type Mux
} from './load-balancer.js'

const nginx = await findNginxStream()
const T = { timeout: 30_000, skip: 'missing' in nginx ? nginx.missing : false }

/** The mux, and nginx in front of it sending PROXY v1; nginx's port. */
async function setup (t: TestContext): Promise<{ mux: Mux, port: number }> {
  const mux = await startMux(t)
  const port = await freePort()
  await startNginx(t, nginx, port, [
    `listen 127.0.0.1:${port};`,
    `proxy_pass 127.0.0.1:${mux.port};`,
    'proxy_protocol on;',
    'proxy_connect_timeout 5s;'
  ])
  return { mux, port }
}

test('nginx proxy_protocol: plaintext HTTP is redirected, and the mux saw the client\'s address', T, async (t) => {
  const { mux, port } = await setup(t)
  await checkPlaintext(t, mux, port)
  checkHeaders(mux)
})

test('nginx proxy_protocol: HTTPS passes through untouched; the app sees 127.0.0.2 (HTTP/1.1 and h2)', T, async (t) => {
  const { mux, port } = await setup(t)
  await checkHttps(t, mux, port)
  checkHeaders(mux)
})

test('nginx proxy_protocol: a raw route\'s info.remoteAddress is 127.0.0.2; a direct client without a header is refused', T, async (t) => {
  const { mux, port } = await setup(t)
  await checkRaw(t, mux, port)
  checkHeaders(mux)
  await checkDirectRefused(t, mux)
})
