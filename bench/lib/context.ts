/** What every scenario gets from the orchestrator, and what it gives back. */
import type { Spread } from './stats.js'

export interface Plan {
  quick: boolean
  /** Alternating rounds for throughput and CPU figures (each contender once per round). */
  rounds: number
  /** Same-instant rounds (every contender loaded at once on one core; bench/lib/same-cpu.ts). */
  sameRounds: number
  /** Rounds for the proxy scenarios (bulk, connection cycles, latency). */
  bulkRounds: number
  memRounds: number
  /** Seconds of a saturating run (wrk, s_time, connection cycles). */
  satSeconds: number
  /** Seconds of a fixed-rate run (h2load --rps, the bench client at a set rate). */
  rateSeconds: number
  latencySeconds: number
  /** Seconds of a proxy connection-cycle run (saturating or fixed-rate). */
  cycleSeconds: number
  bulkBytes: number
  memConnections: number
}

export const FULL: Plan = {
  quick: false,
  rounds: 9,
  sameRounds: 5,
  bulkRounds: 7,
  memRounds: 3,
  satSeconds: 5,
  rateSeconds: 5,
  latencySeconds: 4,
  cycleSeconds: 3,
  bulkBytes: 1 << 30,
  memConnections: 10_000
}

export const QUICK: Plan = {
  quick: true,
  rounds: 3,
  sameRounds: 3,
  bulkRounds: 3,
  memRounds: 1,
  satSeconds: 2,
  rateSeconds: 2,
  latencySeconds: 2,
  cycleSeconds: 2,
  bulkBytes: 256 << 20,
  memConnections: 10_000
}

export interface Ctx {
  plan: Plan
  /** Absolute path of the repository. */
  root: string
  /** Compiled bench folder (build/bench). */
  buildBench: string
  /** Where npm packages for benchmarking live (bench/.deps). */
  depsDir: string
  /** Scratch folder for configs, pid files, certificates. */
  tmp: string
  tls: { key: string, cert: string }
  /** CPU lists for taskset, or null when pinning is not available. */
  cpu: { server: string | null, load: string | null }
  /** When set, Node servers under test run with `--cpu-prof` into this folder, for one round. */
  profileDir: string | null
  log: (msg: string) => void
  /** Results of scenarios already run (by id), for figures that refer to each other. */
  results: Map<string, ScenarioResult>
}

export interface Row {
  /** The item of the issue this row answers (1–8). */
  item: string
  what: string
  /** The figure compared, with its unit. */
  figure: string
  subject: string
  subjectValue: string
  peer: string
  peerValue: string
  /** `subject ÷ peer` per pair, medians; null when the row carries no ratio. */
  ratio: Spread | null
  /** Which way is good for the ratio. */
  better: 'higher' | 'lower' | ''
  target?: number
  note?: string
}

export interface ScenarioResult {
  id: string
  title: string
  method: string
  rows: Row[]
  notes: string[]
  raw: unknown
  /** Numbers other scenarios may use (e.g. CPU per connection). */
  figures: Record<string, number>
  seconds: number
}

export interface Scenario {
  id: string
  title: string
  /** How it is measured, for the report. */
  method: string
  run: (ctx: Ctx) => Promise<Omit<ScenarioResult, 'id' | 'title' | 'method' | 'seconds'>>
}
