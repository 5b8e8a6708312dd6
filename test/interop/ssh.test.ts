/**
 * OpenSSH through the mux to a real sshd, while curl gets HTTPS from the same port: the
 * sslh use case, with real programs on both ends.
 *
 * The test starts its own sshd on a free loopback port with a throwaway configuration,
 * host key and client key (as root, sshd needs /run/sshd; as another user, it can only
 * log that same user in, which is the user this test logs in as). No PROXY header is
 * sent: sshd does not speak the PROXY protocol.
 *
 * Needs: openssh-server (/usr/sbin/sshd), openssh-client (ssh, ssh-keygen), curl.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir, userInfo } from 'node:os'
import { join } from 'node:path'
import { createServer } from '../../src/node.js'
import { listen, testCertificate } from '../helpers.js'
import { findProgram, freePort, start } from '../spawn.js'

const SSHD = process.env.SSHD ?? '/usr/sbin/sshd'

/** Why the tests cannot run here, or `false`. */
async function missing (): Promise<string | false> {
  if (await findProgram(SSHD) === null) return `${SSHD} not found (apt-get install openssh-server)`
  for (const tool of ['ssh', 'ssh-keygen']) {
    if (await findProgram(tool) === null) return `${tool} not found (apt-get install openssh-client)`
  }
  if (await findProgram('curl') === null) return 'curl not found (apt-get install curl)'
  return false
}
const skip = await missing()

interface Run { code: number | null, stdout: string, bytes: Buffer, stderr: string }

/** Run a program (never the Sync variants: the mux under test lives in this process). */
function run (file: string, args: string[], input?: Buffer): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(file, args, { timeout: 30_000, maxBuffer: 64 * 1024 * 1024, encoding: 'buffer' }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : null
      resolve({ code, stdout: stdout.toString('utf8'), bytes: stdout, stderr: stderr.toString('utf8') })
    })
    // A program that exits before reading all its input must not crash the test process.
    child.stdin?.on('error', () => {})
    if (input !== undefined) child.stdin?.end(input)
    else child.stdin?.end()
  })
}

interface Sshd { port: number, key: string, user: string, dir: string }

/** A private sshd on 127.0.0.1 with a fresh host key, accepting one fresh client key. Stopped after the test. */
async function startSshd (t: TestContext): Promise<Sshd> {
  const dir = await mkdtemp(join(tmpdir(), 'portmux-sshd-'))
  t.after(async () => { await rm(dir, { recursive: true, force: true }) })
  const hostKey = join(dir, 'host_ed25519')
  const key = join(dir, 'client_ed25519')
  for (const [file, comment] of [[hostKey, 'portmux-test-host'], [key, 'portmux-test-client']]) {
    const r = await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file])
    assert.equal(r.code, 0, `ssh-keygen: ${r.stderr}`)
  }
  await writeFile(join(dir, 'authorized_keys'), await readFile(key + '.pub'))
  if (process.getuid?.() === 0) await mkdir('/run/sshd', { recursive: true, mode: 0o755 })

  let lastError = ''
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort()
    const config = join(dir, 'sshd_config')
    await writeFile(config, [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${hostKey}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'PermitRootLogin prohibit-password',
      'PidFile none',
      'StrictModes no',
      'LogLevel INFO',
      ''
    ].join('\n'))
    try {
      await start(t, SSHD, ['-D', '-e', '-f', config], { ready: new RegExp(`Server listening on 127\\.0\\.0\\.1 port ${port}\\b`) })
      return { port, key, user: userInfo().username, dir }
    } catch (err) {
      lastError = (err as Error).message
    }
  }
  throw new Error(`sshd did not start: ${lastError}`)
}

function sshArgs (sshd: Sshd, port: number, ...command: string[]): string[] {
  return [
    '-F', '/dev/null',
    '-p', String(port),
    '-i', sshd.key,
    '-o', 'IdentitiesOnly=yes',
    '-o', 'StrictHostKeyChecking=no',
    '-o', 'UserKnownHostsFile=/dev/null',
    '-o', 'BatchMode=yes',
    '-o', 'ConnectTimeout=10',
    '-o', 'LogLevel=ERROR',
    `${sshd.user}@127.0.0.1`,
    ...command
  ]
}

async function muxForSsh (t: TestContext, sshdPort: number): Promise<{ port: number, server: ReturnType<typeof createServer> }> {
  const { key, cert } = await testCertificate()
  const server = createServer((req, res) => {
    res.setHeader('content-type', 'text/plain')
    res.end(`hello from the app over ${(req.socket as { encrypted?: boolean }).encrypted === true ? 'https' : 'http'}\n`)
  }, { tls: { key, cert }, routes: { ssh: { match: 'ssh', proxy: { port: sshdPort } } } })
  const port = await listen(t, server)
  return { port, server }
}

test('ssh through the mux reaches a real sshd; curl gets HTTPS from the same port', { skip, timeout: 60_000 }, async (t) => {
  const sshd = await startSshd(t)
  // The sshd works on its own (so a failure below is the mux's).
  const direct = await run('ssh', sshArgs(sshd, sshd.port, 'echo', 'direct'))
  assert.equal(direct.stdout, 'direct\n', `direct ssh failed: ${direct.stderr}`)

  const { port, server } = await muxForSsh(t, sshd.port)
  const viaMux = await run('ssh', sshArgs(sshd, port, 'echo', 'ok'))
  assert.equal(viaMux.code, 0, viaMux.stderr)
  assert.equal(viaMux.stdout, 'ok\n')

  const https = await run('curl', ['-sk', '--max-time', '10', `https://127.0.0.1:${port}/`])
  assert.equal(https.code, 0, https.stderr)
  assert.equal(https.stdout, 'hello from the app over https\n')
  const redirect = await run('curl', ['-si', '--max-time', '10', `http://127.0.0.1:${port}/x`])
  assert.match(redirect.stdout, /^HTTP\/1\.1 301/)

  const s = server.stats()
  assert.equal(s.decided.routes.ssh, 1)
  assert.equal(s.decided.https, 1)
  assert.equal(s.proxy.connected, 1)
})

test('ssh through the mux carries bulk data both ways (8 MiB up to a file, the same 8 MiB back)', { skip, timeout: 60_000 }, async (t) => {
  const sshd = await startSshd(t)
  const { port, server } = await muxForSsh(t, sshd.port)
  const data = randomBytes(8 * 1024 * 1024)
  const blob = join(sshd.dir, 'blob')
  const up = await run('ssh', sshArgs(sshd, port, 'cat', '>', blob, '&&', 'sha256sum', blob), data)
  assert.equal(up.code, 0, up.stderr)
  assert.equal(up.stdout.split(' ')[0], createHash('sha256').update(data).digest('hex'))
  const down = await run('ssh', sshArgs(sshd, port, 'cat', blob))
  assert.equal(down.code, 0, down.stderr)
  assert.equal(down.bytes.length, data.length)
  assert.ok(down.bytes.equals(data), 'the same bytes came back')
  assert.equal(server.stats().proxy.connected, 2)
})
