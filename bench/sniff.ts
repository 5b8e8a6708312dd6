/**
 * Micro-benchmark of the hot sniffing paths (not a test):
 *
 *     npx tsc -p tsconfig.sniff.json && node build-sniff/bench/sniff.js
 *
 * For each case it prints classifications per second and heap bytes allocated per call.
 *
 * Speed: after a warm-up (so that V8 has optimised the code), the case runs in a loop for about
 * half a second; the verdicts are folded into a checksum so that the calls cannot be optimised
 * away. ops/s = calls / elapsed `process.hrtime`.
 *
 * Allocation: V8 counts no allocated bytes we could read, so the bench measures the growth of
 * `process.memoryUsage().heapUsed` over a batch of 1000 calls started right after a full GC.
 * A garbage collection inside the batch would hide allocations, so GCs are watched with a
 * `PerformanceObserver` on `'gc'` entries and any batch that saw one is thrown away. The figure
 * is the median over the clean batches, divided by the batch size; values under ~1 byte per
 * call are noise from the measuring itself and mean "allocates nothing". Typed-array backing
 * stores above 64 bytes live outside the V8 heap; they are shown in the `arrayBuffers` column
 * (the `process.memoryUsage().arrayBuffers` growth, same method). `gc()` is obtained through
 * `v8.setFlagsFromString('--expose-gc')`, so no command-line flag is needed.
 */
import { PerformanceObserver } from 'node:perf_hooks'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { looksLikeTls, parseClientHello, tls } from '../src/sniff/tls.js'
import { http } from '../src/sniff/http.js'
import { parseProxyHeader } from '../src/sniff/proxy-header.js'
import { encodeProxyV1 } from '../src/sniff/proxy-v1.js'
import { encodeProxyV2 } from '../src/sniff/proxy-v2.js'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

// ---------------------------------------------------------------------------------------------
// Inputs

const u16 = (n: number): number[] => [(n >> 8) & 0xff, n & 0xff]

function extension (type: number, data: number[]): number[] {
  return [...u16(type), ...u16(data.length), ...data]
}

/** A TLS 1.3-style ClientHello with SNI, ALPN, supported_versions and padding, `size` bytes on the wire. */
function clientHello (size: number, recordSizes: number[] = []): Uint8Array {
  const name = Array.from('www.portmux-benchmark.example', (c) => c.charCodeAt(0))
  const alpn = [2, 0x68, 0x32, 8, ...Array.from('http/1.1', (c) => c.charCodeAt(0))]
  const suites = [0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8].flatMap(u16)
  const build = (padding: number): number[] => {
    const extensions = [
      ...extension(0x0000, [...u16(name.length + 3), 0, ...u16(name.length), ...name]),
      ...extension(0x0010, [...u16(alpn.length), ...alpn]),
      ...extension(0x002b, [4, 0x03, 0x04, 0x03, 0x03]),
      ...extension(0x000a, [0, 4, 0x00, 0x1d, 0x00, 0x17]),
      ...extension(0x0033, [0, 38, 0x00, 0x1d, 0, 32, ...Array(32).fill(0x42)]),
      ...extension(0x0015, Array(padding).fill(0))
    ]
    const body = [0x03, 0x03, ...Array(32).fill(7), 32, ...Array(32).fill(9), ...u16(suites.length), ...suites, 1, 0, ...u16(extensions.length), ...extensions]
    return [1, 0, ...u16(body.length), ...body]
  }
  const message = build(Math.max(0, size - build(0).length - 5 * (recordSizes.length + 1)))
  const out: number[] = []
  let p = 0
  for (const s of [...recordSizes, message.length]) {
    const end = Math.min(message.length, p + s)
    out.push(0x16, 0x03, 0x01, ...u16(end - p), ...message.slice(p, end))
    p = end
  }
  return Uint8Array.from(out)
}

const hello = clientHello(2048)
const helloIn3Records = clientHello(2048, [700, 700])
const helloStart = hello.subarray(0, 700)
const request = Uint8Array.from(Buffer.from('GET /api/v1/items?page=2&sort=name HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n'))
const proxyV1 = encodeProxyV1({ source: { address: '203.0.113.7', port: 51234 }, destination: { address: '192.0.2.10', port: 443 } })
const proxyV2 = encodeProxyV2({ source: { address: '2001:db8::7', port: 51234 }, destination: { address: '2001:db8::10', port: 443 } })

