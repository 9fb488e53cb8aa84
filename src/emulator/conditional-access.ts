import { randomUUID } from 'node:crypto'
import type { Directory } from './directory'
import { EntraError, entraInstant } from './entra-errors'
import type { MfaPolicy, MfaShape, SeedApplication, SeedTenant } from './seed-schema'

/**
 * The user-dependent side of Entra the emulator plays: session revocation (what CAE and AADSTS50173
 * are about), `nbf` claims requests, and conditional-access style "MFA required for resource X"
 * policies. Unlike the unconditional failure rules, these look at the user's token: an OBO
 * assertion issued before a revocation, or without `mfa` in `amr`, is refused with the claims a
 * fresh sign-in must carry; a sign-in that carries them succeeds.
 */

export interface MfaPolicyHandle {
  /** Names this policy for `remove(id)` (and `DELETE /_emulator/mfa-policies/{id}`); several policies may share a `policyId`. */
  id: string
  /** The id the policy's claims name (`polids` / `capolids`). */
  policyId: string
  /** The claims request (JSON text) an OBO refusal carries. */
  claims: string
  /** Stops enforcing the policy. */
  remove: () => void
  /** How many OBO requests it refused so far. */
  hits: () => number
}

const DEFAULT_POLICY_IDS: Record<MfaShape, string> = {
  interaction_required: '9ab03e19-ed42-4168-b6b7-7001fb3e933a',
  basic_action: '3e5e4b1c-7b0b-4f38-8a7d-4c2b8e1d9f00'
}

interface ActivePolicy { id: string, policy: MfaPolicy, shape: MfaShape, policyId: string, hits: number, removed: boolean }

/** What a `claims` request asks of this emulator's user checks. */
export interface SessionClaimsRequest {
  /** `access_token.nbf.value`: the token must not be issued before this (seconds). */
  notBefore?: number
  /** `access_token.polids` / `capolids` values: conditional-access policies the sign-in is to satisfy. */
  policyIds?: string[]
}

/** The user an OBO request is about, as its (verified) assertion describes them. */
export interface AssertionUser {
  oid: string
  username: string
  /** `iat` of the assertion (seconds). */
  issuedAt: number
  amr: readonly string[]
}

/** How far into the future an `nbf` request may push a token's `iat`/`nbf` (seconds). */
const MAX_NBF_LEAD_SECONDS = 60

export class ConditionalAccess {
  private readonly revocations = new Map<string, number>()
  private readonly policies: ActivePolicy[] = []
  /** Every policy id ever registered: a sign-in naming one completes MFA even after the policy went. */
  private readonly knownPolicyIds = new Set<string>()

  constructor (private readonly directory: Directory) {}

  /**
   * Revokes the user's sessions now: every token issued so far for the user is older than the
   * revocation time, tokens issued from now on are not (the time is the next whole second after
   * anything issued before, so tokens issued in the same second cannot be told apart wrongly).
   */
  revoke (tenantId: string, oid: string, nowMs = Date.now()): number {
    const key = userKey(tenantId, oid)
    const previous = this.revocations.get(key) ?? 0
    const time = Math.max(Math.floor(nowMs / 1000), previous) + 1
    this.revocations.set(key, time)
    return time
  }

  revocationTime (tenantId: string, oid: string): number | undefined {
    return this.revocations.get(userKey(tenantId, oid))
  }

  addMfaPolicy (policy: MfaPolicy): MfaPolicyHandle {
    const shape = policy.shape ?? 'basic_action'
    const policyId = policy.policyId ?? DEFAULT_POLICY_IDS[shape]
    const active: ActivePolicy = { id: randomUUID(), policy: { ...policy }, shape, policyId, hits: 0, removed: false }
    this.policies.push(active)
    this.knownPolicyIds.add(policyId.toLowerCase())
    return {
      id: active.id,
      policyId,
      claims: mfaClaims(shape, policyId),
      remove: () => { active.removed = true },
      hits: () => active.hits
    }
  }

  /** Stops enforcing the policy with this id; false when there is none. */
  removeMfaPolicy (id: string): boolean {
    const found = this.policies.find((p) => p.id === id && !p.removed)
    if (found === undefined) return false
    found.removed = true
    return true
  }

