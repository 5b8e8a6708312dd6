/**
 * Every example starts, answers and stops: run as a user would run it, driven by real
 * clients (curl and a raw TCP client).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { exchange, startExample } from './helpers.js'


function curl (...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('curl', ['-s', '--max-time', '10', ...args], (err, stdout) => err !== null ? reject(err) : resolve(stdout))
  })
}


for (const [file, httpVersion] of [['demo.js', '2'], ['express.js', '1.1']]) {
  test(`examples/${file}: HTTPS, redirect and the ECHO route on one port`, async (t) => {
    const { port } = await startExample(t, file)
    const body = JSON.parse(await curl('-k', '--http1.1', `https://127.0.0.1:${port}/`)) as Record<string, unknown>
    assert.equal(body.protocol, 'https')
    // curl asks for h2 by ALPN; the Express example offers HTTP/1.1 only.
    assert.equal(await curl('-k', '--http2', '-o', '/dev/null', '-w', '%{http_version}', `https://127.0.0.1:${port}/`), httpVersion)
    const head = await curl('-i', `http://127.0.0.1:${port}/a?b=1`)
    assert.match(head, /^HTTP\/1\.1 301/)
    assert.match(head, new RegExp(`\\r\\nlocation: https://127\\.0\\.0\\.1:${port}/a\\?b=1\\r\\n`, 'i'))
    const echoed = await exchange(t, port, 'ECHO hi\n', { end: true })
    assert.equal(echoed, 'ECHO hi\n')
  })
}
