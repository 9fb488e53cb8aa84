// @peculiar/x509 builds its services with tsyringe, which needs the Reflect metadata API loaded first.
import 'reflect-metadata'
import { X509Certificate as NodeX509Certificate, createPrivateKey, webcrypto } from 'node:crypto'
import { isIP } from 'node:net'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import * as x509 from '@peculiar/x509'

// P-256 rather than RSA: key generation is instant and every TLS client accepts it.
const KEY_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256' }
const SIGNING_ALGORITHM = { name: 'ECDSA', hash: 'SHA-256' }
const CA_NAME = 'CN=obo-gateway emulator CA'
const DAY_MS = 86_400_000

export interface TlsMaterial {
  caFile: string
  caPem: string
  /** The server's certificate and key, in PEM, for node's TLS options. */
  cert: string
  key: string
}

interface CertificateAuthority {
  certificate: x509.X509Certificate
  privateKey: webcrypto.CryptoKey
}

/**
 * The CA outlives restarts (clients were told to trust its file); the server certificate does not
 * need to, so it is made fresh on every start for the names this run listens on.
 */
export async function prepareTls (dataDir: string, hostNames: readonly string[]): Promise<TlsMaterial> {
  await mkdir(dataDir, { recursive: true })
  const caFile = join(dataDir, 'ca.pem')
  const caKeyFile = join(dataDir, 'ca-key.pem')
  const ca = await loadCa(caFile, caKeyFile) ?? await createCa(caFile, caKeyFile)
  const server = await issueServerCertificate(ca, hostNames)
  return { caFile, caPem: ca.certificate.toString('pem'), ...server }
}

async function loadCa (caFile: string, caKeyFile: string): Promise<CertificateAuthority | undefined> {
  try {
    const [certPem, keyPem] = await Promise.all([readFile(caFile, 'utf8'), readFile(caKeyFile, 'utf8')])
    const nodeCert = new NodeX509Certificate(certPem)
    const keyObject = createPrivateKey(keyPem)
    const usable = nodeCert.ca && nodeCert.checkPrivateKey(keyObject) && Date.parse(nodeCert.validTo) > Date.now() + DAY_MS
    if (!usable) return undefined
    const der = keyObject.export({ type: 'pkcs8', format: 'der' })
    const privateKey = await webcrypto.subtle.importKey('pkcs8', der, KEY_ALGORITHM, false, ['sign'])
    return { certificate: new x509.X509Certificate(certPem), privateKey }
  } catch {
    // Missing, unreadable or foreign files: a new CA replaces them.
    return undefined
  }
}

async function createCa (caFile: string, caKeyFile: string): Promise<CertificateAuthority> {
  const keys = await webcrypto.subtle.generateKey(KEY_ALGORITHM, true, ['sign', 'verify'])
  const now = Date.now()
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    name: CA_NAME,
    keys,
    notBefore: new Date(now - DAY_MS),
    notAfter: new Date(now + 10 * 365 * DAY_MS),
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, webcrypto)
    ]
  }, webcrypto)
  await writeFile(caKeyFile, await toPkcs8Pem(keys.privateKey), { mode: 0o600 })
  await writeFile(caFile, certificate.toString('pem'))
  return { certificate, privateKey: keys.privateKey }
}

async function issueServerCertificate (ca: CertificateAuthority, hostNames: readonly string[]): Promise<{ cert: string, key: string }> {
  const keys = await webcrypto.subtle.generateKey(KEY_ALGORITHM, true, ['sign', 'verify'])
  const names: x509.JsonGeneralName[] = [
    { type: 'dns', value: 'localhost' },
    { type: 'ip', value: '127.0.0.1' },
    { type: 'ip', value: '::1' }
  ]
  for (const name of new Set(hostNames)) {
    if (['localhost', '127.0.0.1', '::1', '0.0.0.0', '::'].includes(name)) continue
    names.push({ type: isIP(name) === 0 ? 'dns' : 'ip', value: name })
  }
  const now = Date.now()
  const certificate = await x509.X509CertificateGenerator.create({
    subject: 'CN=localhost',
    issuer: ca.certificate.subject,
    notBefore: new Date(now - DAY_MS),
    notAfter: new Date(now + 365 * DAY_MS),
    signingKey: ca.privateKey,
    publicKey: keys.publicKey,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(names),
      await x509.AuthorityKeyIdentifierExtension.create(ca.certificate, false, webcrypto)
    ]
  }, webcrypto)
  return { cert: certificate.toString('pem'), key: await toPkcs8Pem(keys.privateKey) }
}

export async function toPkcs8Pem (key: webcrypto.CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key))
  return x509.PemConverter.encode(der, 'PRIVATE KEY')
}
