/**
 * Starting the servers under test and the peers, each in its own process pinned to the
 * server CPU: the Node servers of bench/servers, nginx (error_page 497 redirect, stream
 * proxy), HAProxy `mode tcp` and sslh-select — the last three with one thread, no master
 * process and no logging, to match one Node process.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Ctx } from './context.js'
import { freePort, start, waitForLine, waitForPort, type Child } from './proc.js'

export interface Running {
  name: string
  child: Child
  /** Ports by role (`main`, or the upstream's `sink`/`echo`/`banner`). */
  port: number
  ports: Record<string, number>
}

/** Lifetime limit of any server child (seconds): far beyond one scenario, still bounded. */
const LIMIT = 1800

function unique (ctx: Ctx, name: string): string {
  const dir = join(ctx.tmp, `${name}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`)
  mkdirSync(dir, { recursive: true })
  return dir
}

/** A Node server of bench/servers; `profile` runs it with --cpu-prof into ctx.profileDir. */
export async function startNode (ctx: Ctx, name: string, file: string, config: Record<string, unknown>, o: { cpu?: string | null, profile?: boolean } = {}): Promise<Running> {
  const args: string[] = []
  if (o.profile === true && ctx.profileDir !== null) {
    args.push('--cpu-prof', `--cpu-prof-dir=${ctx.profileDir}`, `--cpu-prof-name=${name}-${Date.now()}.cpuprofile`)
  }
  args.push(join(ctx.buildBench, 'servers', file), JSON.stringify(config))
  const child = await start(name, process.execPath, args, {
    cpu: o.cpu === undefined ? ctx.cpu.server : o.cpu,
    limitSeconds: LIMIT,
    raiseNofile: true,
    env: { ...process.env, NODE_ENV: 'production' }
  })
  const m = await waitForLine(child, /^READY (.*)$/, 20000)
  const ports = JSON.parse(m[1]) as Record<string, number>
  return { name, child, port: ports.port ?? 0, ports }
}

export async function startUpstream (ctx: Ctx): Promise<Running> {
  return await startNode(ctx, 'upstream', 'upstream.js', {}, { cpu: ctx.cpu.load })
}

/** nginx with one process (`master_process off`), no access log, temp paths in a scratch dir. */
async function startNginx (ctx: Ctx, name: string, body: (port: number) => string): Promise<Running> {
  const dir = unique(ctx, name)
  const port = await freePort()
  const conf = `# portmux benchmark: ${name}
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log stderr error;
events { worker_connections 19950; }
${body(port)}
`
  const file = join(dir, 'nginx.conf')
  writeFileSync(file, conf)
  const child = await start(name, 'nginx', ['-p', dir, '-c', file, '-e', 'stderr'], { cpu: ctx.cpu.server, limitSeconds: LIMIT, raiseNofile: true })
  await waitForPort(port, 10000, child)
  return { name, child, port, ports: { port } }
}

/** nginx's usual way to redirect plain HTTP sent to its TLS port: `error_page 497`. */
export async function startNginxRedirect (ctx: Ctx): Promise<Running> {
  return await startNginx(ctx, 'nginx-497', (port) => `http {
  access_log off;
  client_body_temp_path ${ctx.tmp}/nginx-body;
  proxy_temp_path ${ctx.tmp}/nginx-proxy;
  fastcgi_temp_path ${ctx.tmp}/nginx-fastcgi;
  uwsgi_temp_path ${ctx.tmp}/nginx-uwsgi;
  scgi_temp_path ${ctx.tmp}/nginx-scgi;
  server {
    listen 127.0.0.1:${port} ssl backlog=4096;
    ssl_certificate ${ctx.tls.cert};
    ssl_certificate_key ${ctx.tls.key};
    ssl_protocols TLSv1.2 TLSv1.3;
    error_page 497 =301 https://$host:$server_port$request_uri;
    location / { default_type application/json; return 200 '{"hello":"world"}'; }
  }
}`)
}

/** nginx `stream` TCP proxy with default buffers. */
export async function startNginxStream (ctx: Ctx, upstream: number): Promise<Running> {
  return await startNginx(ctx, 'nginx-stream', (port) => `stream {
  server {
    listen 127.0.0.1:${port} backlog=4096;
    proxy_pass 127.0.0.1:${upstream};
  }
}`)
}

/** HAProxy `mode tcp`, one thread, foreground (`-db`), no logging. */
export async function startHaproxy (ctx: Ctx, upstream: number): Promise<Running> {
  const dir = unique(ctx, 'haproxy')
  const port = await freePort()
  const file = join(dir, 'haproxy.cfg')
  writeFileSync(file, `# portmux benchmark: HAProxy mode tcp
global
  nbthread 1
  maxconn 9990

defaults
  mode tcp
  timeout connect 10s
  timeout client 300s
  timeout server 300s

frontend bench
  bind 127.0.0.1:${port}
  maxconn 9990
  default_backend upstream

backend upstream
  server up 127.0.0.1:${upstream}
`)
  const child = await start('haproxy', 'haproxy', ['-db', '-f', file], { cpu: ctx.cpu.server, limitSeconds: LIMIT, raiseNofile: true })
  await waitForPort(port, 10000, child)
  return { name: 'haproxy', child, port, ports: { port } }
}

/** sslh-select in the foreground with a temporary config: SSH probe (and anything else) to the upstream. */
export async function startSslh (ctx: Ctx, upstream: number): Promise<Running> {
  const dir = unique(ctx, 'sslh')
  const port = await freePort()
  const file = join(dir, 'sslh.cfg')
  writeFileSync(file, `# portmux benchmark: sslh-select
foreground: true;
inetd: false;
numeric: true;
transparent: false;
timeout: 2;
listen: ( { host: "127.0.0.1"; port: "${port}"; } );
protocols: (
  { name: "ssh"; host: "127.0.0.1"; port: "${upstream}"; log_level: 0; },
  { name: "anyprot"; host: "127.0.0.1"; port: "${upstream}"; log_level: 0; }
);
`)
  const child = await start('sslh-select', 'sslh-select', [`-F${file}`], { cpu: ctx.cpu.server, limitSeconds: LIMIT, raiseNofile: true })
  await waitForPort(port, 10000, child)
  return { name: 'sslh-select', child, port, ports: { port } }
}

/** A proxy contender by name, in front of `upstream`. */
export async function startProxy (ctx: Ctx, name: ProxyName, upstream: number, extra: Record<string, unknown> = {}, profile = false, tag = ''): Promise<Running> {
  const suffix = tag === '' ? '' : `-${tag}`
  switch (name) {
    case 'portmux': return await startNode(ctx, `portmux${suffix}`, 'portmux-proxy.js', { tls: ctx.tls, upstream, ...extra }, { profile })
    case 'node-pipe': return await startNode(ctx, `node-pipe${suffix}`, 'node-baseline.js', { mode: 'pipe', upstream }, { profile })
    case 'nginx': return await startNginxStream(ctx, upstream)
    case 'haproxy': return await startHaproxy(ctx, upstream)
    case 'sslh-select': return await startSslh(ctx, upstream)
  }
}

export type ProxyName = 'portmux' | 'node-pipe' | 'nginx' | 'haproxy' | 'sslh-select'
