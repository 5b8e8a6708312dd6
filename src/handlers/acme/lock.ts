/**
 * A lock file shared by every process (and machine) that uses one storage directory, so
 * that one of them orders a certificate and the others wait for the result.
 *
 * Taking it is an exclusive create (`O_CREAT | O_EXCL`), which is atomic on local file
 * systems and on NFSv3+. The file names its holder (`pid`, `hostname`); the holder touches
 * it every `refresh` ms while it works. A lock is stale — and taken over — when its file
 * has not been touched for `staleAfter` ms (a holder that crashed, on any machine), or at
 * once when its holder is on this machine and that process no longer exists.
 */
import { open, readFile, stat, unlink, utimes } from 'node:fs/promises'
import { hostname } from 'node:os'

export interface LockTiming {
  /** ms between the holder's touches of the file. */
  refresh: number
  /** ms without a touch after which the lock is considered abandoned. */
  staleAfter: number
}

interface Owner { pid: number, hostname: string, token: string }

export class FileLock {
  private timer: NodeJS.Timeout | null = null
  private released = false

  private constructor (private readonly file: string, private readonly token: string, timing: LockTiming) {
    this.timer = setInterval(() => {
      const now = new Date()
      utimes(this.file, now, now).catch(() => {})
    }, timing.refresh)
    this.timer.unref()
  }

  /** The lock, or `null` when someone else holds it. */
  static async acquire (file: string, timing: LockTiming): Promise<FileLock | null> {
    const token = `${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`
    const owner: Owner = { pid: process.pid, hostname: hostname(), token }
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const handle = await open(file, 'wx', 0o600)
        try {
          await handle.writeFile(JSON.stringify(owner))
          await handle.sync()
        } finally {
          await handle.close()
        }
        return new FileLock(file, token, timing)
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      }
      if (!await stale(file, timing.staleAfter)) return null
      await unlink(file).catch(() => {})
    }
    return null
  }

  /** Give the lock up (only if the file is still ours). Idempotent. */
  async release (): Promise<void> {
    if (this.released) return
    this.released = true
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
    const owner = await readOwner(this.file)
    if (owner?.token === this.token) await unlink(this.file).catch(() => {})
  }
}

async function readOwner (file: string): Promise<Owner | null> {
  try {
    const data = JSON.parse(await readFile(file, 'utf8')) as Partial<Owner>
    return typeof data.pid === 'number' && typeof data.hostname === 'string' && typeof data.token === 'string' ? data as Owner : null
  } catch {
    return null
  }
}

async function stale (file: string, staleAfter: number): Promise<boolean> {
  let mtime: number
  try {
    mtime = (await stat(file)).mtimeMs
  } catch {
    // Gone meanwhile: free to take.
    return true
  }
  if (Date.now() - mtime > staleAfter) return true
  const owner = await readOwner(file)
  // Being written this very moment: not stale.
  if (owner === null) return false
  return owner.hostname === hostname() && owner.pid !== process.pid && !alive(owner.pid)
}

function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}
