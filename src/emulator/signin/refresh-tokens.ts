import { randomBytes } from 'node:crypto'
import type { UserIdentity } from '../tokens'
import type { Clock } from './codes'

/** A single-page app's refresh tokens end 24 hours after sign-in, however often they are redeemed. */
export const SPA_REFRESH_LIFETIME_MS = 24 * 3600 * 1000
/** Other clients' refresh tokens: Entra's 90 days of inactivity. */
export const REFRESH_INACTIVITY_MS = 90 * 24 * 3600 * 1000

export interface RefreshGrant {
  tenantId: string
  clientId: string
  user: UserIdentity
  /** When the chain started (seconds): compared with session revocations (AADSTS50173). */
  issuedAt: number
  authTime?: number
  /** Issued through a `spa` redirect URI: redeemable only cross-origin, fixed 24-hour life. */
  spa: boolean
  /** Epoch ms after which it is refused. */
  expiresAt: number
}

/** Entra's multi-resource refresh tokens: opaque, redeemable for any resource the user consented to. */
export class RefreshTokens {
  private readonly tokens = new Map<string, RefreshGrant>()

  constructor (private readonly clock: Clock) {}

  /** A new chain: the lifetime starts now. */
  issue (grant: Omit<RefreshGrant, 'expiresAt'>): string {
    const now = this.clock()
    return this.store({ ...grant, expiresAt: now + (grant.spa ? SPA_REFRESH_LIFETIME_MS : REFRESH_INACTIVITY_MS) })
  }

  /** Rotation: the successor of a redeemed token; a spa token's successor keeps its end. */
  rotate (previous: RefreshGrant): string {
    return this.store({ ...previous, expiresAt: previous.spa ? previous.expiresAt : this.clock() + REFRESH_INACTIVITY_MS })
  }

  find (token: string): RefreshGrant | undefined {
    return this.tokens.get(token)
  }

  expired (grant: RefreshGrant): boolean {
    return this.clock() >= grant.expiresAt
  }

  private store (grant: RefreshGrant): string {
    const token = `1.${randomBytes(64).toString('base64url')}`
    this.tokens.set(token, grant)
    return token
  }
}
