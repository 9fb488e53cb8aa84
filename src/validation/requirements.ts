import { authContextClaims } from '../challenges/claims'
import { ClientCapabilityRequiredError, InsufficientClaimsError, InsufficientScopeError } from '../errors'
import type { Principal } from './principal'

/** What a route demands of its callers; an absent block refuses that kind of caller. */
export interface AccessPolicy {
  user?: { requireScopes: readonly string[], authContext?: string }
  app?: { requireRoles: readonly string[] }
}

/**
 * Any-of semantics: one matching scope (users) or role (workloads) is enough. Scope and role names
 * compare exactly, as Entra issues them: no case folding, no prefixes.
 */
export function authorize (principal: Principal, policy: AccessPolicy): void {
  if (principal.kind === 'user') {
    if (policy.user === undefined) throw new InsufficientScopeError('This route does not accept delegated (user) tokens', [])
    const required = policy.user.requireScopes
    if (!required.some((s) => principal.scopes.includes(s))) {
      throw new InsufficientScopeError(`The token needs one of the scopes: ${required.join(', ')}`, required)
    }
    const context = policy.user.authContext
    if (context !== undefined && !principal.authContexts.some((c) => c.toLowerCase() === context.toLowerCase())) {
      // Only a client that declared cp1 can act on a claims challenge; any other would loop.
      if (principal.clientCapabilities.includes('cp1')) {
        throw new InsufficientClaimsError(`This route requires the authentication context ${context}; request a token with the claims in WWW-Authenticate`, authContextClaims(context), 'authcontext', 'route')
      }
      throw new ClientCapabilityRequiredError(`This route requires the authentication context ${context}, which needs a client that declares the cp1 capability (MSAL clientCapabilities: ['CP1']) to handle the claims challenge`)
    }
    return
  }
  if (policy.app === undefined) throw new InsufficientScopeError('This route does not accept app-only tokens', [])
  const required = policy.app.requireRoles
  if (!required.some((r) => principal.roles.includes(r))) {
    throw new InsufficientScopeError(`The token needs one of the app roles: ${required.join(', ')}`, required)
  }
}
