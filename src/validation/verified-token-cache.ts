import { LRUCache } from 'lru-cache'
import type { Principal } from './principal'

export interface VerifiedToken {
  claims: Record<string, unknown>
  principal: Principal
}

interface Entry extends VerifiedToken {
  /** Seconds since the epoch, with the clock skew already applied. */
  notBefore: number
  notAfter: number
}

/**
 * Tokens already verified, so a client that repeats its token (every SPA does, for an hour) costs
 * one hash and one lookup instead of a decode, an issuer check, a key lookup and an RSA verify.
 * Keyed by the token's SHA-256 (computed once per request by the caller, which reuses it for the
 * token cache key) so the cache holds no bearer credential; bounded in entries; an entry lives no
 * longer than the token.
 */
export class VerifiedTokenCache {
  private readonly entries: LRUCache<string, Entry>

  constructor (max: number, private readonly skewSeconds: number, private readonly now: () => number = Date.now) {
    this.entries = new LRUCache<string, Entry>({ max })
  }

  get (tokenSha256: string): VerifiedToken | undefined {
    const key = tokenSha256
    const entry = this.entries.get(key)
    if (entry === undefined) return undefined
    const nowSeconds = this.now() / 1000
    if (nowSeconds >= entry.notAfter) {
      this.entries.delete(key)
      return undefined
    }
    return nowSeconds < entry.notBefore ? undefined : entry
  }

  set (tokenSha256: string, verified: VerifiedToken): void {
    const exp = verified.claims.exp
    if (typeof exp !== 'number') return
    const nbf = typeof verified.claims.nbf === 'number' ? verified.claims.nbf : 0
    this.entries.set(tokenSha256, { ...verified, notBefore: nbf - this.skewSeconds, notAfter: exp + this.skewSeconds })
  }

  get size (): number {
    return this.entries.size
  }
}
