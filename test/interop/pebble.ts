/**
 * Pebble (Let's Encrypt's test CA) and pebble-challtestsrv as its DNS server, from Debian,
 * started by the tests. Every name resolves to 127.0.0.1; Pebble validates HTTP-01 and
 * TLS-ALPN-01 on the ports given, which are the portmux ports under test. Pebble's own
 * HTTPS certificate is a development certificate made here; its issuing root is read from
 * the management port.
 */
import { existsSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import https from 'node:https'
import net from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { TestContext } from 'node:test'
import { testCertificate } from '../helpers.js'
import { start } from '../spawn.js'

export const PEBBLE = '/usr/bin/pebble'
export const CHALLTESTSRV = '/usr/bin/pebble-challtestsrv'
/** A test's `skip` option: the reason when Pebble is not installed. */
export const noPebble: string | false = existsSync(PEBBLE) && existsSync(CHALLTESTSRV) ? false : 'needs pebble and pebble-challtestsrv (Debian package pebble)'

/** Ports this process has handed out: never twice. */
const handedOut = new Set<number>()

/**
 * A port that is free now, for a server that must be named before it starts (Pebble's
 * configuration names the mux's ports, and the mux's options name Pebble's). Taken below the
 * kernel's ephemeral range, so that no `listen(0)` of a test running beside this one can be
 * given it before it is bound; never the same twice in one process.
 */
export async function freePort (host = '127.0.0.1'): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 12_000)
    if (handedOut.has(port)) continue
    handedOut.add(port)
    const server = net.createServer()
    const bound = await new Promise<boolean>((resolve) => {
      server.once('error', () => { resolve(false) })
      server.listen(port, host, () => { resolve(true) })
    })
    if (!bound) continue
    await new Promise<void>((resolve) => server.close(() => { resolve() }))
    return port
  }
}

export interface PebbleOptions {
  /** Where Pebble sends HTTP-01 validations. */
  httpPort: number
  /** Where Pebble sends TLS-ALPN-01 validations. */
  tlsPort: number
  /** Seconds the certificates it issues are valid. */
  validity?: number
  /** Listen here (to restart a CA on the same URL). */
  port?: number
  managementPort?: number
}

export interface Pebble {
  /** The directory URL. */
  directory: string
  /** Pebble's HTTPS certificate: trust it to talk to the CA. */
  ca: string
  port: number
  managementPort: number
  /** The root the issued certificates chain to. */
  root (): Promise<string>
  /** Orders finalized so far (from Pebble's log). */
  issued (): number
  stop (): Promise<void>
}

/** challtestsrv, answering 127.0.0.1 for every A query and nothing for AAAA. */
async function dns (t: TestContext): Promise<number> {
  const port = await freePort()
  const management = await freePort()
  await start(t, CHALLTESTSRV, [
    '-defaultIPv4', '127.0.0.1', '-defaultIPv6', '',
    '-dns01', `127.0.0.1:${port}`, '-http01', '', '-https01', '', '-tlsalpn01', '',
    '-management', `127.0.0.1:${management}`
  ], { ready: { ports: [management] }, signal: 'SIGKILL' })
  return port
}

export async function startPebble (t: TestContext, options: PebbleOptions): Promise<Pebble> {
  const dnsPort = await dns(t)
  const dir = await mkdtemp(path.join(tmpdir(), 'portmux-pebble-'))
  t.after(() => rm(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 }).catch(() => {}))
  const { key, cert } = await testCertificate()
  await writeFile(path.join(dir, 'key.pem'), key)
  await writeFile(path.join(dir, 'cert.pem'), cert)
  const port = options.port ?? await freePort()
  const managementPort = options.managementPort ?? await freePort()
  const config: Record<string, unknown> = {
    listenAddress: `127.0.0.1:${port}`,
    managementListenAddress: `127.0.0.1:${managementPort}`,
    certificate: path.join(dir, 'cert.pem'),
    privateKey: path.join(dir, 'key.pem'),
    httpPort: options.httpPort,
    tlsPort: options.tlsPort,
    ocspResponderURL: '',
    externalAccountBindingRequired: false
  }
  if (options.validity !== undefined) config.certificateValidityPeriod = options.validity
  await writeFile(path.join(dir, 'pebble.json'), JSON.stringify({ pebble: config }))
  const pebble = await start(t, PEBBLE, ['-config', path.join(dir, 'pebble.json'), '-dnsserver', `127.0.0.1:${dnsPort}`], {
    env: {
      PEBBLE_VA_NOSLEEP: '1',
      PEBBLE_WFE_NONCEREJECT: '0',
      PEBBLE_AUTHZREUSE: '0',
      PEBBLE_CHAIN_LENGTH: '2'
    },
    ready: { ports: [port, managementPort] },
    signal: 'SIGKILL'
  })
  return {
    directory: `https://127.0.0.1:${port}/dir`,
    ca: cert,
    port,
    managementPort,
    root: () => get(`https://127.0.0.1:${managementPort}/roots/0`, cert),
    issued: () => (pebble.output().match(/Issued certificate serial/g) ?? []).length,
    stop: async () => { await pebble.stop('SIGKILL') }
  }
}

function get (url: string, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    https.get(url, { ca }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => { body += d })
      res.on('end', () => res.statusCode === 200 ? resolve(body) : reject(new Error(`GET ${url}: ${String(res.statusCode)}`)))
    }).on('error', reject)
  })
}
