// PLACEHOLDER — replaced by the real detector.
import type { Detector } from './types.js'
export const rdp = { name: 'rdp', detect: () => 'no' } satisfies Detector
