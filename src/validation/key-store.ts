import { createPublicKey } from 'node:crypto'
import buildGetJwks from 'get-jwks'
import type { Dispatcher } from 'undici'
import { InvalidTokenError, IdentityUnavailableError } from '../errors'

const KEY_TTL_MS = 12 * 60 * 60 * 1000

/**
 * Signing keys per tenant (Entra may stop sharing a key across tenants at any time), fetched with
 * get-jwks from `<instance>/<tid>/discovery/v2.0/keys`, a location we build, never one a token names.
 * Keys are handed out as PEM strings: @fastify/jwt only reuses its verifier for string keys.
 */
export class KeyStore {
  private readonly jwks
  private readonly pems = new Map<string, string>()

  constructor (private readonly instance: string, dispatcher: Dispatcher) {
    this.jwks = buildGetJwks({
      jwksPath: 'discovery/v2.0/keys',
      max: 1000,
      ttl: KEY_TTL_MS,
      // get-jwks' own `timeout` is ignored by global fetch; the dispatcher's timeouts bound the call.
      fetchOptions: { dispatcher } as unknown as RequestInit
    })
  }

  /** The PEM public key for `kid` in `tenant`, after checking the key's own `issuer` if it states one. */
  async publicKey (tenant: string, kid: unknown, iss: string): Promise<string> {
    if (typeof kid !== 'string' || kid.length === 0 || kid.length > 256) {
      throw new InvalidTokenError('The token header has no usable kid')
    }
    const cacheKey = `${tenant}:${kid}`
    let jwk
    try {
      jwk = await this.jwks.getJwk({ domain: `${this.instance}/${tenant}/`, alg: 'RS256', kid })
    } catch (err) {
      if ((err as { code?: string }).code === 'JWK_NOT_FOUND') throw new InvalidTokenError('The token was signed by an unknown key')
      throw new IdentityUnavailableError('The signing keys of the token issuer could not be loaded', 30)
    }
    if (typeof jwk.issuer === 'string' && jwk.issuer.replace('{tenantid}', tenant) !== iss) {
      throw new InvalidTokenError('The signing key is not valid for the token issuer')
    }
    let pem = this.pems.get(cacheKey)
    if (pem === undefined) {
      pem = createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'pem' }).toString()
      this.pems.set(cacheKey, pem)
    }
    return pem
  }
}
