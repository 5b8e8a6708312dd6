// PLACEHOLDER — replaced by the real detector.
import type { Detector } from './types.js'
export const socks4 = { name: 'socks4', detect: () => 'no' } satisfies Detector
