/**
 * The download client of the proxy scenarios, run as a pinned child: connect, send the hello
 * line `SSH-2.0-… <bytes>` that the upstream's `source` listener answers with that many bytes
 * and its FIN, count them to the end, print one JSON line `{ bytes, seconds, mbps }` (MB/s,
 * 10^6 B/s). Bounded by `timeoutMs`.
 *
 *     node proxy-download-client.js '{"port":12345,"bytes":67108864}'
 */
import net from 'node:net'

const c = JSON.parse(process.argv[2] ?? '{}') as { port: number, bytes: number, host?: string, timeoutMs?: number }
const timer = setTimeout(() => { finish('timeout') }, c.timeoutMs ?? 120_000)
const t0 = process.hrtime.bigint()
let got = 0
const socket = net.connect({ host: c.host ?? '127.0.0.1', port: c.port, noDelay: true })
socket.on('connect', () => { socket.write(`SSH-2.0-portmux-bench ${c.bytes}\r\n`) })
socket.on('data', (d: Buffer) => { got += d.length })
socket.on('end', () => { finish(got === c.bytes ? null : `short: ${got} of ${c.bytes}`) })
socket.on('error', (err: NodeJS.ErrnoException) => { finish(err.code ?? err.message) })

function finish (error: string | null): void {
  clearTimeout(timer)
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9
  process.stdout.write(JSON.stringify(error === null ? { bytes: got, seconds, mbps: got / 1e6 / seconds } : { error }) + '\n')
  socket.destroy()
  process.exitCode = error === null ? 0 : 1
}
