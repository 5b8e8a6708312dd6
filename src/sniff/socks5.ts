// PLACEHOLDER — replaced by the real detector.
import type { Detector } from './types.js'
export const socks5 = { name: 'socks5', detect: () => 'no' } satisfies Detector
