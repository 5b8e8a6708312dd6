/** The machine, Node and the peers' versions, for the report. */
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { cpuCount } from './proc.js'

export interface Environment {
  nproc: number
  cpuModel: string
  memGiB: number
  kernel: string
  os: string
  node: string
  portmux: string
  fastify: string
  versions: Record<string, string>
  loadBefore: string
}

function text (cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' })
  return r.error !== undefined ? '' : `${r.stdout ?? ''}${r.stderr ?? ''}`.trim()
}

function dpkgVersion (pkg: string): string {
  const v = text('dpkg-query', ['-W', '-f', '${Version}', pkg])
  return v === '' || v.includes('no packages found') ? 'not installed' : v
}

function pkgVersion (file: string): string {
  try {
    return (JSON.parse(readFileSync(file, 'utf8')) as { version?: string }).version ?? '?'
  } catch {
    return 'not installed'
  }
}

export function loadAverage (): string {
  try {
    return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')
  } catch {
    return os.loadavg().map((x) => x.toFixed(2)).join(' ')
  }
}

export function environment (root: string, depsDir: string): Environment {
  const cpuinfo = (() => { try { return readFileSync('/proc/cpuinfo', 'utf8') } catch { return '' } })()
  const model = /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1] ?? os.cpus()[0]?.model ?? '?'
  const osRelease = (() => { try { return /PRETTY_NAME="([^"]*)"/.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? '' } catch { return '' } })()
  const commit = text('git', ['-C', root, 'rev-parse', '--short', 'HEAD'])
  const dirty = text('git', ['-C', root, 'status', '--porcelain', '--', 'src']) !== '' ? ' + uncommitted changes in src/' : ''
  return {
    nproc: cpuCount(),
    cpuModel: model,
    memGiB: os.totalmem() / (1 << 30),
    kernel: os.release(),
    os: osRelease,
    node: process.version,
    portmux: `${pkgVersion(join(root, 'package.json'))} (${commit || 'no git'}${dirty})`,
    fastify: pkgVersion(join(root, 'node_modules', 'fastify', 'package.json')),
    versions: {
      nginx: dpkgVersion('nginx'),
      'libnginx-mod-stream': dpkgVersion('libnginx-mod-stream'),
      haproxy: dpkgVersion('haproxy'),
      sslh: dpkgVersion('sslh'),
      wrk: dpkgVersion('wrk'),
      'nghttp2-client (h2load)': dpkgVersion('nghttp2-client'),
      openssl: text('openssl', ['version']),
      '@httptoolkit/httpolyglot': pkgVersion(join(depsDir, 'node_modules', '@httptoolkit', 'httpolyglot', 'package.json'))
    },
    loadBefore: loadAverage()
  }
}
