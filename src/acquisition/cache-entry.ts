/** One cached downstream token, as kept in L1 and (encrypted) in L2. Times are epoch milliseconds. */
export interface CacheEntry {
  accessToken: string
  /** The downstream token's own expiry, from Entra's `expires_in` (msal's `expiresOn`). */
  expiresOn: number
  /** The entry is served until then: the earlier of expiresOn minus a margin and the assertion's expiry. */
  expiresAt: number
  /** App tokens only: from then on a hit also refreshes the token in the background. */
  refreshAt?: number
}

export function isCacheEntry (value: unknown): value is CacheEntry {
  const v = value as Partial<CacheEntry> | null
  return typeof v === 'object' && v !== null && typeof v.accessToken === 'string' && v.accessToken.length > 0 &&
    typeof v.expiresOn === 'number' && typeof v.expiresAt === 'number' &&
    (v.refreshAt === undefined || typeof v.refreshAt === 'number')
}
