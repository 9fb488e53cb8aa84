import type { ConditionalAccess, MfaPolicyHandle } from './conditional-access'
import type { Directory } from './directory'
import type { FailureHandle, FailureInjector } from './failure-rules'
import { LastKeyError, type Keyring } from './keyring'
import type { ManagedIdentityRequestRecord } from './managed-identity'
import type { FailureRule, MfaPolicy, SeedTenant } from './seed-schema'
import type { TokenRequestRecord } from './token-endpoint'

/** Why a control call was refused; the control API answers 400, 404 or 409 by kind. */
export class ControlError extends Error {
  override name = 'ControlError'
  constructor (readonly kind: 'invalid_request' | 'not_found' | 'conflict', message: string) {
    super(message)
  }
}

/** Token endpoint failures the way Entra answers them (see `FailureRule` for the kinds). */
export interface FailureControls {
  /** Makes matching token requests fail (or wait) the way Entra does; the handle (or `remove(id)`) stops it. */
  inject: (rule: FailureRule) => FailureHandle
  /** Stops one rule; false when no active rule has this id. */
  remove: (id: string) => boolean
  /** Removes every failure rule, the seed's included (MFA policies stay: see `mfa.clear`). */
  clear: () => void
}

/** Session revocation, what continuous access evaluation (CAE) and AADSTS50173 are about. */
export interface SessionControls {
  /**
   * Revokes the user's sessions (an admin's "revoke sessions", a password reset): returns the
   * revocation time in seconds. Tokens issued before it are refused as OBO assertions with
   * interaction_required + AADSTS50173 + `nbf` claims; a new sign-in gets tokens issued at or after
   * it. Throws a `not_found` ControlError for a tenant or user the seed does not have.
   */
  revoke: (tenantId: string, userObjectId: string) => number
  /** The user's latest revocation time (seconds), what a CAE-enabled resource compares `iat` with. */
  revocationTime: (tenantId: string, userObjectId: string) => number | undefined
}

/** Conditional-access style "MFA required for this resource" policies. */
export interface MfaControls {
  /**
   * OBO requests for `resource` (client id or identifier URI) fail with MFA claims
   * (interaction_required/50079/polids or basic_action/50076/capolids) unless the assertion's `amr`
   * has `mfa`. A sign-in whose claims request names the policy id gets `amr: ['pwd', 'mfa']`, and
   * OBO tokens carry the assertion's `amr` through.
   */
  require: (policy: MfaPolicy) => MfaPolicyHandle
  /** Stops one policy; false when no active policy has this id. */
  remove: (id: string) => boolean
  /** Removes every MFA policy, the seed's included. */
  clear: () => void
}

/** The tenants' token signing keys (tenants are named by GUID or name). */
export interface KeyControls {
  /** Unannounced rollover, as Entra may do it: a new key signs and is published, the key that signed until now is withdrawn. Returns the new kid. */
  rotate: (tenantId: string) => Promise<string>
  /** Publishes a new key that signs from now on; the others stay in the JWKS (announced rollover). Returns its kid. */
  publish: (tenantId: string) => Promise<string>
  /** Withdraws a key from the JWKS (tokens it signed stop verifying); the next key signs if it was the signing one. A tenant's last key cannot be retired (`conflict`). */
  retire: (tenantId: string, kid: string) => void
  /** The kids the tenant's JWKS publishes, the signing key first. */
  kids: (tenantId: string) => string[]
  /** Signs an arbitrary payload with the tenant's signing key, nothing added (tests use it for expired or odd tokens). */
  sign: (tenantId: string, payload: Record<string, unknown>, header?: Record<string, unknown>) => string
  /** How many times the tenant's JWKS was fetched (tests assert refetch behaviour). */
  jwksFetches: (tenantId: string) => number
}

/** Token request counts, what `GET /_emulator/token-requests` answers. */
export interface TokenRequestCounts {
  total: number
  /** By `grant_type` value, e.g. `urn:ietf:params:oauth:grant-type:jwt-bearer` for OBO. */
  byGrant: Record<string, number>
  byClient: Record<string, number>
  /** By user object id; requests about no user (client credentials) are not counted here. */
  byUser: Record<string, number>
}

