import { InsufficientScopeError } from '../errors'
import type { Principal } from './principal'

/** What a route demands of its callers; an absent block refuses that kind of caller. */
export interface AccessPolicy {
  user?: { requireScopes: readonly string[] }
  app?: { requireRoles: readonly string[] }
}

/** Any-of semantics: one matching scope (users) or role (workloads) is enough. */
export function authorize (principal: Principal, policy: AccessPolicy): void {
  if (principal.kind === 'user') {
    if (policy.user === undefined) throw new InsufficientScopeError('This route does not accept delegated (user) tokens', [])
    const required = policy.user.requireScopes
    if (!required.some((s) => principal.scopes.includes(s))) {
      throw new InsufficientScopeError(`The token needs one of the scopes: ${required.join(', ')}`, required)
    }
    return
  }
  if (policy.app === undefined) throw new InsufficientScopeError('This route does not accept app-only tokens', [])
  const required = policy.app.requireRoles
  if (!required.some((r) => principal.roles.includes(r))) {
    throw new InsufficientScopeError(`The token needs one of the app roles: ${required.join(', ')}`, required)
  }
}
