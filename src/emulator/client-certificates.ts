import { createHash } from 'node:crypto'
import { createSelfSignedRsa } from './self-signed'

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
  const now = Date.now()
  const { certificatePem, der, privateKeyPem } = await createSelfSignedRsa({
    commonName: options.commonName ?? 'obo-gateway client credential',
    notBefore: options.notBefore ?? new Date(now - DAY_MS),
    notAfter: options.notAfter ?? new Date(now + 365 * DAY_MS)
  })
  return {
    certificatePem,
    privateKeyPem,
    x5t: createHash('sha1').update(der).digest('base64url'),
    x5tS256: createHash('sha256').update(der).digest('base64url')
  }
}
