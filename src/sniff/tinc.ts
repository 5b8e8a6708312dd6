// PLACEHOLDER — replaced by the real detector.
import type { Detector } from './types.js'
export const tinc = { name: 'tinc', detect: () => 'no' } satisfies Detector
