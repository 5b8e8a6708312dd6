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
import { execFile } from 'node:child_process'
import { access, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { promisify } from 'node:util'
import {
  checkDirectRefused, checkHeaders, checkHttps, checkPlaintext, checkRaw,
  findProgram, freePort, startDaemon, startMux, tempDir, type Mux
} from './load-balancer.js'

const run = promisify(execFile)

/** How this nginx gets its stream module: compiled in, a module file to load, or not at all. */
async function streamModule (nginx: string): Promise<{ load: string | null } | { missing: string }> {
  // `nginx -V` prints its configure arguments on stderr.
  const { stdout, stderr } = await run(nginx, ['-V'])
  const configure = stdout + stderr
  if (/--with-stream(?=\s|$)/.test(configure)) return { load: null }
  if (!configure.includes('--with-stream=dynamic')) return { missing: 'this nginx was built without the stream module' }
  const modules = /--modules-path=(\S+)/.exec(configure)?.[1] ?? '/usr/lib/nginx/modules'
  const file = path.join(modules, 'ngx_stream_module.so')
  try {
    await access(file)
    return { load: file }
  } catch {
    return { missing: `${file} is missing (Debian package: libnginx-mod-stream)` }
  }
}

const nginx = await findProgram('nginx')
const stream = nginx === null ? null : await streamModule(nginx)
const skip = nginx === null
  ? 'nginx is not installed (Debian packages: nginx libnginx-mod-stream)'
  : stream !== null && 'missing' in stream ? stream.missing : false
const T = { timeout: 30_000, skip }

/** The mux, and nginx in front of it sending PROXY v1; nginx's port. */
async function setup (t: TestContext): Promise<{ mux: Mux, port: number }> {
  const mux = await startMux(t)
  const port = await freePort()
  const dir = await tempDir(t, 'portmux-nginx-')
  const cfg = path.join(dir, 'nginx.conf')
  const errorLog = path.join(dir, 'error.log')
  const load = stream !== null && 'load' in stream && stream.load !== null ? [`load_module ${stream.load};`] : []
  await writeFile(cfg, [
    ...load,
    'worker_processes 1;',
    `error_log ${errorLog} info;`,
    `lock_file ${path.join(dir, 'nginx.lock')};`,
    'events { worker_connections 256; }',
    'stream {',
    '  server {',
    `    listen 127.0.0.1:${port};`,
    `    proxy_pass 127.0.0.1:${mux.port};`,
    '    proxy_protocol on;',
    '    proxy_connect_timeout 5s;',
    '  }',
    '}',
    ''
  ].join('\n'))
  await startDaemon(t, nginx ?? 'nginx', [
    '-p', dir + '/',
    '-c', cfg,
    '-e', errorLog,
    '-g', `daemon off; pid ${path.join(dir, 'nginx.pid')};`
  ], [port])
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
