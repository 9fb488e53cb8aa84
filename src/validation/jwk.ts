import { createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto'

/** A verification key as the gateway keeps it: parsed once per JWKS fetch (also as SPKI PEM), and its stated issuer. */
export interface VerificationKey {
  key: KeyObject
  pem: string
  /** The JWK's own `issuer` (Entra publishes one, possibly with `{tenantid}`), if any. */
  issuer?: string
}

interface Jwk {
  kty?: unknown
  use?: unknown
  kid?: unknown
  issuer?: unknown
  [member: string]: unknown
}

/**
 * The RSA signing keys of a JWKS document by kid. Keys for other uses or types, and keys that do
 * not parse, are skipped rather than failing the set: one odd key must not hide the good ones.
 */
export function verificationKeys (document: unknown): Map<string, VerificationKey> {
  const keys = new Map<string, VerificationKey>()
  const list = (document as { keys?: unknown } | null)?.keys
  if (!Array.isArray(list)) throw new Error('the JWKS document has no keys array')
  for (const jwk of list as Jwk[]) {
    if (jwk?.kty !== 'RSA' || (jwk.use !== undefined && jwk.use !== 'sig') || typeof jwk.kid !== 'string') continue
    try {
      const key = createPublicKey({ key: { kty: 'RSA', n: jwk.n, e: jwk.e } as JsonWebKey, format: 'jwk' })
      // Entra's keys are RSA-2048; anything weaker is not a key we would trust.
      if ((key.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) continue
      const pem = key.export({ type: 'spki', format: 'pem' }).toString()
      keys.set(jwk.kid, typeof jwk.issuer === 'string' ? { key, pem, issuer: jwk.issuer } : { key, pem })
    } catch {
      continue
    }
  }
  return keys
}
