import type { KeyObject } from 'node:crypto'
import type { Dispatcher } from 'undici'
import { IdentityUnavailableError, InvalidTokenError } from '../errors'
import { fetchFailure } from '../net/fetch-json'
import { IssuerPolicy } from './issuer-policy'
import { KeyStore } from './key-store'
import type { KeySetState } from './key-set'
import { loadIssuerTemplates } from './openid-metadata'
import { isGuid } from './tenant'

export interface EntraTrustOptions {
  instance: string
  /** Home tenant GUID or 'organizations'. */
  tenantId: string
  allowedTenants: readonly string[]
  dispatcher: Dispatcher
  /** Deadline for one metadata or key fetch (identity.timeoutMs). */
  timeoutMs: number
  keyRefreshCooldownMs: number
  onKeyRefreshError?: (tenant: string, err: unknown) => void
  onKeyFetch?: (tenant: string, ok: boolean) => void
}

/** What readiness reports about the identity side. */
export interface TrustStatus {
  metadata: 'loaded' | 'not_loaded'
  /** Per allowed tenant GUID: its signing keys loaded, loaded but the latest refresh failed (stale), or not loaded. */
  keys: Record<string, KeySetState>
  lastError?: string
}

interface DecodedToken {
  header: Readonly<Record<string, unknown>>
  payload: Record<string, unknown>
}

/**
 * Answers "which key, if any, may have signed this token?" from the token's unverified header and
 * claims. The OpenID metadata is loaded on first need and again after a failure, so a gateway that
 * starts while Entra is unreachable recovers by itself.
 */
export class EntraTrust {
  readonly keys: KeyStore
  private policy?: Promise<IssuerPolicy>
  /** The policy once its metadata has loaded, for {@link knownKeyFor}. */
  private loadedPolicy: IssuerPolicy | undefined
  private lastError: string | undefined
  private closed = false

  constructor (private readonly options: EntraTrustOptions) {
    this.keys = new KeyStore({
      instance: options.instance,
      dispatcher: options.dispatcher,
      timeoutMs: options.timeoutMs,
      cooldownMs: options.keyRefreshCooldownMs,
      onRefreshError: (tenant, err) => {
        this.lastError = `signing keys of ${tenant}: ${(err as Error).message}`
        options.onKeyRefreshError?.(tenant, err)
      },
      ...(options.onKeyFetch ? { onFetch: options.onKeyFetch } : {})
    })
  }

  issuerPolicy (): Promise<IssuerPolicy> {
    if (this.policy === undefined) {
      const { instance, tenantId, allowedTenants, dispatcher } = this.options
      this.policy = loadIssuerTemplates(instance, tenantId, dispatcher, this.options.timeoutMs)
        .then((templates) => {
          this.loadedPolicy = new IssuerPolicy(templates, allowedTenants)
          return this.loadedPolicy
        })
        .catch((err: unknown) => {
          this.policy = undefined
          this.lastError = `OpenID metadata of ${instance}/${tenantId}: ${(err as Error).message}`
          // The client learns what failed, not where: the authority's address is for the log and /readyz.
          throw new IdentityUnavailableError(`The OpenID metadata of the token issuer could not be loaded (${fetchFailure(err)}); retry later`, 30,
            `The OpenID metadata of ${instance}/${tenantId} could not be loaded (${(err as Error).message})`)
        })
    }
    return this.policy
  }

  /** The key to verify `token` with; throws InvalidTokenError for anything we would not trust. */
  async keyFor (token: DecodedToken): Promise<KeyObject> {
    const policy = await this.issuerPolicy()
    const tenant = trustedTenant(token, policy)
    return await this.keys.publicKey(tenant, token.header.kid, policy.expectedIssuers(tenant))
  }

  /**
   * {@link keyFor} answered from what is already loaded, without a promise and its microtasks:
   * undefined when the metadata or the key must be fetched first. Same checks, same errors.
   */
  knownKeyFor (token: DecodedToken): KeyObject | undefined {
    const policy = this.loadedPolicy
    if (policy === undefined) return undefined
    const tenant = trustedTenant(token, policy)
    return this.keys.knownKey(tenant, token.header.kid, policy.expectedIssuers(tenant))
  }

  /**
   * Metadata and the allowed tenants' keys, loaded before the first request needs them. Rejects when
   * the metadata cannot be loaded, but not once closed: the failure is then of the closing itself.
   */
  async warm (): Promise<void> {
    try {
      await this.issuerPolicy()
    } catch (err) {
      if (this.closed) return
      throw err
    }
    await Promise.all(this.options.allowedTenants.filter(isGuid).map((t) => this.keys.warm(t.toLowerCase())))
  }

  status (): TrustStatus {
    const tenants = this.options.allowedTenants.filter(isGuid).map((t) => t.toLowerCase())
    return {
      metadata: this.loadedPolicy !== undefined ? 'loaded' : 'not_loaded',
      keys: Object.fromEntries(tenants.map((t) => [t, this.keys.state(t)])),
      ...(this.lastError !== undefined ? { lastError: this.lastError } : {})
    }
  }

  close (): void {
    this.closed = true
    this.keys.close()
  }
}

/** The token's tenant, once its algorithm and issuer are ones we would trust. */
function trustedTenant ({ header, payload }: DecodedToken, policy: IssuerPolicy): string {
  if (header.alg !== 'RS256') throw new InvalidTokenError('The token must be signed with RS256', 'algorithm')
  return policy.tenantOf(payload.iss, payload.tid)
}
