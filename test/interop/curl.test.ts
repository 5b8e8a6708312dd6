/**
 * The real curl against a real listener: HTTPS by ALPN (h2 and HTTP/1.1), the plaintext
 * redirect (shown and followed), and h2c prior knowledge. curl runs through the async
 * `execFile`, so the server in this process keeps serving while it waits.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { createServer } from '../../src/node.js'
import type { MuxOptions } from '../../src/types.js'
import { listen, testCertificate } from '../helpers.js'

const run = promisify(execFile)
const T = { timeout: 20_000 }

async function which (name: string): Promise<boolean> {
  try {
    await run('which', [name])
    return true
  } catch {
    return false
  }
}
const hasCurl = await which('curl')
const skip = hasCurl ? false : 'curl is not installed'

async function curl (...args: string[]): Promise<string> {
  const { stdout } = await run('curl', ['--max-time', '10', ...args], { timeout: 15_000 })
  return stdout
}

function handler (req: IncomingMessage, res: ServerResponse): void {
  const encrypted = (req.socket as { encrypted?: boolean }).encrypted === true
  req.resume()
  req.on('end', () => {
    res.setHeader('content-type', 'text/plain')
    res.end(`hello ${req.method ?? ''} ${req.url ?? ''} http/${req.httpVersion} ${encrypted ? 'tls' : 'plain'}\n`)
  })
}

async function serve (t: TestContext, options: MuxOptions): Promise<number> {
  return await listen(t, createServer(handler, options))
}

async function tlsPort (t: TestContext, options: Omit<MuxOptions, 'tls'> = {}): Promise<number> {
  return await serve(t, { tls: await testCertificate(), ...options })
}

test('curl -sk https:// → 200 with the body', { ...T, skip }, async (t) => {
  const port = await tlsPort(t)
  const out = await curl('-sk', '-w', '\n%{http_code}', `https://127.0.0.1:${port}/`)
  const [body, code] = out.split('\n').filter((l) => l !== '')
  assert.equal(code, '200')
  assert.match(body, /^hello GET \/ http\/(1\.1|2\.0) tls$/)
})

test('curl -sk --http2 → HTTP/2', { ...T, skip }, async (t) => {
  const port = await tlsPort(t)
  const out = await curl('-sk', '--http2', '-w', '\n%{http_version} %{http_code}', `https://localhost:${port}/two?x=1`)
  const [body, meta] = out.split('\n').filter((l) => l !== '')
  assert.equal(meta, '2 200')
  assert.equal(body, 'hello GET /two?x=1 http/2.0 tls')
})

test('curl -sk --http1.1 → HTTP/1.1', { ...T, skip }, async (t) => {
  const port = await tlsPort(t)
  const out = await curl('-sk', '--http1.1', '-w', '\n%{http_version} %{http_code}', `https://127.0.0.1:${port}/one`)
  const [body, meta] = out.split('\n').filter((l) => l !== '')
  assert.equal(meta, '1.1 200')
  assert.equal(body, 'hello GET /one http/1.1 tls')
})

test('curl -sk --http1.1 POST with a body over HTTPS', { ...T, skip }, async (t) => {
  const port = await tlsPort(t)
  const out = await curl('-sk', '--http1.1', '--data-binary', 'x'.repeat(5000), '-w', '\n%{http_code}', `https://127.0.0.1:${port}/post`)
  assert.deepEqual(out.split('\n').filter((l) => l !== ''), ['hello POST /post http/1.1 tls', '200'])
})

test('curl -si http:// → 301 to the https URL on the same port, path and query unchanged', { ...T, skip }, async (t) => {
  const port = await tlsPort(t)
  const out = await curl('-si', `http://127.0.0.1:${port}/a?b=1`)
  const [head] = out.split('\r\n\r\n')
  const lines = head.split('\r\n')
  assert.match(lines[0], /^HTTP\/1\.1 301 /)
  const location = lines.find((l) => /^location:/i.test(l))
  assert.equal(location?.replace(/^location:\s*/i, ''), `https://127.0.0.1:${port}/a?b=1`)
  assert.ok(lines.some((l) => /^connection:\s*close$/i.test(l)), head)
})

test('curl POST over http:// → 308', { ...T, skip }, async (t) => {
  const port = await tlsPort(t)
  const out = await curl('-s', '-o', '/dev/null', '-d', 'a=1', '-w', '%{http_code} %{redirect_url}', `http://localhost:${port}/form`)
  assert.equal(out, `308 https://localhost:${port}/form`)
})

test('curl -sL -k http:// follows the redirect to the https answer', { ...T, skip }, async (t) => {
  const port = await tlsPort(t)
  const out = await curl('-sL', '-k', '-w', '\n%{num_redirects} %{url_effective} %{http_code}', `http://127.0.0.1:${port}/follow?me=1`)
  const [body, meta] = out.split('\n').filter((l) => l !== '')
  assert.equal(meta, `1 https://127.0.0.1:${port}/follow?me=1 200`)
  assert.match(body, /^hello GET \/follow\?me=1 http\/(1\.1|2\.0) tls$/)
})

test('curl --http2-prior-knowledge on a plaintext port → served over h2c', { ...T, skip }, async (t) => {
  const port = await serve(t, {})
  const out = await curl('-s', '--http2-prior-knowledge', '-w', '\n%{http_version} %{http_code}', `http://127.0.0.1:${port}/h2c`)
  const [body, meta] = out.split('\n').filter((l) => l !== '')
  assert.equal(meta, '2 200')
  assert.equal(body, 'hello GET /h2c http/2.0 plain')
})

test('curl on a plaintext port: HTTP/1.1 is served, not redirected', { ...T, skip }, async (t) => {
  const port = await serve(t, { http: 'redirect' })
  const out = await curl('-s', '-w', '\n%{http_version} %{http_code}', `http://127.0.0.1:${port}/p`)
  assert.deepEqual(out.split('\n').filter((l) => l !== ''), ['hello GET /p http/1.1 plain', '1.1 200'])
})

test('curl --http2-prior-knowledge on a TLS port in redirect mode → 301 over h2c', { ...T, skip }, async (t) => {
  const port = await tlsPort(t)
  const out = await curl('-s', '--http2-prior-knowledge', '-o', '/dev/null', '-w', '%{http_version} %{http_code} %{redirect_url}', `http://127.0.0.1:${port}/x?y=2`)
  assert.equal(out, `2 301 https://127.0.0.1:${port}/x?y=2`)
})

test('curl http:// with http: "reject" → 400', { ...T, skip }, async (t) => {
  const port = await tlsPort(t, { http: 'reject' })
  const out = await curl('-s', '-o', '/dev/null', '-w', '%{http_code} %{redirect_url}', `http://127.0.0.1:${port}/`)
  assert.equal(out, '400 ')
})

test('curl http:// with http: "serve" → served in plaintext on the TLS port', { ...T, skip }, async (t) => {
  const port = await tlsPort(t, { http: 'serve' })
  const out = await curl('-s', `http://127.0.0.1:${port}/s`)
  assert.equal(out, 'hello GET /s http/1.1 plain\n')
})