  clearMfaPolicies (): void {
    for (const p of this.policies) p.removed = true
    this.policies.length = 0
  }

  /**
   * The `iat`/`nbf` a new token for this user gets: now, unless a revocation or an `nbf` request
   * says later (never more than a minute ahead, which any validator's clock skew absorbs).
   */
  issuedAt (tenantId: string, oid: string, requested: SessionClaimsRequest, nowMs = Date.now()): number {
    const now = Math.floor(nowMs / 1000)
    const floor = Math.max(this.revocationTime(tenantId, oid) ?? 0, requested.notBefore ?? 0)
    return Math.max(now, Math.min(floor, now + MAX_NBF_LEAD_SECONDS))
  }

  /** Whether a sign-in's claims request completes multi-factor authentication (names a known MFA policy). */
  completesMfa (requested: SessionClaimsRequest): boolean {
    return (requested.policyIds ?? []).some((id) => this.knownPolicyIds.has(id.toLowerCase()))
  }

  /**
   * Entra's checks on an OBO assertion's user, in Entra's order: a revoked session (or an assertion
   * older than a requested `nbf`) needs a fresh sign-in (AADSTS50173); then the resource's MFA
   * policy, satisfied only by `mfa` in the assertion's `amr`.
   */
  checkOnBehalfOf (tenant: SeedTenant, resource: SeedApplication, user: AssertionUser, requested: SessionClaimsRequest): void {
    const validFrom = Math.max(this.revocationTime(tenant.id, user.oid) ?? 0, requested.notBefore ?? 0)
    if (user.issuedAt < validFrom) {
      throw new EntraError('interaction_required', 50173,
        `The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password. The grant was issued on '${entraInstant(user.issuedAt * 1000)}' and the TokensValidFrom date (before which tokens are not valid) for this user is '${entraInstant(validFrom * 1000)}'.`,
        400, { claims: nbfClaims(validFrom) })
    }
    if (user.amr.some((m) => m.toLowerCase() === 'mfa')) return
    const found = this.policies.find((p) => !p.removed && this.applies(p.policy, tenant, resource, user))
    if (found === undefined) return
    found.hits++
    const resourceId = resource.clientId
    if (found.shape === 'interaction_required') {
      throw new EntraError('interaction_required', 50079,
        `Due to a configuration change made by your administrator, or because you moved to a new location, you must enroll in multifactor authentication to access '${resourceId}'.`,
        400, { claims: mfaClaims(found.shape, found.policyId) })
    }
    throw new EntraError('invalid_grant', 50076,
      `Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access '${resourceId}'.`,
      400, { suberror: 'basic_action', claims: mfaClaims(found.shape, found.policyId) })
  }

  /** Whether an MFA policy covers this resource for this user: interactive sign-in then asks for the second factor. */
  mfaRequired (tenant: SeedTenant, resource: SeedApplication, user: { oid: string, username: string }): boolean {
    return this.policies.some((p) => !p.removed && this.applies(p.policy, tenant, resource, user))
  }

  private applies (policy: MfaPolicy, tenant: SeedTenant, resource: SeedApplication, user: { oid: string, username: string }): boolean {
    if (policy.tenantId !== undefined && this.directory.tenant(policy.tenantId) !== tenant) return false
    if (policy.userObjectId !== undefined && policy.userObjectId.toLowerCase() !== user.oid.toLowerCase()) return false
    if (policy.username !== undefined && policy.username.toLowerCase() !== user.username.toLowerCase()) return false
    return this.directory.resource(tenant, policy.resource) === resource
  }
}

/** The claims request CAE and AADSTS50173 carry: Graph's own spelling, space included. */
export function nbfClaims (time: number): string {
  return `{"access_token":{"nbf":{"essential":true, "value":"${time}"}}}`
}

function mfaClaims (shape: MfaShape, policyId: string): string {
  return JSON.stringify({ access_token: { [shape === 'interaction_required' ? 'polids' : 'capolids']: { essential: true, values: [policyId] } } })
}

function userKey (tenantId: string, oid: string): string {
  return `${tenantId.toLowerCase()}|${oid.toLowerCase()}`
}
