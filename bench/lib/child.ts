/**
 * What every benchmark server child shares: its JSON config from argv, a `READY <json>`
 * line once listening, and an orderly exit on SIGTERM/SIGINT or when the orchestrator's
 * pipe on stdin closes (so that `--cpu-prof` profiles get written and no server outlives
 * the run).
 */
import { readFileSync } from 'node:fs'

export interface TlsFiles { key: string, cert: string }

export function config<T> (): T {
  return JSON.parse(process.argv[2] ?? '{}') as T
}

export function readTls (files: TlsFiles): { key: Buffer, cert: Buffer } {
  return { key: readFileSync(files.key), cert: readFileSync(files.cert) }
}

export function ready (info: Record<string, unknown>): void {
  process.stdout.write(`READY ${JSON.stringify(info)}\n`)
}

/** Exit cleanly when told to, or when the parent goes away. */
export function exitOnSignal (): void {
  const bye = (): void => { process.exit(0) }
  process.on('SIGTERM', bye)
  process.on('SIGINT', bye)
  process.stdin.on('end', bye)
  process.stdin.on('error', bye)
  process.stdin.resume()
}

export function portOf (server: { address: () => unknown }): number {
  const a = server.address()
  if (typeof a === 'object' && a !== null && 'port' in a) return (a as { port: number }).port
  throw new Error('not listening on a TCP port')
}

/** The one route every HTTP server under test serves. */
export const BODY = { hello: 'world' }
