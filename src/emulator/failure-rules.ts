import { randomUUID } from 'node:crypto'
import { EntraError } from './entra-errors'
import type { FailureGrant, FailureRule } from './seed-schema'

/**
 * Token endpoint failures the emulator can be told to produce, from the seed (`failures`) or at run
 * time (`emulator.failures.inject`). Each kind answers in Entra's exact shape (the bodies of
 * test/fixtures/entra/token-error-*.json), so clients see what they would see from Entra.
 */

/** The grant_type each grant name of a rule stands for. */
const GRANT_ALIASES: Record<FailureGrant, string> = {
  obo: 'urn:ietf:params:oauth:grant-type:jwt-bearer',
  on_behalf_of: 'urn:ietf:params:oauth:grant-type:jwt-bearer',
  'urn:ietf:params:oauth:grant-type:jwt-bearer': 'urn:ietf:params:oauth:grant-type:jwt-bearer',
  client_credentials: 'client_credentials',
  password: 'password'
}

/** What the token endpoint knows about a request when it looks for a matching failure. */
export interface FailureContext {
  grantType: string
  clientId: string
  tenantId: string
  scopes: string[]
  user?: { oid: string, username?: string }
}

/** A verbatim answer (kind `response`), bypassing Entra's error layout. */
export class RawAnswer {
  constructor (readonly status: number, readonly body: unknown, readonly headers: Record<string, string>) {}
}

export interface FailureHandle {
  /** Names the rule for `remove(id)` (and `DELETE /_emulator/failures/{id}`). */
  id: string
  /** Stops the failure (no-op when it already ran out). */
  remove: () => void
  /** How many requests it has failed (or delayed) so far. */
  hits: () => number
}

interface ActiveRule { id: string, rule: FailureRule, hits: number, removed: boolean }

const MFA_ENROLL_CLAIMS = '{"access_token":{"polids":{"essential":true,"values":["9ab03e19-ed42-4168-b6b7-7001fb3e933a"]}}}'
const MFA_CA_CLAIMS = '{"access_token":{"capolids":{"essential":true,"values":["3e5e4b1c-7b0b-4f38-8a7d-4c2b8e1d9f00"]}}}'

/** Rules in the order they were added; the first one that matches a request applies. */
export class FailureInjector {
  private readonly rules: ActiveRule[] = []

  add (rule: FailureRule): FailureHandle {
    const active: ActiveRule = { id: randomUUID(), rule: { ...rule }, hits: 0, removed: false }
    this.rules.push(active)
    return {
      id: active.id,
      remove: () => { active.removed = true },
      hits: () => active.hits
    }
  }

  /** Stops the rule with this id; false when there is none (removed rules and ones that ran out included). */
  remove (id: string): boolean {
    const found = this.rules.find((r) => r.id === id && !r.removed)
    if (found === undefined) return false
    found.removed = true
    return true
  }

  clear (): void {
    for (const r of this.rules) r.removed = true
    this.rules.length = 0
  }

  /** The rule that applies to this request, counted as used; undefined when none. */
  take (context: FailureContext): FailureRule | undefined {
    const found = this.rules.find((r) => !r.removed && matches(r.rule, context))
    if (found === undefined) return undefined
    found.hits++
    if (found.rule.times !== undefined && found.hits >= found.rule.times) found.removed = true
    return found.rule
  }
}

function matches (rule: FailureRule, c: FailureContext): boolean {
  const same = (a: string | undefined, b: string | undefined): boolean => a === undefined || a.toLowerCase() === (b ?? '').toLowerCase()
  if (rule.grant !== undefined && GRANT_ALIASES[rule.grant] !== c.grantType) return false
  if (!same(rule.clientId, c.clientId) || !same(rule.tenantId, c.tenantId)) return false
  if (!same(rule.userObjectId, c.user?.oid) || !same(rule.username, c.user?.username)) return false
  if (rule.scope !== undefined && !c.scopes.some((s) => s.toLowerCase() === rule.scope?.toLowerCase())) return false
  return true
}

/** The refusal a rule stands for; `slow` has none (the request then proceeds). */
export function failureAnswer (rule: FailureRule, context: FailureContext): EntraError | RawAnswer | undefined {
  const resource = context.scopes.find((s) => !['openid', 'profile', 'offline_access', 'email'].includes(s.toLowerCase())) ?? ''
  const resourceId = resource.includes('/') ? resource.slice(0, resource.lastIndexOf('/')) : resource
  switch (rule.kind) {
    case 'mfa_interaction_required':
      return new EntraError('interaction_required', 50079,
        `Due to a configuration change made by your administrator, or because you moved to a new location, you must enroll in multifactor authentication to access '${resourceId}'.`,
        400, { claims: rule.claims ?? MFA_ENROLL_CLAIMS })
    case 'mfa_basic_action':
      return new EntraError('invalid_grant', 50076,
        `Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access '${resourceId}'.`,
        400, { suberror: 'basic_action', claims: rule.claims ?? MFA_CA_CLAIMS })
    case 'consent_required':
      return new EntraError('invalid_grant', 65001,
        `The user or administrator has not consented to use the application with ID '${context.clientId}'. Send an interactive authorization request for this user and resource.`,
        400, { suberror: 'consent_required' })
    case 'invalid_scope':
      return new EntraError('invalid_scope', 70011, `The provided value for the input parameter 'scope' isn't valid. The scope ${context.scopes.join(' ')} isn't valid.`)
    case 'invalid_client_secret':
      return new EntraError('invalid_client', 7000215, `Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${context.clientId}'.`)
    case 'throttled':
      return new EntraError('temporarily_unavailable', 50196, 'The server terminated an operation because it encountered a client request loop. Please contact your app vendor.',
        rule.status ?? 429, { headers: { 'retry-after': String(rule.retryAfterSeconds ?? 7) } })
    case 'server_error': {
      const status = rule.status ?? 500
      return new EntraError(status === 503 ? 'temporarily_unavailable' : 'server_error', 90033, 'A transient error has occurred. Please try again.', status,
        rule.retryAfterSeconds === undefined ? {} : { headers: { 'retry-after': String(rule.retryAfterSeconds) } })
    }
    case 'response':
      return new RawAnswer(rule.status ?? 400, rule.body ?? {}, rule.headers ?? {})
    case 'slow':
      return undefined
  }
}
