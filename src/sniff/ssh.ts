// PLACEHOLDER — replaced by the real detector.
import type { Detector } from './types.js'
export const ssh = { name: 'ssh', detect: () => 'no' } satisfies Detector
