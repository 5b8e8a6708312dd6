// PLACEHOLDER — replaced by the real detector.
import type { Detector } from './types.js'
export const http = { name: 'http', detect: () => 'no' } satisfies Detector
