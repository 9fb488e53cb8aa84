// @peculiar/x509 builds its services with tsyringe, which needs the Reflect metadata API loaded first.
import 'reflect-metadata'
import { createHash, webcrypto } from 'node:crypto'
import * as x509 from '@peculiar/x509'
import { toPkcs8Pem } from './ca'

const RSA_ALGORITHM = { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' }
const DAY_MS = 86_400_000

export interface SigningKey {
  /** base64url SHA-1 thumbprint of the certificate, used as both kid and x5t like Entra. */
  kid: string
  privateKeyPem: string
  publicKeyPem: string
  n: string
  e: string
  /** base64 DER of the self-signed certificate, as in the JWKS `x5c`. */
  certificate: string
}

/** Entra always publishes more than one key; the first signs, the others exist so rollover code gets exercised. */
export async function createSigningKeys (count = 2): Promise<SigningKey[]> {
  return Promise.all(Array.from({ length: count }, () => createSigningKey()))
}

async function createSigningKey (): Promise<SigningKey> {
  const keys = await webcrypto.subtle.generateKey(RSA_ALGORITHM, true, ['sign', 'verify'])
  const now = Date.now()
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    name: 'CN=obo-gateway emulator token signing',
    keys,
    notBefore: new Date(now - DAY_MS),
    notAfter: new Date(now + 5 * 365 * DAY_MS),
    signingAlgorithm: RSA_ALGORITHM
  }, webcrypto)
  const der = Buffer.from(certificate.rawData)
  const jwk = await webcrypto.subtle.exportKey('jwk', keys.publicKey)
  const spki = Buffer.from(await webcrypto.subtle.exportKey('spki', keys.publicKey))
  return {
    kid: createHash('sha1').update(der).digest('base64url'),
    privateKeyPem: await toPkcs8Pem(keys.privateKey),
    publicKeyPem: x509.PemConverter.encode(spki, 'PUBLIC KEY'),
    n: jwk.n ?? '',
    e: jwk.e ?? '',
    certificate: der.toString('base64')
  }
}
