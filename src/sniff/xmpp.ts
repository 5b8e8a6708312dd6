// PLACEHOLDER — replaced by the real detector.
import type { Detector } from './types.js'
export const xmpp = { name: 'xmpp', detect: () => 'no' } satisfies Detector
