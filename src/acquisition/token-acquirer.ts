import type { AuthenticationResult, ConfidentialClientApplication } from '@azure/msal-node'
import { LRUCache } from 'lru-cache'
import { TokenAcquisitionError } from '../errors'
import type { AppPrincipal, DelegatedPrincipal } from '../validation/principal'
import type { Assertion } from '../validation/assertion'
import { appCacheKey, oboCacheKey, type CacheKey } from './cache-key'
import type { ConfidentialClients } from './confidential-clients'
import { mapEntraError } from './entra-error-map'
import type { FreshToken, TokenCache, TokenCacheCounters, TokenCacheStatus } from './token-cache'

const OBO_KEY_MEMO_ENTRIES = 10_000

export interface DownstreamToken {
  accessToken: string
  expiresOn: Date | null
  /** The cache entry it came from or went into: what {@link TokenAcquirer.evict} takes. */
  cacheKey: CacheKey
  source: 'l1' | 'l2' | 'entra' | 'uncached'
}

export interface TokenAcquirerOptions {
  /** The gateway's client id (part of every cache key). */
  clientId: string
  /** Home tenant GUID or 'organizations'. */
  homeTenantId: string
  cache: TokenCache
}

export interface UserTokenOptions {
  /** A claims request to send to Entra (step-up, CAE); part of the cache key. */
  claims?: string
}

/**
 * Gets the token a route forwards with: OBO for users, client credentials for workloads, through
 * the gateway's own cache. msal-node is called with `skipCache: true` (its OBO cache lookup scans
 * every cached token) and what it stored for the user is removed right after, so its memory does
 * not grow with the number of users.
 */
export class TokenAcquirer {
  readonly cache: TokenCache
  private readonly clientId: string
  private readonly homeTenantId: string
  /**
   * OBO cache keys already derived, per route scope list and assertion hash. Everything else in the
   * key (tenant, cp1) comes from the same token, so a repeated token skips the second SHA-256.
   */
  private readonly oboKeys = new WeakMap<readonly string[], LRUCache<string, CacheKey>>()

  constructor (private readonly clients: ConfidentialClients, options: TokenAcquirerOptions) {
    this.clientId = options.clientId
    this.homeTenantId = options.homeTenantId
    this.cache = options.cache
  }

  async forUser (principal: DelegatedPrincipal, assertion: Assertion, scopes: readonly string[], options: UserTokenOptions = {}): Promise<DownstreamToken> {
    const cp1 = principal.clientCapabilities.includes('cp1')
    const claims = options.claims !== undefined && options.claims.trim() !== '' ? options.claims : undefined
    const key = claims === undefined
      ? this.plainOboKey(principal.tenantId, assertion, scopes, cp1)
      : oboCacheKey({ clientId: this.clientId, tenantId: principal.tenantId, assertion, scopes, claims, cp1 })
    const found = await this.cache.get(key, async () => {
      const app = this.clients.forTenant(principal.tenantId, cp1)
      const result = await settle(app.acquireTokenOnBehalfOf({
        oboAssertion: assertion.token,
        scopes: [...scopes],
        skipCache: true,
        ...(claims !== undefined ? { claims } : {})
      }), scopes)
      await forgetUser(app, result)
      return fresh(result)
    }, { notAfter: principal.expiresAt * 1000 })
    return { accessToken: found.accessToken, expiresOn: found.expiresOn, cacheKey: found.key, source: found.source }
  }

  async forApp (principal: AppPrincipal, scopes: readonly string[]): Promise<DownstreamToken> {
    // A multi-tenant gateway has no single home tenant; the workload's own tenant is the one to ask.
    const tenant = this.homeTenantId === 'organizations' ? principal.tenantId : this.homeTenantId
    const key = appCacheKey({ clientId: this.clientId, tenantId: tenant, scopes, cp1: false })
    const found = await this.cache.get(key, async () => {
      // App tokens are one msal entry per tenant and scope set, overwritten in place: nothing grows.
      const result = await settle(this.clients.forTenant(tenant).acquireTokenByClientCredential({ scopes: [...scopes], skipCache: true }), scopes)
      return fresh(result)
    }, { refreshAhead: true })
    return { accessToken: found.accessToken, expiresOn: found.expiresOn, cacheKey: found.key, source: found.source }
  }

  private plainOboKey (tenantId: string, assertion: Assertion, scopes: readonly string[], cp1: boolean): CacheKey {
    let known = this.oboKeys.get(scopes)
    if (known === undefined) {
      known = new LRUCache({ max: OBO_KEY_MEMO_ENTRIES })
      this.oboKeys.set(scopes, known)
    }
    let key = known.get(assertion.sha256)
    if (key === undefined) {
      key = oboCacheKey({ clientId: this.clientId, tenantId, assertion, scopes, cp1 })
      known.set(assertion.sha256, key)
    }
    return key
  }

  /** Drops a cached token (a downstream API refused it: CAE, revocation). */
  async evict (key: CacheKey): Promise<void> {
    await this.cache.evict(key)
  }

  status (): TokenCacheStatus {
    return this.cache.status()
  }

  stats (): TokenCacheCounters {
    return this.cache.stats()
  }
}

async function settle (pending: Promise<AuthenticationResult | null>, scopes: readonly string[]): Promise<AuthenticationResult> {
  let result: AuthenticationResult | null
  try {
    result = await pending
  } catch (err) {
    throw mapEntraError(err, scopes)
  }
  if (result === null || !result.accessToken) throw new TokenAcquisitionError('Entra returned no access token')
  return result
}

function fresh (result: AuthenticationResult): FreshToken {
  return { accessToken: result.accessToken, expiresOn: result.expiresOn, refreshOn: result.refreshOn }
}

/**
 * Even with skipCache, msal-node writes the OBO answer (account, id token, access and refresh
 * token) into its in-memory cache. The gateway never reads it back, so it is removed at once;
 * removeAccount filters the (now tiny) cache by the user's home account id.
 */
async function forgetUser (app: ConfidentialClientApplication, result: AuthenticationResult): Promise<void> {
  if (result.account === null) return // no client_info/id_token: msal kept the token under one shared key
  try {
    await app.getTokenCache().removeAccount(result.account)
  } catch {
    // Never fail a request over msal's own bookkeeping.
  }
}
