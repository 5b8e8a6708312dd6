/**
 * `devCertificate()`: a self-signed ECDSA P-256 / SHA-256 certificate for localhost, 127.0.0.1
 * and ::1 (plus the hosts given), checked with node:crypto and by a real TLS handshake.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import crypto, { X509Certificate } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import tls from 'node:tls'
import { once } from 'node:events'
import { devCertificate } from '../src/index.js'

/** A hang fails the test instead of the run. */
const T = { timeout: 30_000 }

// ---------------------------------------------------------------------------------------------
// Just enough DER to find the certificate's outer signatureAlgorithm and signature.

interface Tlv { tag: number, start: number, contentStart: number, end: number }

function tlv (buf: Buffer, offset: number): Tlv {
  const tag = buf[offset]
  let length = buf[offset + 1]
  let contentStart = offset + 2
  if (length & 0x80) {
    const n = length & 0x7f
    length = 0
    for (let i = 0; i < n; i++) length = length * 256 + buf[offset + 2 + i]
    contentStart += n
  }
  const end = contentStart + length
  assert.ok(end <= buf.length, 'DER element overruns the buffer')
  return { tag, start: offset, contentStart, end }
}

function children (buf: Buffer, parent: Tlv): Tlv[] {
  const out: Tlv[] = []
  for (let at = parent.contentStart; at < parent.end;) {
    const child = tlv(buf, at)
    out.push(child)
    at = child.end
  }
  return out
}

function oid (bytes: Buffer): string {
  const parts = [Math.floor(bytes[0] / 40), bytes[0] % 40]
  let value = 0
  for (const b of bytes.subarray(1)) {
    value = value * 128 + (b & 0x7f)
    if ((b & 0x80) === 0) {
      parts.push(value)
      value = 0
    }
  }
  return parts.join('.')
}

const ECDSA_WITH_SHA256 = '1.2.840.10045.4.3.2'

/** The certificate's parts: the signed TBSCertificate, the algorithm named for its signature, the signature. */
function certificateParts (der: Buffer): { tbs: Buffer, algorithm: string, tbsAlgorithm: string, signature: Buffer } {
  const cert = tlv(der, 0)
  assert.equal(cert.tag, 0x30)
  const [tbs, sigAlg, sig] = children(der, cert)
  assert.equal(tbs.tag, 0x30)
  assert.equal(sigAlg.tag, 0x30)
  assert.equal(sig.tag, 0x03)
  const algOid = children(der, sigAlg)[0]
  assert.equal(algOid.tag, 0x06)
  // TBSCertificate: [0] version, serialNumber, signature AlgorithmIdentifier, …
  const tbsFields = children(der, tbs)
  const tbsSigAlg = tbsFields[tbsFields[0].tag === 0xa0 ? 2 : 1]
  const tbsOid = children(der, tbsSigAlg)[0]
  assert.equal(der[sig.contentStart], 0, 'no unused bits in the signature BIT STRING')
  return {
    tbs: der.subarray(tbs.start, tbs.end),
    algorithm: oid(der.subarray(algOid.contentStart, algOid.end)),
    tbsAlgorithm: oid(der.subarray(tbsOid.contentStart, tbsOid.end)),
    signature: der.subarray(sig.contentStart + 1, sig.end)
  }
}

function sans (x509: X509Certificate): string[] {
  return (x509.subjectAltName ?? '').split(', ').filter((s) => s !== '')
}

/** A TLS server with the certificate; resolves with its port. */
async function tlsServer (t: TestContext, key: string, cert: string): Promise<number> {
  const server = tls.createServer({ key, cert }, (socket) => { socket.end('hello') })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return (server.address() as AddressInfo).port
}

/** Connect trusting only `ca`; resolves with whether the peer was authorized and what it said. */
async function handshake (t: TestContext, options: tls.ConnectionOptions): Promise<{ authorized: boolean, error?: string, data: string }> {
  const socket = tls.connect(options)
  t.after(() => { socket.destroy() })
  return await new Promise((resolve) => {
    let data = ''
    socket.on('data', (d: Buffer) => { data += d.toString() })
    socket.once('error', (err: Error & { code?: string }) => resolve({ authorized: false, error: err.code ?? err.message, data }))
    socket.once('end', () => resolve({ authorized: socket.authorized, data }))
  })
}

// ---------------------------------------------------------------------------------------------

test('devCertificate() returns a PEM key and certificate', T, async () => {
  const { key, cert } = await devCertificate()
  assert.equal(typeof key, 'string')
  assert.equal(typeof cert, 'string')
  assert.match(key, /^-----BEGIN (EC |)PRIVATE KEY-----\r?\n/)
  assert.match(cert, /^-----BEGIN CERTIFICATE-----\r?\n[^]*\r?\n-----END CERTIFICATE-----\s*$/)
  assert.doesNotThrow(() => new X509Certificate(cert))
  assert.doesNotThrow(() => crypto.createPrivateKey(key))
})