const check = parseClientHello(hello)
if (check.verdict !== 'match' || check.hello.sni === undefined || hello.length !== 2048) throw new Error('bench input is not a valid hello')

interface Case { name: string, bytes: number, run: () => number }

const cases: Case[] = [
  { name: 'looksLikeTls (2 KB hello)', bytes: hello.length, run: () => looksLikeTls(hello).length },
  { name: 'tls.detect (2 KB hello)', bytes: hello.length, run: () => tls.detect(hello).length },
  { name: 'parseClientHello (2 KB hello, SNI+ALPN)', bytes: hello.length, run: () => { const r = parseClientHello(hello); return r.verdict === 'match' ? r.hello.alpn.length : 0 } },
  { name: 'parseClientHello (2 KB hello, 3 records)', bytes: helloIn3Records.length, run: () => parseClientHello(helloIn3Records).verdict.length },
  { name: 'tls.detect (first 700 bytes: more)', bytes: 700, run: () => tls.detect(helloStart).length },
  { name: 'http.detect (request line)', bytes: request.length, run: () => http.detect(request).length },
  { name: 'parseProxyHeader (v1 TCP4)', bytes: proxyV1.length, run: () => parseProxyHeader(proxyV1).verdict.length },
  { name: 'parseProxyHeader (v2 TCP6)', bytes: proxyV2.length, run: () => parseProxyHeader(proxyV2).verdict.length }
]

// ---------------------------------------------------------------------------------------------
// Measuring

let gcCount = 0
const observer = new PerformanceObserver((list) => { gcCount += list.getEntries().length })
observer.observe({ entryTypes: ['gc'] })

/** Let the observer deliver pending 'gc' entries. */
const settle = async (): Promise<void> => await new Promise((resolve) => setImmediate(resolve))

let checksum = 0

function speed (c: Case): number {
  for (let i = 0; i < 20_000; i++) checksum += c.run()
  let calls = 0
  const start = process.hrtime.bigint()
  let elapsed = 0n
  while (elapsed < 500_000_000n) {
    for (let i = 0; i < 10_000; i++) checksum += c.run()
    calls += 10_000
    elapsed = process.hrtime.bigint() - start
  }
  return calls / (Number(elapsed) / 1e9)
}

const BATCH = 1000

async function allocation (c: Case): Promise<{ heap: number, arrayBuffers: number }> {
  const heap: number[] = []
  const external: number[] = []
  for (let attempt = 0; attempt < 60 && heap.length < 15; attempt++) {
    gc()
    await settle()
    await settle()
    const gcsBefore = gcCount
    const before = process.memoryUsage()
    for (let i = 0; i < BATCH; i++) checksum += c.run()
    const after = process.memoryUsage()
    await settle()
    await settle()
    if (gcCount > gcsBefore) continue
    heap.push((after.heapUsed - before.heapUsed) / BATCH)
    external.push((after.arrayBuffers - before.arrayBuffers) / BATCH)
  }
  const median = (xs: number[]): number => xs.length === 0 ? NaN : [...xs].sort((a, b) => a - b)[xs.length >> 1]
  return { heap: median(heap), arrayBuffers: median(external) }
}

async function main (): Promise<void> {
  const rows: string[][] = [['case', 'bytes in', 'ops/s', 'ns/op', 'heap B/op', 'arrayBuffers B/op']]
  for (const c of cases) {
    const opsPerSecond = speed(c)
    const { heap, arrayBuffers } = await allocation(c)
    rows.push([
      c.name,
      String(c.bytes),
      Math.round(opsPerSecond).toLocaleString('en-US'),
      (1e9 / opsPerSecond).toFixed(0),
      Number.isNaN(heap) ? 'n/a' : Math.max(0, heap).toFixed(1),
      Number.isNaN(arrayBuffers) ? 'n/a' : Math.max(0, arrayBuffers).toFixed(1)
    ])
  }
  observer.disconnect()
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)))
  for (const [index, row] of rows.entries()) {
    console.log(row.map((cell, i) => i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i])).join('  '))
    if (index === 0) console.log(widths.map((w) => '-'.repeat(w)).join('  '))
  }
  console.log(`\nnode ${process.version}, checksum ${checksum}`)
}

await main()
