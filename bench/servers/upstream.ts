/**
 * The upstream of the proxy scenarios, three listeners in one process:
 *
 * - `sink`: reads the hello line `SSH-2.0-… <bytes>`, counts that many bytes more, then
 *   answers `OK\n` (so the sender knows everything arrived, without relying on the
 *   proxy carrying a half-close);
 * - `echo`: sends everything back;
 * - `banner`: writes an SSH-like banner the moment a connection arrives (server speaks
 *   first), ignores what it reads, ends when the client ends;
 * - `source`: reads the hello line `SSH-2.0-… <bytes>`, sends that many bytes (64 KiB writes,
 *   with backpressure), then ends: bulk the other way.
 *
 *     node upstream.js '{}'   →   READY {"sink":…,"echo":…,"banner":…,"source":…}
 */
import net, { type Socket } from 'node:net'
import { config, exitOnSignal, portOf, ready } from '../lib/child.js'

const c = config<{ backlog?: number }>()
exitOnSignal()
const backlog = c.backlog ?? 4096

function ignoreErrors (socket: Socket): void {
  socket.on('error', () => {})
}

const sink = net.createServer({ noDelay: true }, (socket) => {
  ignoreErrors(socket)
  let header = ''
  let want = -1
  let got = 0
  socket.on('data', (chunk: Buffer) => {
    if (want < 0) {
      const text = chunk.toString('latin1', 0, Math.min(chunk.length, 256))
      header += text
      const eol = header.indexOf('\r\n')
      if (eol < 0) return
      const m = / (\d+)$/.exec(header.slice(0, eol))
      want = m === null ? 0 : Number(m[1])
      // Bytes of this chunk after the header line.
      const consumed = eol + 2 - (header.length - text.length)
      got = chunk.length - consumed
    } else {
      got += chunk.length
    }
    if (want >= 0 && got >= want) {
      socket.write('OK\n')
      want = Number.POSITIVE_INFINITY
    }
  })
  socket.on('end', () => socket.end())
})

const echo = net.createServer({ noDelay: true }, (socket) => {
  ignoreErrors(socket)
  socket.pipe(socket)
})

const BANNER = Buffer.from('SSH-2.0-portmux-bench-upstream\r\n')
const banner = net.createServer({ noDelay: true }, (socket) => {
  ignoreErrors(socket)
  socket.write(BANNER)
  socket.resume()
  socket.on('end', () => socket.end())
})

const BLOCK = Buffer.alloc(64 * 1024, 0x61)
const source = net.createServer({ noDelay: true }, (socket) => {
  ignoreErrors(socket)
  let header = ''
  let left = -1
  const send = (): void => {
    while (left > 0) {
      const n = Math.min(left, BLOCK.length)
      left -= n
      if (!socket.write(n === BLOCK.length ? BLOCK : BLOCK.subarray(0, n))) {
        socket.once('drain', send)
        return
      }
    }
    socket.end()
  }
  socket.on('data', (chunk: Buffer) => {
    if (left >= 0) return
    header += chunk.toString('latin1', 0, Math.min(chunk.length, 256))
    const eol = header.indexOf('\r\n')
    if (eol < 0) return
    const m = / (\d+)$/.exec(header.slice(0, eol))
    left = m === null ? 0 : Number(m[1])
    send()
  })
})

const listen = (s: net.Server): Promise<number> => new Promise((resolve) => s.listen({ port: 0, host: '127.0.0.1', backlog }, () => resolve(portOf(s))))
ready({ sink: await listen(sink), echo: await listen(echo), banner: await listen(banner), source: await listen(source) })