test('the certificate names localhost, 127.0.0.1 and ::1', T, async () => {
  const { cert } = await devCertificate()
  const x509 = new X509Certificate(cert)
  const names = sans(x509)
  assert.ok(names.includes('DNS:localhost'), x509.subjectAltName)
  assert.ok(names.includes('IP Address:127.0.0.1'), x509.subjectAltName)
  assert.ok(names.includes('IP Address:0:0:0:0:0:0:0:1'), x509.subjectAltName)
  assert.equal(x509.checkHost('localhost'), 'localhost')
  assert.equal(x509.checkIP('127.0.0.1'), '127.0.0.1')
  assert.equal(x509.checkIP('::1'), '::1')
  assert.equal(x509.checkHost('example.test'), undefined)
})

test('hosts add DNS names and IP addresses to the defaults, without duplicates', T, async () => {
  const { cert } = await devCertificate({ hosts: ['example.test', '10.1.2.3', '2001:db8::1', 'localhost'] })
  const x509 = new X509Certificate(cert)
  const names = sans(x509)
  for (const name of ['DNS:localhost', 'IP Address:127.0.0.1', 'IP Address:0:0:0:0:0:0:0:1', 'DNS:example.test', 'IP Address:10.1.2.3']) {
    assert.ok(names.includes(name), `${name} missing from ${x509.subjectAltName}`)
  }
  assert.equal(x509.checkHost('example.test'), 'example.test')
  assert.equal(x509.checkIP('10.1.2.3'), '10.1.2.3')
  assert.equal(x509.checkIP('2001:db8::1'), '2001:db8::1')
  assert.equal(names.filter((n) => n === 'DNS:localhost').length, 1, x509.subjectAltName)
  assert.equal(names.length, 6, x509.subjectAltName)
})

test('the certificate is signed with ECDSA and SHA-256', T, async () => {
  const { cert } = await devCertificate()
  const x509 = new X509Certificate(cert)
  const parts = certificateParts(x509.raw)
  assert.equal(parts.algorithm, ECDSA_WITH_SHA256, 'outer signatureAlgorithm')
  assert.equal(parts.tbsAlgorithm, ECDSA_WITH_SHA256, 'TBSCertificate signature field')
  // The signature verifies over the TBSCertificate with SHA-256, and not with SHA-1.
  assert.equal(crypto.verify('sha256', parts.tbs, x509.publicKey, parts.signature), true)
  assert.equal(crypto.verify('sha1', parts.tbs, x509.publicKey, parts.signature), false)
})

test('the key is EC P-256 and belongs to the self-signed, non-CA server certificate', T, async () => {
  const { key, cert } = await devCertificate()
  const privateKey = crypto.createPrivateKey(key)
  assert.equal(privateKey.asymmetricKeyType, 'ec')
  assert.equal(privateKey.asymmetricKeyDetails?.namedCurve, 'prime256v1')

  const x509 = new X509Certificate(cert)
  assert.equal(x509.publicKey.asymmetricKeyType, 'ec')
  assert.equal(x509.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1')
  assert.equal(x509.checkPrivateKey(privateKey), true)
  assert.equal(x509.checkPrivateKey(crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey), false)

  // Self-signed: its own issuer, signed by its own key. (checkIssued() is false for a leaf
  // whose keyUsage lacks keyCertSign; clients trust it directly as an anchor instead.)
  assert.equal(x509.subject, x509.issuer)
  assert.equal(x509.verify(x509.publicKey), true)
  assert.equal(x509.ca, false)
  assert.ok((x509.keyUsage ?? []).includes('1.3.6.1.5.5.7.3.1'), `extended key usage: ${String(x509.keyUsage)}`)

  const now = Date.now()
  assert.ok(Date.parse(x509.validFrom) <= now, `validFrom ${x509.validFrom}`)
  assert.ok(Date.parse(x509.validTo) > now, `validTo ${x509.validTo}`)
})

test('a TLS server with it is trusted by a client that trusts the certificate, for localhost and the IPs', T, async (t) => {
  const { key, cert } = await devCertificate({ hosts: ['example.test'] })
  const port = await tlsServer(t, key, cert)

  const byName = await handshake(t, { port, host: '127.0.0.1', servername: 'localhost', ca: cert })
  assert.deepEqual(byName, { authorized: true, data: 'hello' })
  const byIp = await handshake(t, { port, host: '127.0.0.1', ca: cert })
  assert.deepEqual(byIp, { authorized: true, data: 'hello' })
  const extra = await handshake(t, { port, host: '127.0.0.1', servername: 'example.test', ca: cert })
  assert.deepEqual(extra, { authorized: true, data: 'hello' })

  // The checks are real: another name, or no trust, fails.
  const wrongName = await handshake(t, { port, host: '127.0.0.1', servername: 'other.test', ca: cert })
  assert.equal(wrongName.error, 'ERR_TLS_CERT_ALTNAME_INVALID')
  const untrusted = await handshake(t, { port, host: '127.0.0.1', servername: 'localhost' })
  assert.equal(untrusted.authorized, false)
  assert.ok(untrusted.error !== undefined)
})
