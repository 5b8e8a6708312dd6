/**
 * Deadlines for many connections with one timer. Every entry of a queue gets the same
 * delay from the moment it is added, so insertion order is deadline order: the timer is
 * armed for the oldest entry only, and when it fires the expired entries are taken from
 * the head. Removing an entry costs a `Set` delete; no timer is cleared or re-armed.
 */
import { performance } from 'node:perf_hooks'

export interface Timed {
  /** `performance.now()` at which the entry expires. */
  deadline: number
}

export class DeadlineQueue<T extends Timed> implements Iterable<T> {
  private readonly items = new Set<T>()
  private timer: NodeJS.Timeout | null = null

  /** @param expire called once for each entry whose deadline passed, after it left the queue. */
  constructor (private readonly expire: (item: T) => void) {}

  get size (): number {
    return this.items.size
  }

  /** Add `item`, due `delay` ms after `from` (a `performance.now()` reading; default now). */
  add (item: T, delay: number, from = performance.now()): void {
    item.deadline = from + delay
    this.items.add(item)
    if (this.timer === null) this.arm(delay)
  }

  /** Whether `item` was in the queue. */
  delete (item: T): boolean {
    return this.items.delete(item)
  }

  [Symbol.iterator] (): Iterator<T> {
    return this.items.values()
  }

  private arm (delay: number): void {
    if (this.timer !== null) clearTimeout(this.timer)
    // The timer only serves connections that hold the process open themselves.
    this.timer = setTimeout(this.onTimer, Math.max(1, Math.ceil(delay)))
    this.timer.unref()
  }

  private readonly onTimer = (): void => {
    this.timer = null
    // Node fires a timer on its loop clock, which may lag this one by a fraction of a millisecond.
    const now = performance.now() + 1
    for (const item of this.items) {
      if (item.deadline > now) {
        if (this.timer === null) this.arm(item.deadline - now + 1)
        return
      }
      this.items.delete(item)
      this.expire(item)
    }
  }
}
