import { assertionFrom, type Assertion } from './assertion'
import { bearerCredential, checkBearerSyntax } from './bearer'
import type { EntraTrust } from './entra-trust'
import { decodeJwt, verifyJwt, type ClaimRules } from './jwt'
import { principalFromClaims, type Principal } from './principal'
import { VerifiedTokenCache } from './verified-token-cache'

export interface TokenValidatorOptions {
  audiences: readonly string[]
  clockSkewSeconds: number
  /** Verified tokens remembered by hash until they expire. */
  verifiedTokenCacheSize: number
  now?: () => number
}

export interface ValidatedToken {
  assertion: Assertion
  claims: Record<string, unknown>
  principal: Principal
}

/**
 * An Authorization header in, the verified caller out, or an InvalidTokenError saying why not. A
 * token seen before costs one SHA-256 and one lookup; a new one is decoded once, its key chosen by
 * the issuer policy, its RS256 signature and claims checked with node:crypto directly.
 */
export class TokenValidator {
  private readonly verified: VerifiedTokenCache
  private readonly rules: ClaimRules
  private readonly now: () => number

  constructor (private readonly trust: EntraTrust, options: TokenValidatorOptions) {
    this.now = options.now ?? Date.now
    this.rules = { audiences: new Set(options.audiences), clockSkewSeconds: options.clockSkewSeconds }
    this.verified = new VerifiedTokenCache(options.verifiedTokenCacheSize, options.clockSkewSeconds, this.now)
  }

  async validate (authorization: string | undefined): Promise<ValidatedToken> {
    const token = bearerCredential(authorization)
    const assertion = assertionFrom(token)
    const known = this.verified.get(assertion.sha256)
    if (known !== undefined) return { assertion, claims: known.claims, principal: known.principal }
    checkBearerSyntax(token)
    const jwt = decodeJwt(token)
    const key = this.trust.knownKeyFor(jwt) ?? await this.trust.keyFor(jwt)
    verifyJwt(jwt, key, this.rules, this.now())
    const claims = jwt.payload
    // Shared by every later request with this token: nobody may change it.
    const result = deepFreeze({ claims, principal: principalFromClaims(claims, String(claims.tid).toLowerCase()) })
    this.verified.set(assertion.sha256, result)
    return { assertion, ...result }
  }
}

function deepFreeze<T extends object> (value: T): T {
  Object.freeze(value)
  // Claims are JSON: own enumerable members only, most of them strings and numbers. for...in
  // walks them without the array Object.values would allocate.
  for (const name in value) {
    const member: unknown = value[name]
    if (typeof member === 'object' && member !== null && !Object.isFrozen(member)) deepFreeze(member)
  }
  return value
}
