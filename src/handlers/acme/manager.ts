/**
 * Obtains the certificate for `domains` from an ACME CA and keeps it renewed.
 *
 * One cycle, repeated for as long as the server runs:
 *   1. read the certificate in storage; if it is valid, covers the domains and is not the
 *      one being served, serve it (another process may have ordered or renewed it);
 *   2. if it is not due for renewal yet, sleep until it is (see renewal.ts);
 *   3. otherwise take the storage's lock — if another process holds it, look again in
 *      `pollInterval` ms — read storage once more (the holder may just have finished),
 *      order, store, serve, release.
 * A failed order is reported as `PORTMUX_ERR_ACME` and tried again after a back-off that
 * doubles up to `retryMax`; the certificate being served stays.
 *
 * The protocol is acme-client's (RFC 8555); its HTTP requests get this manager's agent,
 * a timeout, an abort signal for `stop()`, and no retries of their own (the cycle retries).
 * The waits between its looks at a pending challenge or order are this manager's too
 * (unref'd, ended by `stop()`): acme-client looks once per call.
 *
 * `stop()` resolves once the cycle in flight has ended — its requests aborted, its storage
 * writes finished, the lock given up — so that nothing touches storage after it.
 */
import http from 'node:http'
import https from 'node:https'
import { rootCertificates } from 'node:tls'
import { setTimeout as sleep } from 'node:timers/promises'
import { AcmeError, type PortmuxError } from '../../errors.js'
import type { CertificateInfo, ResolvedAcme } from '../../types.js'
import { FileLock } from './lock.js'
import { certificateFacts, pickInWindow, thirdLeft, type CertificateFacts } from './renewal.js'
import { ChallengeResponder } from './responders.js'
import { AcmeStorage, type StoredCertificate } from './storage.js'

/** What the manager needs from the server. */
export interface AcmeHost {
  install (pems: { key: string, cert: string }, event: CertificateInfo): void
  report (err: PortmuxError): void
}

/** Timings; the defaults suit a CA on the internet, tests shorten them. */
interface Tuning {
  /** ms between looks at storage while another process holds the lock. */
  pollInterval: number
  /** ms between looks at storage while the certificate is valid (renewals made elsewhere). */
  storageInterval: number
  lockRefresh: number
  lockStale: number
  /** First and longest wait after a failed order. */
  retryMin: number
  retryMax: number
  /** Waits between looks at a pending challenge or order: the first, and the longest (doubling). */
  pollMin: number
  pollMax: number
  /** ms any single request to the CA may take. */
  requestTimeout: number
  /** The least ms between two requests for the same certificate's renewal information. */
  ariRecheckMin: number
  /** Extra CA certificates to trust for the directory's HTTPS (a private CA, a test CA). */
  ca: string | undefined
}

const DEFAULT_TUNING: Tuning = {
  pollInterval: 2_000,
  storageInterval: 3_600_000,
  lockRefresh: 10_000,
  lockStale: 60_000,
  retryMin: 60_000,
  retryMax: 6 * 3_600_000,
  pollMin: 1_000,
  pollMax: 10_000,
  requestTimeout: 30_000,
  ariRecheckMin: 60_000,
  ca: undefined
}

/** setTimeout takes at most 2^31-1 ms; longer sleeps are taken in steps. */
const MAX_SLEEP = 86_400_000
/** The most ms before renewal information is asked again, whatever Retry-After says. */
const ARI_RECHECK_MAX = 86_400_000
/** Looks at a pending challenge or order before the order is given up (and the cycle retries). */
const POLL_ATTEMPTS = 10
/** The statuses of an ACME challenge, authorization or order that is still being worked on. */
const PENDING = new Set(['pending', 'processing'])

function tuningOf (given: Record<string, unknown>): Tuning {
  const t = { ...DEFAULT_TUNING }
  for (const key of Object.keys(DEFAULT_TUNING) as Array<keyof Tuning>) {
    const v = given[key]
    if (key === 'ca') { if (typeof v === 'string') t.ca = v } else if (typeof v === 'number' && v >= 0) t[key] = v
  }
  return t
}

type AcmeModule = typeof import('acme-client')

interface Installed { cert: string, facts: CertificateFacts }

interface RenewalInfo { certId: string, at: number, recheckAt: number }

