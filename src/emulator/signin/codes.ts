import { randomBytes } from 'node:crypto'
import type { UserIdentity } from '../tokens'
import type { RedirectKind } from './redirect-uris'

/** Milliseconds since the epoch; the sign-in state's lifetimes are measured with it (tests move it). */
export type Clock = () => number

/** Entra's authorization codes live 10 minutes. */
export const CODE_LIFETIME_MS = 10 * 60 * 1000

/** What a signed-in user approved at /authorize, waiting at the token endpoint. */
export interface CodeGrant {
  tenantId: string
  clientId: string
  redirectUri: string
  redirectKind: RedirectKind
  /** The scopes as /authorize was asked for them. */
  scope: string
  codeChallenge?: string
  codeChallengeMethod?: 'S256' | 'plain'
  nonce?: string
  user: UserIdentity
  /** Seconds. */
  authTime: number
  /** The `claims` parameter of /authorize (JSON text): the tokens honour it at redemption. */
  claims?: string
}

export type Redemption =
  | { outcome: 'ok', grant: CodeGrant }
  | { outcome: 'unknown' }
  | { outcome: 'used', grant: CodeGrant }
  | { outcome: 'expired', grant: CodeGrant, issuedAt: number }

interface Entry { grant: CodeGrant, issuedAt: number, used: boolean }

export class AuthorizationCodes {
  private readonly codes = new Map<string, Entry>()

  constructor (private readonly clock: Clock) {}

  issue (grant: CodeGrant): string {
    this.sweep()
    const code = `1.${randomBytes(48).toString('base64url')}`
    this.codes.set(code, { grant, issuedAt: this.clock(), used: false })
    return code
  }

  /** What a code stands for; it stays redeemable until consume(). */
  find (code: string): Redemption {
    const entry = this.codes.get(code)
    if (entry === undefined) return { outcome: 'unknown' }
    if (entry.used) return { outcome: 'used', grant: entry.grant }
    if (this.clock() - entry.issuedAt >= CODE_LIFETIME_MS) return { outcome: 'expired', grant: entry.grant, issuedAt: entry.issuedAt }
    return { outcome: 'ok', grant: entry.grant }
  }

  /** Single use: once tokens were issued for it, a code only hears "already redeemed". */
  consume (code: string): void {
    const entry = this.codes.get(code)
    if (entry !== undefined) entry.used = true
  }

  /** Codes are kept twice their life so a late replay still hears "already redeemed" or "expired". */
  private sweep (): void {
    const horizon = this.clock() - 2 * CODE_LIFETIME_MS
    for (const [code, entry] of this.codes) if (entry.issuedAt < horizon) this.codes.delete(code)
  }
}