/** What the emulator was asked, oldest first (tests assert "Entra was called N times"). */
export interface RecordControls {
  /** Every token request: grant, client, tenant, user, status, AADSTS code, `claims`, injected failure. */
  tokenRequests: () => TokenRequestRecord[]
  tokenRequestCounts: () => TokenRequestCounts
  /** Every managed identity token request. */
  managedIdentityRequests: () => ManagedIdentityRequestRecord[]
}

/** What a test or the control API can change or read at run time, grouped by what it acts on. */
export interface EmulatorControls {
  failures: FailureControls
  sessions: SessionControls
  mfa: MfaControls
  keys: KeyControls
  records: RecordControls
}

export interface ControlDependencies {
  directory: Directory
  keyring: Keyring
  failures: FailureInjector
  conditionalAccess: ConditionalAccess
  tokenRequests: readonly TokenRequestRecord[]
  managedIdentityRequests: readonly ManagedIdentityRequestRecord[]
  jwksFetches: ReadonlyMap<string, number>
}

export function createControls (deps: ControlDependencies): EmulatorControls {
  const tenant = (segment: string): SeedTenant => {
    const found = deps.directory.tenant(segment)
    if (found === undefined) throw new ControlError('not_found', `no tenant '${segment}' in this emulator`)
    return found
  }
  return {
    failures: {
      inject: (rule) => deps.failures.add(rule),
      remove: (id) => deps.failures.remove(id),
      clear: () => { deps.failures.clear() }
    },
    sessions: {
      revoke: (tenantId, userObjectId) => {
        const found = tenant(tenantId)
        if (deps.directory.userByObjectId(found, userObjectId) === undefined) {
          throw new ControlError('not_found', `no user with object id '${userObjectId}' in tenant '${tenantId}'`)
        }
        return deps.conditionalAccess.revoke(found.id, userObjectId)
      },
      revocationTime: (tenantId, userObjectId) => {
        const found = deps.directory.tenant(tenantId)
        return found === undefined ? undefined : deps.conditionalAccess.revocationTime(found.id, userObjectId)
      }
    },
    mfa: {
      require: (policy) => deps.conditionalAccess.addMfaPolicy(policy),
      remove: (id) => deps.conditionalAccess.removeMfaPolicy(id),
      clear: () => { deps.conditionalAccess.clearMfaPolicies() }
    },
    keys: {
      rotate: async (tenantId) => await deps.keyring.rotate(tenant(tenantId).id),
      publish: async (tenantId) => await deps.keyring.publish(tenant(tenantId).id),
      retire: (tenantId, kid) => {
        let retired: boolean
        try {
          retired = deps.keyring.retire(tenant(tenantId).id, kid)
        } catch (err) {
          if (err instanceof LastKeyError) throw new ControlError('conflict', err.message)
          throw err
        }
        if (!retired) throw new ControlError('not_found', `tenant '${tenantId}' publishes no key with kid '${kid}'`)
      },
      kids: (tenantId) => deps.keyring.keys(tenant(tenantId).id).map((k) => k.kid),
      sign: (tenantId, payload, header) => deps.keyring.signRaw(tenant(tenantId).id, payload, header),
      jwksFetches: (tenantId) => deps.jwksFetches.get(deps.directory.tenant(tenantId)?.id ?? tenantId) ?? 0
    },
    records: {
      tokenRequests: () => deps.tokenRequests.map((r) => ({ ...r })),
      tokenRequestCounts: () => countTokenRequests(deps.tokenRequests),
      managedIdentityRequests: () => deps.managedIdentityRequests.map((r) => ({ ...r }))
    }
  }
}

function countTokenRequests (records: readonly TokenRequestRecord[]): TokenRequestCounts {
  // Maps, since a client id is whatever a request sent ("__proto__" included).
  const byGrant = new Map<string, number>()
  const byClient = new Map<string, number>()
  const byUser = new Map<string, number>()
  const add = (into: Map<string, number>, key: string): void => { into.set(key, (into.get(key) ?? 0) + 1) }
  for (const record of records) {
    add(byGrant, record.grantType)
    add(byClient, record.clientId)
    if (record.userObjectId !== undefined) add(byUser, record.userObjectId)
  }
  return { total: records.length, byGrant: Object.fromEntries(byGrant), byClient: Object.fromEntries(byClient), byUser: Object.fromEntries(byUser) }
}