export class AcmeManager {
  readonly responder: ChallengeResponder
  private readonly storage: AcmeStorage
  private readonly tuning: Tuning
  private readonly agent: http.Agent
  private readonly name: string
  private installed: Installed | null = null
  private client: import('acme-client').Client | null = null
  private timer: NodeJS.Timeout | null = null
  private running = false
  /** The cycle in flight, until it has ended (with its writes and the lock's release). */
  private inFlight: Promise<void> | null = null
  private stopped = false
  /** The status in the CA's last answer for each URL of the order in flight. */
  private readonly statusAt = new Map<string, string>()
  private failures = 0
  private abort = new AbortController()
  private directoryDoc: Record<string, unknown> | null = null
  private renewalInfo: RenewalInfo | null = null

  constructor (private readonly settings: ResolvedAcme, private readonly host: AcmeHost) {
    this.tuning = tuningOf(settings.tuning)
    this.storage = new AcmeStorage(settings.storage, settings.directory)
    this.responder = new ChallengeResponder(this.storage, settings.domains)
    this.name = settings.domains[0]
    const secure = new URL(settings.directory).protocol === 'https:'
    this.agent = secure ? new https.Agent({ keepAlive: false, ca: this.tuning.ca === undefined ? undefined : [...rootCertificates, this.tuning.ca] }) : new http.Agent({ keepAlive: false })
  }

  /** Serve what storage holds, at once (a small synchronous read, before the server listens). */
  load (): void {
    if (this.installed !== null) return
    const stored = this.storage.readCertificateSync(this.name)
    if (stored !== null && this.usable(stored)) this.install(stored.cert, stored.key)
  }

  /** Begin the cycle (the server listens: challenges can be answered). Idempotent; again after stop(). */
  start (): void {
    if (this.stopped) {
      this.stopped = false
      this.abort = new AbortController()
    }
    if (this.running || this.timer !== null) return
    this.schedule(0)
  }

  /**
   * Stop: no more timers, requests to the CA and waits between them aborted. Resolves once
   * the cycle in flight (if any) has ended: its storage writes done, the lock given up.
   */
  stop (): Promise<void> {
    this.stopped = true
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
    this.abort.abort()
    this.agent.destroy()
    return this.inFlight ?? Promise.resolve()
  }

  private schedule (ms: number): void {
    if (this.stopped) return
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = setTimeout(() => {
      this.timer = null
      this.running = true
      const cycle = this.cycle().catch((err: unknown) => {
        // cycle() reports its own failures; this is a bug guard, never an unhandled rejection.
        this.host.report(new AcmeError(`ACME renewal cycle failed: ${message(err)}`, err))
        return this.backoff()
      })
      this.inFlight = cycle.then((next) => {
        this.running = false
        this.inFlight = null
        this.schedule(next)
      })
    }, Math.min(ms, MAX_SLEEP))
    this.timer.unref()
  }

  private backoff (): number {
    this.failures++
    return Math.min(this.tuning.retryMax, this.tuning.retryMin * 2 ** (this.failures - 1))
  }

  /** One pass; resolves with the ms until the next. */
  private async cycle (): Promise<number> {
    let current: Installed | null
    try {
      current = await this.fromStorage()
    } catch (err) {
      this.host.report(new AcmeError(`could not read the ACME storage ${this.storage.root}: ${message(err)}`, err))
      return this.backoff()
    }
    const now = Date.now()
    if (current !== null) {
      const due = await this.renewAt(current)
      if (now < due.at) {
        this.failures = 0
        return Math.max(0, Math.min(due.at, due.recheckAt, now + this.tuning.storageInterval) - now)
      }
    }
    if (this.stopped) return 0
    let lock: FileLock | null
    try {
      await this.storage.ensure()
      lock = await FileLock.acquire(this.storage.lockFile(this.name), { refresh: this.tuning.lockRefresh, staleAfter: this.tuning.lockStale })
    } catch (err) {
      this.host.report(new AcmeError(`could not take the ACME lock in ${this.storage.root}: ${message(err)}`, err))
      return this.backoff()
    }
    // Someone else is ordering: their result will appear in storage.
    if (lock === null) return this.tuning.pollInterval
    try {
      const again = await this.fromStorage()
      if (again !== null && again.cert !== current?.cert) return 0
      const ordered = await this.order()
      await this.storage.writeCertificate(this.name, ordered)
      this.install(ordered.cert, ordered.key)
      this.failures = 0
      return 0
    } catch (err) {
      if (this.stopped) return 0
      this.host.report(new AcmeError(`ACME order for ${this.settings.domains.join(', ')} from ${this.settings.directory} failed: ${message(err)}`, err))
      return this.backoff()
    } finally {
      await lock.release()
    }
  }

