/**
 * The ACME storage directory: the account key, the certificate (key and chain) and the
 * challenges being answered, shared by every process that points at the same directory.
 *
 *   <storage>/<ca>/account.json              { key, url }
 *   <storage>/<ca>/certificates/<name>.json  { domains, key, cert }
 *   <storage>/<ca>/challenges/<token>.json   http-01: { keyAuthorization }
 *   <storage>/<ca>/challenges/alpn.<domain>.json  tls-alpn-01: { key, cert }
 *   <storage>/<ca>/locks/<name>.lock         who is ordering (see lock.ts)
 *
 * `<ca>` is the directory URL made into a file name, so one storage may serve several CAs.
 * Directories are mode 0700, files 0600. Every file is written to a temporary name,
 * synced, then renamed over the old one: a crash leaves the old file or the new one,
 * never half of either.
 */
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { chmod, mkdir, open, readFile, rename, unlink } from 'node:fs/promises'
import path from 'node:path'

export interface StoredCertificate {
  domains: string[]
  /** PEM private key. */
  key: string
  /** PEM chain, leaf first. */
  cert: string
}

/** A file name for a CA: its host, port and path, other characters replaced. */
export function caDirectoryName (directory: string): string {
  const url = new URL(directory)
  const name = `${url.host}${url.pathname}`.replace(/[^A-Za-z0-9.-]+/g, '_').replace(/^_+|_+$/g, '')
  return name.length > 0 ? name : 'ca'
}

/** Tokens and domain names are the only names taken from outside; nothing else reaches a path. */
const SAFE_NAME = /^[A-Za-z0-9_.-]{1,255}$/

export class AcmeStorage {
  readonly root: string
  private made: Promise<void> | null = null

  constructor (storage: string, directory: string) {
    this.root = path.resolve(storage, caDirectoryName(directory))
  }

  /** Make the directories (0700), once. */
  ensure (): Promise<void> {
    this.made ??= (async () => {
      for (const dir of [this.root, this.dir('certificates'), this.dir('challenges'), this.dir('locks')]) {
        await mkdir(dir, { recursive: true, mode: 0o700 })
        await chmod(dir, 0o700)
      }
    })()
    this.made.catch(() => { this.made = null })
    return this.made
  }

  dir (name: 'certificates' | 'challenges' | 'locks'): string {
    return path.join(this.root, name)
  }

  lockFile (name: string): string {
    return path.join(this.dir('locks'), `${safe(name)}.lock`)
  }

  async readAccount (): Promise<{ key: string, url: string | undefined } | null> {
    const data = await readJson(path.join(this.root, 'account.json'))
    if (typeof data?.key !== 'string') return null
    return { key: data.key, url: typeof data.url === 'string' ? data.url : undefined }
  }

  async writeAccount (account: { key: string, url: string | undefined }): Promise<void> {
    await this.ensure()
    await writeAtomic(path.join(this.root, 'account.json'), JSON.stringify(account))
  }

  async readCertificate (name: string): Promise<StoredCertificate | null> {
    return certificateOf(await readJson(path.join(this.dir('certificates'), `${safe(name)}.json`)))
  }

  /** The same, at once: what a restarted server serves from its first connection. */
  readCertificateSync (name: string): StoredCertificate | null {
    let text: string
    try {
      text = readFileSync(path.join(this.dir('certificates'), `${safe(name)}.json`), 'utf8')
    } catch {
      return null
    }
    return certificateOf(parse(text))
  }

  async writeCertificate (name: string, certificate: StoredCertificate): Promise<void> {
    await this.ensure()
    await writeAtomic(path.join(this.dir('certificates'), `${safe(name)}.json`), JSON.stringify(certificate))
  }

  /** The key authorization of a pending http-01 challenge, or `null`. */
  async readHttpChallenge (token: string): Promise<string | null> {
    if (!SAFE_NAME.test(token)) return null
    const data = await readJson(path.join(this.dir('challenges'), `${token}.json`))
    return typeof data?.keyAuthorization === 'string' ? data.keyAuthorization : null
  }

  async writeHttpChallenge (token: string, keyAuthorization: string): Promise<void> {
    await this.ensure()
    await writeAtomic(path.join(this.dir('challenges'), `${safe(token)}.json`), JSON.stringify({ keyAuthorization }))
  }

  async removeHttpChallenge (token: string): Promise<void> {
    await remove(path.join(this.dir('challenges'), `${safe(token)}.json`))
  }

  /** The challenge certificate of a pending tls-alpn-01 challenge, or `null`. */
  async readAlpnChallenge (domain: string): Promise<{ key: string, cert: string } | null> {
    if (!SAFE_NAME.test(domain)) return null
    const data = await readJson(path.join(this.dir('challenges'), `alpn.${domain}.json`))
    return typeof data?.key === 'string' && typeof data.cert === 'string' ? { key: data.key, cert: data.cert } : null
  }

  async writeAlpnChallenge (domain: string, pems: { key: string, cert: string }): Promise<void> {
    await this.ensure()
    await writeAtomic(path.join(this.dir('challenges'), `alpn.${safe(domain)}.json`), JSON.stringify(pems))
  }

  async removeAlpnChallenge (domain: string): Promise<void> {
    await remove(path.join(this.dir('challenges'), `alpn.${safe(domain)}.json`))
  }
}

function certificateOf (data: Record<string, unknown> | null): StoredCertificate | null {
  if (data === null || typeof data.key !== 'string' || typeof data.cert !== 'string' || !Array.isArray(data.domains)) return null
  return { domains: data.domains.filter((d): d is string => typeof d === 'string'), key: data.key, cert: data.cert }
}

function parse (text: string): Record<string, unknown> | null {
  try {
    const data: unknown = JSON.parse(text)
    return data !== null && typeof data === 'object' ? data as Record<string, unknown> : null
  } catch {
    // Never written by us (writes are atomic): treated as absent.
    return null
  }
}

function safe (name: string): string {
  if (!SAFE_NAME.test(name)) throw new Error(`not a safe file name: ${JSON.stringify(name)}`)
  return name
}

async function readJson (file: string): Promise<Record<string, unknown> | null> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw err
  }
  return parse(text)
}

async function remove (file: string): Promise<void> {
  await unlink(file).catch((err: NodeJS.ErrnoException) => { if (err.code !== 'ENOENT') throw err })
}

/** Write `data` to `file` (mode 0600) so that readers see the old content or the new, whole. */
export async function writeAtomic (file: string, data: string): Promise<void> {
  const tmp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`
  const handle = await open(tmp, 'wx', 0o600)
  try {
    await handle.writeFile(data)
    await handle.sync()
  } catch (err) {
    await handle.close()
    await remove(tmp)
    throw err
  }
  await handle.close()
  try {
    await rename(tmp, file)
  } catch (err) {
    await remove(tmp)
    throw err
  }
  // The rename itself survives a crash once the directory is synced.
  const dir = await open(path.dirname(file), 'r')
  try {
    await dir.sync()
  } catch {
    // Some file systems refuse fsync on a directory; the rename is still atomic.
  } finally {
    await dir.close()
  }
}
