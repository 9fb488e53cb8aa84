import { X509Certificate, createHash } from 'node:crypto'
import { createSelfSignedRsa } from './self-signed'

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
  const now = Date.now()
  const { certificatePem, der, privateKeyPem } = await createSelfSignedRsa({
    commonName: 'obo-gateway emulator token signing',
    notBefore: new Date(now - DAY_MS),
    notAfter: new Date(now + 5 * 365 * DAY_MS)
  })
  const publicKey = new X509Certificate(certificatePem).publicKey
  const jwk = publicKey.export({ format: 'jwk' })
  return {
    kid: createHash('sha1').update(der).digest('base64url'),
    privateKeyPem,
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    n: jwk.n ?? '',
    e: jwk.e ?? '',
    certificate: der.toString('base64')
  }
}