  /** Serve the stored certificate if it is usable and new to this process; return what is served now. */
  private async fromStorage (): Promise<Installed | null> {
    const stored = await this.storage.readCertificate(this.name)
    if (stored !== null && stored.cert !== this.installed?.cert && this.usable(stored)) this.install(stored.cert, stored.key)
    return this.installed
  }

  private usable (stored: StoredCertificate): boolean {
    try {
      const facts = certificateFacts(stored.cert)
      return facts.notAfter > Date.now() && this.settings.domains.every((d) => facts.names.includes(d))
    } catch {
      return false
    }
  }

  private install (cert: string, key: string): void {
    const facts = certificateFacts(cert)
    const renewed = this.installed !== null
    this.installed = { cert, facts }
    this.host.install({ key, cert }, { domains: [...this.settings.domains], notAfter: new Date(facts.notAfter), renewed })
  }

  /** When the served certificate is due, and when to ask the CA again. */
  private async renewAt (current: Installed): Promise<{ at: number, recheckAt: number }> {
    const fallback = { at: thirdLeft(current.facts), recheckAt: Infinity }
    const certId = current.facts.certId
    if (certId === null) return fallback
    const known = this.renewalInfo
    if (known !== null && known.certId === certId && Date.now() < known.recheckAt) return known
    try {
      const directory = await this.directory()
      const base = directory.renewalInfo
      if (typeof base !== 'string') return fallback
      const res = await this.getJson(`${base.replace(/\/$/, '')}/${certId}`)
      const at = pickInWindow(res.data)
      if (at === null) return fallback
      const retryAfter = Number(res.retryAfter) * 1000
      const recheck = Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : 6 * 3_600_000
      this.renewalInfo = { certId, at, recheckAt: Date.now() + Math.min(ARI_RECHECK_MAX, Math.max(this.tuning.ariRecheckMin, recheck)) }
      return this.renewalInfo
    } catch {
      // The CA is unreachable: the lifetime rule decides, and the CA is asked again later.
      return { at: fallback.at, recheckAt: Date.now() + Math.max(this.tuning.pollInterval, this.tuning.ariRecheckMin) }
    }
  }

  private async directory (): Promise<Record<string, unknown>> {
    if (this.directoryDoc !== null) return this.directoryDoc
    const res = await this.getJson(this.settings.directory)
    if (res.data === null || typeof res.data !== 'object') throw new Error('the directory is not a JSON object')
    this.directoryDoc = res.data as Record<string, unknown>
    return this.directoryDoc
  }

  /** A GET of a JSON document with this manager's agent and limits. */
  private getJson (url: string): Promise<{ data: unknown, retryAfter: string | undefined }> {
    const get = url.startsWith('https:') ? https.get : http.get
    return new Promise((resolve, reject) => {
      const req = get(url, { agent: this.agent, timeout: this.tuning.requestTimeout, signal: this.abort.signal, headers: { accept: 'application/json' } }, (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('error', reject)
        res.on('end', () => {
          if (res.statusCode !== 200) {
            reject(new Error(`GET ${url}: HTTP ${String(res.statusCode)}`))
            return
          }
          try {
            resolve({ data: JSON.parse(Buffer.concat(chunks).toString('utf8')), retryAfter: res.headers['retry-after'] })
          } catch (err) {
            reject(err)
          }
        })
      })
      req.on('timeout', () => req.destroy(new Error(`GET ${url}: no answer in ${this.tuning.requestTimeout} ms`)))
      req.on('error', reject)
    })
  }

  // ---- ordering -----------------------------------------------------------

  private async order (): Promise<StoredCertificate> {
    const acme: AcmeModule = (await import('acme-client')).default
    // The CA must answer before anything else: a clear error when it does not.
    await this.directory().catch((err: unknown) => { this.directoryDoc = null; throw err })
    const client = this.client ?? await this.makeClient(acme)
    this.statusAt.clear()
    const [key, csr] = await acme.crypto.createCsr({ altNames: this.settings.domains }, await acme.crypto.createPrivateEcdsaKey())
    const cert = await client.auto({
      csr,
      email: this.settings.email,
      termsOfServiceAgreed: true,
      challengePriority: this.settings.challenges,
      // The CA's validation is the proof; a self-check would need this host to resolve its own names.
      skipChallengeVerification: true,
      challengeCreateFn: async (authz, challenge, keyAuthorization) => {
        const domain = authz.identifier.value.toLowerCase()
        if ((challenge.type as string) === 'http-01') {
          this.responder.addHttp((challenge as { token: string }).token, keyAuthorization)
          await this.storage.writeHttpChallenge((challenge as { token: string }).token, keyAuthorization)
        } else if ((challenge.type as string) === 'tls-alpn-01') {
          const [alpnKey, alpnCert] = await acme.crypto.createAlpnCertificate(authz, keyAuthorization)
          const pems = { key: alpnKey.toString(), cert: alpnCert.toString() }
          this.responder.addAlpn(domain, pems)
          await this.storage.writeAlpnChallenge(domain, pems)
        } else {
          throw new Error(`the CA offered no challenge portmux answers for ${domain} (${challenge.type})`)
        }
      },
      challengeRemoveFn: async (authz, challenge) => {
        const domain = authz.identifier.value.toLowerCase()
        if ((challenge.type as string) === 'http-01') {
          this.responder.removeHttp((challenge as { token: string }).token)
          await this.storage.removeHttpChallenge((challenge as { token: string }).token)
        } else if ((challenge.type as string) === 'tls-alpn-01') {
          this.responder.removeAlpn(domain)
          await this.storage.removeAlpnChallenge(domain)
        }
      }
    })
    this.statusAt.clear()
    return { domains: [...this.settings.domains], key: key.toString(), cert }
  }

