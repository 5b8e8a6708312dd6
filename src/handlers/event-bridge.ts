/**
 * The event bridge from the inner HTTP servers to the outer server. Users and plugins
 * listen on the outer server for events only the inner servers emit ('request', 'upgrade',
 * 'clientError', 'session', …). While the outer server has at least one listener for such
 * an event, each inner server that emits it has one relay listener that re-emits it on the
 * outer server; so `once`, `prependListener`, removal and listener order all stay the outer
 * emitter's own, and listeners run with the outer server as `this`.
 *
 * Relies on these Node behaviours:
 * - an EventEmitter emits 'newListener' before adding a listener, and 'removeListener'
 *   after removing one (also for each listener `removeAllListeners` takes);
 * - the HTTP servers decide by their own `listenerCount` whether anyone handles 'upgrade',
 *   'connect', 'checkContinue', 'checkExpectation', 'clientError', 'timeout' and
 *   'dropRequest' (else Node's default answer applies) — which a relay present exactly
 *   while the outer server has listeners keeps true.
 */
import { EventEmitter } from 'node:events'

/**
 * The emitter's own `emit`: relays call it on the outer server directly, past any `emit`
 * the outer server overrides (the mux's only looks at 'listening' and 'close', which are
 * never relayed), so a relayed request costs no extra copy of its arguments.
 */
const emit = EventEmitter.prototype.emit

// EventEmitter listeners take anything; a relay passes the arguments on untouched.
type Relay = (...args: any[]) => void
/** Told of every request a source emits, before it is relayed. */
type RequestTap = (req: any) => void

export class EventBridge {
  private readonly sources: Array<[EventEmitter, ReadonlySet<string>]> = []
  /** Every event some source relays. */
  private readonly known = new Set<string>()
  private readonly relays = new Map<string, Relay>()
  private outer: EventEmitter | null = null

  /**
   * `server` emits these events for the outer server. Before `attach`. With `tap`, its
   * `'request'` relay is on for good and calls `tap` first: a request then meets one
   * listener, not two (an emitter copies its listener array on every emit of an event that
   * has more than one). A request relayed while the outer server has no listener for it is
   * dropped, as it would be without the relay.
   */
  add (server: EventEmitter, events: Iterable<string>, tap?: RequestTap): void {
    const set = new Set(events)
    for (const e of set) this.known.add(e)
    if (tap !== undefined && set.delete('request')) {
      server.on('request', (req: unknown, res: unknown) => {
        tap(req)
        if (this.outer !== null) emit.call(this.outer, 'request', req, res)
      })
    }
    this.sources.push([server, set])
  }

  /** Start relaying to `outer`; idempotent (the outer server calls it again after a blanket `removeAllListeners`). */
  attach (outer: EventEmitter): void {
    this.outer = outer
    if (!outer.listeners('newListener').includes(this.onNewListener)) outer.on('newListener', this.onNewListener)
    if (!outer.listeners('removeListener').includes(this.onRemoveListener)) outer.on('removeListener', this.onRemoveListener)
  }

  private readonly onNewListener = (event: string | symbol): void => {
    if (typeof event === 'string' && this.known.has(event) && !this.relays.has(event) && this.outer !== null) this.relay(event, this.outer)
  }

  private readonly onRemoveListener = (event: string | symbol): void => {
    if (typeof event === 'string' && this.relays.has(event) && this.outer?.listenerCount(event) === 0) this.unrelay(event)
  }

  private relay (event: string, outer: EventEmitter): void {
    const relay: Relay = (...args) => emit.call(outer, event, ...args)
    this.relays.set(event, relay)
    for (const [server, events] of this.sources) if (events.has(event)) server.on(event, relay)
  }

  private unrelay (event: string): void {
    const relay = this.relays.get(event) as Relay
    this.relays.delete(event)
    for (const [server, events] of this.sources) if (events.has(event)) server.removeListener(event, relay)
  }
}
