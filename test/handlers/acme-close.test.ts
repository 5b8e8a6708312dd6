/**
 * Closing in the middle of an order: the server (and the process) is not held up by the
 * waits between looks at a pending challenge, and once the manager's stop() has resolved
 * nothing touches storage any more — the order's lock is given up, its challenge files are
 * gone, and the directory can be removed at once.
 *
 * Pebble's validations go to a port that accepts and never answers, so the challenge stays
 * pending for as long as the test needs.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import net, { type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { AcmeManager } from '../../src/handlers/acme/manager.js'
import { createServer } from '../../src/node.js'
import type { AcmeOptions } from '../../src/types.js'
import { caDirectoryName } from '../../src/handlers/acme/storage.js'
import type { PortmuxError } from '../../src/errors.js'
import { until } from '../helpers.js'
import { freePort, noPebble, startPebble } from '../interop/pebble.js'
import { start } from '../spawn.js'

const fixture = fileURLToPath(new URL('./acme-close-fixture.js', import.meta.url))
const DOMAIN = 'close.portmux.test'

/** A port that accepts connections and never answers (Pebble's validations wait there). */
async function silentPort (t: TestContext): Promise<number> {
  const sockets = new Set<net.Socket>()
  const server = net.createServer((socket) => {
    sockets.add(socket)
    socket.on('error', () => {})
    socket.on('close', () => sockets.delete(socket))
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.after(() => {
    for (const socket of sockets) socket.destroy()
    server.close()
  })
  return (server.address() as AddressInfo).port
}

async function tempDir (t: TestContext): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'portmux-acme-close-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  return dir
}

test('close() while a challenge is pending: the process exits at once, not after the wait before the next look', { skip: noPebble, timeout: 60_000 }, async (t) => {
  const silent = await silentPort(t)
  const pebble = await startPebble(t, { httpPort: silent, tlsPort: silent })
  const dir = await tempDir(t)
  await writeFile(path.join(dir, 'ca.pem'), pebble.ca)
  const app = await start(t, process.execPath, [fixture], {
    env: { PORT: String(await freePort()), DOMAIN, DIRECTORY: pebble.directory, CA_FILE: path.join(dir, 'ca.pem'), STORAGE: path.join(dir, 'storage'), DEBUG: 'acme-client' },
    ready: /^listening$/m,
    within: 30_000,
    signal: 'SIGKILL'
  })
  // acme-client's debug log: the challenge was looked at and is still pending; the next look is a minute away.
  await until(() => /Item has status: (pending|processing)/.test(app.output()), 30_000, 'a look at the pending challenge')
  app.child.kill('SIGUSR2')
  // Only a process held up by the wait before the next look (a minute) misses this bound.
  let bound: NodeJS.Timeout | undefined
  const exit = await Promise.race([app.exited, new Promise<'held up'>((resolve) => { bound = setTimeout(() => resolve('held up'), 20_000) })])
  clearTimeout(bound)
  assert.deepEqual(exit, [0, null], app.output())
  assert.match(app.output(), /^closed$/m)
})

test('stop() mid-order resolves once the order has let go of storage: lock released, challenge removed, the directory removable at once', { skip: noPebble, timeout: 60_000 }, async (t) => {
  const silent = await silentPort(t)
  const pebble = await startPebble(t, { httpPort: silent, tlsPort: silent })
  const storage = path.join(await tempDir(t), 'storage')
  const reported: PortmuxError[] = []
  const manager = new AcmeManager({
    domains: [DOMAIN],
    email: undefined,
    directory: pebble.directory,
    storage,
    challenges: ['tls-alpn-01'],
    tuning: { ca: pebble.ca, pollMin: 60_000, pollMax: 60_000, retryMin: 60_000 }
  }, {
    install: () => { assert.fail('no certificate can be issued here') },
    report: (err) => { reported.push(err) }
  })
  t.after(() => manager.stop())
  // Stopped just as the challenge is being written to storage: that write is under way when stop() is called.
  let stopped: Promise<void> | null = null
  const addAlpn = manager.responder.addAlpn.bind(manager.responder)
  manager.responder.addAlpn = (domain, pems) => {
    addAlpn(domain, pems)
    queueMicrotask(() => { stopped = manager.stop() })
  }
  manager.start()
  await until(() => stopped !== null, 30_000, 'the challenge being written')
  await stopped

  const root = path.join(storage, caDirectoryName(pebble.directory))
  assert.deepEqual(await readdir(path.join(root, 'locks')), [], 'the lock was given up')
  assert.deepEqual(await readdir(path.join(root, 'challenges')), [], 'the challenge was removed')
  assert.deepEqual(reported, [], 'a stopped order is no failure')
  await rm(storage, { recursive: true })
  assert.equal(existsSync(storage), false)
})

test('server.close() mid-order calls back once the order has let go of storage: the directory is removable at once', { skip: noPebble, timeout: 60_000 }, async (t) => {
  const silent = await silentPort(t)
  const pebble = await startPebble(t, { httpPort: silent, tlsPort: silent })
  const storage = path.join(await tempDir(t), 'storage')
  const server = createServer(() => {}, {
    acme: {
      domains: [DOMAIN],
      agreeToTerms: true,
      directory: pebble.directory,
      storage,
      challenges: ['tls-alpn-01'],
      [Symbol.for('portmux.acme.tuning')]: { ca: pebble.ca, pollMin: 60_000, pollMax: 60_000, retryMin: 60_000 }
    } as AcmeOptions
  })
  const warnings: PortmuxError[] = []
  server.on('warning', (err: PortmuxError) => { warnings.push(err) })
  // The challenge is being written to storage when close() is called.
  const responder = (server as unknown as { acme: AcmeManager }).acme.responder
  const addAlpn = responder.addAlpn.bind(responder)
  let closing: Promise<void> | null = null
  responder.addAlpn = (domain, pems) => {
    addAlpn(domain, pems)
    queueMicrotask(() => { closing = new Promise<void>((resolve) => { server.close(() => { resolve() }) }) })
  }
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  await until(() => closing !== null, 30_000, 'the challenge being written')
  await closing

  const root = path.join(storage, caDirectoryName(pebble.directory))
  assert.deepEqual(await readdir(path.join(root, 'locks')), [], 'the lock was given up')
  assert.deepEqual(await readdir(path.join(root, 'challenges')), [], 'the challenge was removed')
  assert.deepEqual(warnings, [], 'a stopped order is no failure')
  await rm(storage, { recursive: true })
  assert.equal(existsSync(storage), false)
})
