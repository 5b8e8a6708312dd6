// PLACEHOLDER — replaced by the real detector.
import type { Detector } from './types.js'
export const postgres = { name: 'postgres', detect: () => 'no' } satisfies Detector
