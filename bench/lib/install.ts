/**
 * What the benchmark needs, installed by the harness itself:
 *
 * - Debian packages (apt-get, after `apt-get update`): wrk, nghttp2-client (h2load), sslh
 *   (sslh-select), haproxy, nginx with libnginx-mod-stream, openssl, coreutils (timeout),
 *   util-linux (taskset), procps. Only missing ones are installed. Services those packages
 *   would start are kept from starting (a temporary policy-rc.d when none exists), so
 *   nothing listens on port 80 afterwards.
 * - npm packages used only for benchmarking, into bench/.deps (`npm install --prefix`), so
 *   the project's package.json and lockfile stay untouched: @httptoolkit/httpolyglot.
 */
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync, unlinkSync, writeFileSync, chmodSync } from 'node:fs'
import { join } from 'node:path'

export const APT_PACKAGES = ['wrk', 'nghttp2-client', 'sslh', 'haproxy', 'nginx', 'libnginx-mod-stream', 'openssl', 'coreutils', 'util-linux', 'procps']
export const NPM_PACKAGES: Record<string, string> = { '@httptoolkit/httpolyglot': '3.1.0' }

function installed (pkg: string): boolean {
  const r = spawnSync('dpkg-query', ['-W', '-f', '${Status}', pkg], { encoding: 'utf8' })
  return r.status === 0 && r.stdout.includes('install ok installed')
}

function sh (cmd: string, args: string[], env?: NodeJS.ProcessEnv): void {
  const r = spawnSync(cmd, args, { stdio: 'inherit', env: env ?? process.env, timeout: 15 * 60_000 })
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${String(r.status ?? r.signal)})`)
}

export function installApt (log: (m: string) => void): void {
  const missing = APT_PACKAGES.filter((p) => !installed(p))
  if (missing.length === 0) {
    log('apt: all packages present (' + APT_PACKAGES.join(', ') + ')')
    return
  }
  log(`apt: installing ${missing.join(', ')}`)
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  const policy = '/usr/sbin/policy-rc.d'
  const ownPolicy = !existsSync(policy)
  if (ownPolicy) {
    writeFileSync(policy, '#!/bin/sh\n# written by portmux bench/lib/install.ts while installing; removed afterwards\nexit 101\n')
    chmodSync(policy, 0o755)
  }
  try {
    sh('apt-get', ['update', '-q'], env)
    sh('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...missing], env)
  } finally {
    if (ownPolicy) { try { unlinkSync(policy) } catch {} }
  }
}

export function installNpm (depsDir: string, log: (m: string) => void): void {
  const wanted = Object.entries(NPM_PACKAGES).filter(([name, version]) => {
    try {
      const pkg = JSON.parse(readFileSync(join(depsDir, 'node_modules', name, 'package.json'), 'utf8')) as { version?: string }
      return pkg.version !== version
    } catch {
      return true
    }
  })
  if (wanted.length === 0) {
    log(`npm: ${Object.keys(NPM_PACKAGES).join(', ')} present in ${depsDir}`)
    return
  }
  const specs = wanted.map(([n, v]) => `${n}@${v}`)
  log(`npm: installing ${specs.join(' ')} into ${depsDir}`)
  sh('npm', ['install', '--prefix', depsDir, '--no-audit', '--no-fund', '--save-exact', ...specs])
}
