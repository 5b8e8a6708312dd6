/**
 * A self-signed development certificate: ECDSA P-256, signed with SHA-256, valid for
 * localhost, 127.0.0.1 and ::1 plus any hosts given. Never for production.
 */
import cluster from 'node:cluster'
import { isIP } from 'node:net'
import { DevCertificateError } from './errors.js'

export interface DevCertificateOptions {
  /** More names (DNS names or IP addresses) for the certificate. */
  hosts?: string[]
}

export interface KeyAndCertificate {
  key: string
  cert: string
}

const DEFAULT_HOSTS = ['localhost', '127.0.0.1', '::1']
const DAY = 24 * 60 * 60 * 1000

export async function devCertificate (options: DevCertificateOptions = {}): Promise<KeyAndCertificate> {
  const hosts = [...new Set([...DEFAULT_HOSTS, ...(options.hosts ?? [])])]
  const altNames = hosts.map((h) => isIP(h) !== 0 ? { type: 7 as const, ip: h } : { type: 2 as const, value: h })
  try {
    // Loaded on first use: the generator and its ASN.1 libraries are ~5 MB of heap that a
    // server with its own certificate never needs (see bench/ANALYSIS.md,
    // "process.nextTick under keep-alive load").
    const { default: selfsigned } = await import('selfsigned')
    const now = Date.now()
    const pems = await selfsigned.generate([{ name: 'commonName', value: 'portmux development certificate' }], {
      keyType: 'ec',
      curve: 'P-256',
      algorithm: 'sha256',
      notBeforeDate: new Date(now - DAY),
      notAfterDate: new Date(now + 30 * DAY),
      extensions: [
        { name: 'basicConstraints', cA: false },
        { name: 'keyUsage', digitalSignature: true },
        { name: 'extKeyUsage', serverAuth: true },
        { name: 'subjectAltName', altNames }
      ]
    })
    return { key: pems.private, cert: pems.cert }
  } catch (err) {
    throw new DevCertificateError(err)
  }
}

/**
 * Under `portmux/cluster` the primary makes one development certificate and hands it to
 * every worker in this variable, so that all workers serve the same one. A worker reads it
 * once, when portmux is loaded, and removes it from its environment.
 */
export const CLUSTER_DEV_CERTIFICATE = 'PORTMUX_CLUSTER_DEV_CERTIFICATE'

let shared: KeyAndCertificate | null = null
if (cluster.isWorker && process.env[CLUSTER_DEV_CERTIFICATE] !== undefined) {
  try {
    const pems = JSON.parse(process.env[CLUSTER_DEV_CERTIFICATE]) as Partial<KeyAndCertificate>
    if (typeof pems.key === 'string' && typeof pems.cert === 'string') shared = { key: pems.key, cert: pems.cert }
  } catch {
    // Not ours: each worker makes its own.
  }
  delete process.env[CLUSTER_DEV_CERTIFICATE]
}

/** The development certificate shared by the workers of a cluster, or `null` outside one. */
export function sharedDevCertificate (): KeyAndCertificate | null {
  return shared
}
