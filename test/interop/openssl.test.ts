/**
 * `openssl s_client` against a real listener: the ALPN it negotiates, and a raw HTTP/1.1
 * request written through it. s_client runs as a child process (spawn, never a sync call),
 * is given its input, and is killed if it outlives the test's needs.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { execFile, spawn } from 'node:child_process'
import { promisify } from 'node:util'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { createServer } from '../../src/node.js'
import type { MuxOptions } from '../../src/types.js'
import { listen, testCertificate } from '../helpers.js'

const T = { timeout: 20_000 }

async function which (name: string): Promise<boolean> {
  try {
    await promisify(execFile)('which', [name])
    return true
  } catch {
    return false
  }
}
const skip = (await which('openssl')) ? false : 'openssl is not installed'

function handler (req: IncomingMessage, res: ServerResponse): void {
  res.setHeader('content-type', 'text/plain')
  res.end(`hello ${req.url ?? ''} http/${req.httpVersion}\n`)
}

async function tlsPort (t: TestContext, options: Omit<MuxOptions, 'tls'> = {}): Promise<number> {
  return await listen(t, createServer(handler, { tls: await testCertificate(), ...options }))
}

/**
 * Run `openssl s_client` with `args`, write `input` to its stdin (then end it unless `keepOpen`),
 * and collect stdout + stderr until it exits, or until `until` matches stdout (then kill it).
 */
function sClient (t: TestContext, args: string[], input: string, opts: { until?: RegExp, keepOpen?: boolean } = {}): Promise<{ stdout: string, stderr: string, code: number | null }> {
  const child = spawn('openssl', ['s_client', ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
  t.after(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('latin1')
  child.stderr.setEncoding('latin1')
  return new Promise((resolve, reject) => {
    const killer = setTimeout(() => { child.kill('SIGKILL') }, 10_000)
    child.stdout.on('data', (c: string) => {
      stdout += c
      if (opts.until?.test(stdout) === true) child.kill('SIGTERM')
    })
    child.stderr.on('data', (c: string) => { stderr += c })
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(killer)
      resolve({ stdout, stderr, code })
    })
    child.stdin.on('error', () => {})
    child.stdin.write(input)
    if (opts.keepOpen !== true) child.stdin.end()
  })
}

test('s_client -alpn h2 → ALPN protocol: h2', { ...T, skip }, async (t) => {
  const port = await tlsPort(t)
  const r = await sClient(t, ['-connect', `127.0.0.1:${port}`, '-servername', 'localhost', '-alpn', 'h2'], '')
  assert.match(r.stdout, /ALPN protocol: h2\b/, r.stdout + r.stderr)
  assert.match(r.stdout, /BEGIN CERTIFICATE/)
})

test('s_client -alpn http/1.1 → ALPN protocol: http/1.1', { ...T, skip }, async (t) => {
  const port = await tlsPort(t)
  const r = await sClient(t, ['-connect', `127.0.0.1:${port}`, '-servername', 'localhost', '-alpn', 'http/1.1'], '')
  assert.match(r.stdout, /ALPN protocol: http\/1\.1/, r.stdout + r.stderr)
})

test('s_client -alpn h2,http/1.1 → the server prefers h2; with http2: false → http/1.1', { ...T, skip }, async (t) => {
  const port = await tlsPort(t)
  const both = await sClient(t, ['-connect', `127.0.0.1:${port}`, '-servername', 'localhost', '-alpn', 'h2,http/1.1'], '')
  assert.match(both.stdout, /ALPN protocol: h2\b/, both.stdout + both.stderr)
  const h1only = await tlsPort(t, { http2: false })
  const r = await sClient(t, ['-connect', `127.0.0.1:${h1only}`, '-servername', 'localhost', '-alpn', 'h2,http/1.1'], '')
  assert.match(r.stdout, /ALPN protocol: http\/1\.1/, r.stdout + r.stderr)
})

test('s_client -alpn h2 against http2: false → no_application_protocol', { ...T, skip }, async (t) => {
  const port = await tlsPort(t, { http2: false })
  const r = await sClient(t, ['-connect', `127.0.0.1:${port}`, '-servername', 'localhost', '-alpn', 'h2'], '')
  assert.match(r.stdout + r.stderr, /no application protocol|alert number 120/i, r.stdout + r.stderr)
  assert.doesNotMatch(r.stdout, /ALPN protocol: h2\b/)
})

test('s_client without ALPN: no ALPN negotiated, the handshake completes', { ...T, skip }, async (t) => {
  const port = await tlsPort(t)
  const r = await sClient(t, ['-connect', `127.0.0.1:${port}`, '-servername', 'localhost'], '')
  assert.match(r.stdout, /No ALPN negotiated/, r.stdout + r.stderr)
  assert.match(r.stdout, /Verify return code|SSL-Session/)
})

test('a raw GET through s_client gets HTTP/1.1 200', { ...T, skip }, async (t) => {
  const port = await tlsPort(t)
  const r = await sClient(t, ['-connect', `127.0.0.1:${port}`, '-servername', 'localhost', '-quiet', '-ign_eof'],
    'GET /raw?x=1 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')
  assert.match(r.stdout, /^HTTP\/1\.1 200 /m, r.stdout + r.stderr)
  assert.match(r.stdout, /hello \/raw\?x=1 http\/1\.1/)
})

test('a keep-alive GET through s_client -alpn http/1.1 gets its answer while the connection stays open', { ...T, skip }, async (t) => {
  const port = await tlsPort(t)
  const r = await sClient(t, ['-connect', `127.0.0.1:${port}`, '-servername', 'localhost', '-alpn', 'http/1.1', '-quiet'],
    'GET /ka HTTP/1.1\r\nHost: localhost\r\n\r\n', { until: /hello \/ka http\/1\.1\n/, keepOpen: true })
  assert.match(r.stdout, /^HTTP\/1\.1 200 /m, r.stdout + r.stderr)
  assert.match(r.stdout, /hello \/ka http\/1\.1/)
})
