import type { KeyObject } from 'node:crypto'
import type { Dispatcher } from 'undici'
import { IdentityUnavailableError, InvalidTokenError } from '../errors'
import { fetchJson } from '../net/fetch-json'
import { verificationKeys, type VerificationKey } from './jwk'
import { TenantKeySet, unrefTimer, type KeySetState } from './key-set'

export interface KeyStoreOptions {
  instance: string
  dispatcher: Dispatcher
  /** Deadline for one JWKS fetch, connect to last byte (identity.timeoutMs). */
  timeoutMs: number
  cooldownMs: number
  refreshIntervalMs?: number
  onRefreshError?: (tenant: string, err: unknown) => void
  /** Every JWKS fetch, for metrics. */
  onFetch?: (tenant: string, ok: boolean) => void
}

const TWELVE_HOURS_MS = 12 * 60 * 60 * 1000

/**
 * Signing keys per tenant, fetched from `<instance>/<tid>/discovery/v2.0/keys`: a location built
 * from configuration and a tenant the issuer policy already allowed, never from anything a token
 * names (`jku`, `x5u`, `jwk`, `x5c` and `iss` hosts are ignored). Per tenant because a key shared
 * across tenants today may not be tomorrow.
 *
 * get-jwks is not used: it caches single keys, refetches the whole JWKS for every unknown kid
 * (no cooldown, no de-duplication across kids) and its timeout option is ignored by fetch.
 */
export class KeyStore {
  private readonly tenants = new Map<string, TenantKeySet<VerificationKey>>()
  private closed = false

  constructor (private readonly options: KeyStoreOptions) {}

  /** The key for `kid`, after checking the key's own `issuer` against the token's tenant. */
  async publicKey (tenant: string, kid: unknown, acceptedIssuers: readonly string[]): Promise<KeyObject> {
    const lookup = await this.keySet(tenant).lookup(usableKid(kid))
    if (!lookup.found) {
      // Retry once a cooldown has passed: the next attempt may then refetch the keys.
      if (lookup.reason === 'unavailable') {
        throw new IdentityUnavailableError('The signing keys of the token issuer could not be loaded; retry later', Math.max(1, Math.ceil(this.options.cooldownMs / 1000)))
      }
      throw new InvalidTokenError('The token was signed by an unknown key', 'unknown_key')
    }
    return issuedFor(lookup.key, tenant, acceptedIssuers)
  }

  /**
   * {@link publicKey} for a key already loaded, answered without a promise: what nearly every new
   * token needs. Undefined when the key would have to be fetched first.
   */
  knownKey (tenant: string, kid: unknown, acceptedIssuers: readonly string[]): KeyObject | undefined {
    const key = this.tenants.get(tenant)?.known(usableKid(kid))
    return key === undefined ? undefined : issuedFor(key, tenant, acceptedIssuers)
  }

  /** Loads a tenant's keys ahead of the first request (failures are reported, not thrown). */
  async warm (tenant: string): Promise<void> {
    await this.keySet(tenant).refresh()
  }

  /** Whether the tenant's keys have been loaded, and whether the latest refresh worked. */
  state (tenant: string): KeySetState {
    return this.tenants.get(tenant)?.state ?? 'not_loaded'
  }

  close (): void {
    this.closed = true
    for (const set of this.tenants.values()) set.close()
  }

  private keySet (tenant: string): TenantKeySet<VerificationKey> {
    let set = this.tenants.get(tenant)
    if (set === undefined) {
      const url = `${this.options.instance}/${tenant}/discovery/v2.0/keys`
      set = new TenantKeySet({
        fetchKeys: async () => {
          try {
            const keys = verificationKeys(await fetchJson(url, this.options.dispatcher, this.options.timeoutMs))
            this.options.onFetch?.(tenant, true)
            return keys
          } catch (err) {
            this.options.onFetch?.(tenant, false)
            throw err
          }
        },
        cooldownMs: this.options.cooldownMs,
        refreshIntervalMs: this.options.refreshIntervalMs ?? TWELVE_HOURS_MS,
        schedule: unrefTimer,
        // Its owner closes the dispatcher along with the store, so a fetch under way or begun after
        // close() fails ("The client is closed"): that is the shutdown, not the authority failing.
        onRefreshError: (err) => { if (!this.closed) this.options.onRefreshError?.(tenant, err) }
      })
      this.tenants.set(tenant, set)
    }
    return set
  }
}

function usableKid (kid: unknown): string {
  if (typeof kid !== 'string' || kid.length === 0 || kid.length > 256) {
    throw new InvalidTokenError('The token header has no usable kid', 'unknown_key')
  }
  return kid
}

/**
 * Entra states each key's issuer, possibly templated; a key of another tenant (or of the MSA
 * tenant) must not validate this tenant's tokens.
 */
function issuedFor (key: VerificationKey, tenant: string, acceptedIssuers: readonly string[]): KeyObject {
  const keyIssuer = key.issuer?.replace('{tenantid}', tenant)
  if (keyIssuer !== undefined && !acceptedIssuers.includes(keyIssuer)) {
    throw new InvalidTokenError('The signing key is not valid for the token issuer', 'key_issuer')
  }
  return key.key
}
