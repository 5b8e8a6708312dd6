// PLACEHOLDER — replaced by the real detector.
import type { Detector } from './types.js'
export const openvpn = { name: 'openvpn', detect: () => 'no' } satisfies Detector