  /** The account from storage (made and stored the first time), and a client for it. */
  private async makeClient (acme: AcmeModule): Promise<import('acme-client').Client> {
    let account = await this.storage.readAccount()
    if (account === null) {
      account = { key: (await acme.crypto.createPrivateEcdsaKey()).toString(), url: undefined }
      await this.storage.writeAccount(account)
    }
    const client = new acme.Client({
      directoryUrl: this.settings.directory,
      accountKey: account.key,
      accountUrl: account.url,
      // One look per waitForValidStatus() call: the waits between looks are pollUntilDone()'s.
      backoffAttempts: 1
    })
    this.limitRequests(client)
    this.pollUntilDone(client)
    if (account.url === undefined) {
      await client.createAccount({ termsOfServiceAgreed: true, contact: this.settings.email === undefined ? undefined : [`mailto:${this.settings.email}`] })
      await this.storage.writeAccount({ key: account.key, url: client.getAccountUrl() })
    }
    this.client = client
    return client
  }

  /**
   * Every request of this client gets the agent, the timeout and the abort signal, and is
   * not retried by acme-client's own interceptor (the cycle retries with its back-off).
   */
  private limitRequests (client: object): void {
    const httpClient = (client as { http?: { request?: (url: string, method: string, opts?: object) => Promise<unknown> } }).http
    const request = httpClient?.request
    if (httpClient === undefined || typeof request !== 'function') return
    const agent = this.agent
    const extra = { httpsAgent: agent, httpAgent: agent, timeout: this.tuning.requestTimeout, retryAttempt: Number.POSITIVE_INFINITY }
    httpClient.request = async (url, method, opts = {}) => {
      try {
        const res = await request.call(httpClient, url, method, { ...opts, ...extra, signal: this.abort.signal })
        const status = (res as { data?: { status?: unknown } } | null)?.data?.status
        if (typeof status === 'string') this.statusAt.set(url, status)
        return res
      } catch (err) {
        if ((err as { response?: unknown }).response !== undefined) throw err
        const code = (err as { code?: unknown }).code
        throw new Error(`${method.toUpperCase()} ${url}: no answer${typeof code === 'string' ? ` (${code})` : ''}`, { cause: err })
      }
    }
  }

  /**
   * Waiting for a challenge or order to be done: acme-client looks once (see makeClient);
   * while the CA's answer says pending or processing, this waits — pollMin ms, doubling up
   * to pollMax — and looks again, at most POLL_ATTEMPTS times. The waits are unref'd and end
   * with stop(), so that a server closed mid-order goes at once.
   */
  private pollUntilDone (client: import('acme-client').Client): void {
    const look = client.waitForValidStatus.bind(client) as (item: { url?: string }) => Promise<unknown>
    const wait = async (item: { url?: string }): Promise<unknown> => {
      for (let attempt = 1; ; attempt++) {
        if (item.url !== undefined) this.statusAt.delete(item.url)
        try {
          return await look(item)
        } catch (err) {
          const status = item.url === undefined ? undefined : this.statusAt.get(item.url)
          if (this.stopped || status === undefined || !PENDING.has(status) || attempt >= POLL_ATTEMPTS) throw err
        }
        await sleep(Math.min(this.tuning.pollMax, this.tuning.pollMin * 2 ** (attempt - 1)), undefined, { signal: this.abort.signal, ref: false })
      }
    }
    client.waitForValidStatus = wait as typeof client.waitForValidStatus
  }
}

function message (err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
