/**
 * Keeps one `process.nextTick` tick object alive for the life of the process.
 *
 * This works around an interaction of Node and V8, not a fault of portmux. Node (20 and 22)
 * builds each tick object with an object literal whose first keys are computed symbols
 * (`{ [async_id_symbol], [trigger_async_id_symbol], callback, args }` in
 * lib/internal/process/task_queues.js). For each key after the first, V8 records in
 * nextTick's feedback the one map the object had before the key was added, and holds that map
 * weakly. When a full GC runs while no tick object is alive, after nextTick has its feedback
 * but before TurboFan has compiled it, those maps are collected; the next tick object gets new
 * maps, V8 finds them unlike the cleared entry, and marks those three keys megamorphic for
 * good. The compiled nextTick then defines them through the runtime, at three to five times
 * the cost of a call, and one process spends 5–15 % of its CPU in nextTick under HTTP
 * keep-alive load instead of about 1 %.
 *
 * Whether a process falls into that gap comes down to when its GCs run: an awaited
 * `app.register()` before `listen` makes enough nextTick calls for its feedback to exist at
 * startup, and a full GC soon after (the first one after a heavy startup, or the memory
 * reducer's once the process goes idle) does the rest. A tick object that stays alive keeps
 * its maps, and the transitions that lead to them, alive, so every later tick object gets
 * those same maps and the feedback stays monomorphic.
 *
 * Node exposes tick objects only as async_hooks resources, so one hook is enabled for the
 * length of a single nextTick call, once per process. bench/ticks.ts checks the effect.
 */
import { createHook } from 'node:async_hooks'

let pinned: object | null = null
let tried = false

function noop (): void {}

export function pinTickObjectMaps (): void {
  if (tried) return
  tried = true
  const hook = createHook({
    init (_asyncId, type, _triggerAsyncId, resource) {
      if (type === 'TickObject' && pinned === null) pinned = resource
    }
  })
  hook.enable()
  try {
    process.nextTick(noop)
  } finally {
    hook.disable()
  }
}
