// @peculiar/x509 builds its services with tsyringe, which needs the Reflect metadata API loaded first.
import 'reflect-metadata'
import { createHash, webcrypto } from 'node:crypto'
import * as x509 from '@peculiar/x509'
import { toPkcs8Pem } from './ca'

const RSA = { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' }
const DAY_MS = 86_400_000

export interface ClientCertificate {
  certificatePem: string
  privateKeyPem: string
  /** base64url SHA-1 and SHA-256 thumbprints of the DER, as `x5t` / `x5t#S256` carry them. */
  x5t: string
  x5tS256: string
}

/**
 * A self-signed RSA certificate for an app registration's certificate credential (Entra accepts
 * self-signed ones). For the seed's `certificates` and for the gateway's `credential.certificate`.
 */
export async function createClientCertificate (options: { commonName?: string, notBefore?: Date, notAfter?: Date } = {}): Promise<ClientCertificate> {
  const keys = await webcrypto.subtle.generateKey(RSA, true, ['sign', 'verify'])
  const now = Date.now()
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    name: `CN=${options.commonName ?? 'obo-gateway client credential'}`,
    keys,
    notBefore: options.notBefore ?? new Date(now - DAY_MS),
    notAfter: options.notAfter ?? new Date(now + 365 * DAY_MS),
    signingAlgorithm: RSA
  }, webcrypto)
  const der = Buffer.from(certificate.rawData)
  return {
    certificatePem: certificate.toString('pem'),
    privateKeyPem: await toPkcs8Pem(keys.privateKey),
    x5t: createHash('sha1').update(der).digest('base64url'),
    x5tS256: createHash('sha256').update(der).digest('base64url')
  }
}
