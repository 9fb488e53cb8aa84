import { ControlError } from '../controls'
import type { Directory } from '../directory'
import type { ConsentGrant, SeedTenant } from '../seed-schema'
import type { SignInState } from './state'

/** Accounts: an admin's "block sign-in". */
export interface UserControls {
  /** The user's sign-in, sessions and refresh tokens stop working (AADSTS50057) until enable(). */
  disable: (tenantId: string, objectId: string) => void
  enable: (tenantId: string, objectId: string) => void
}

/** Delegated permission grants on top of the seed's `consents` (they matter where a tenant has `enforceConsent`). */
export interface ConsentControls {
  /** Records a grant (no `userObjectId`: an admin's, for every user); returns its id. */
  grant: (tenantId: string, consent: ConsentGrant) => string
  /** Withdraws a recorded grant (the consent page's too); false when no grant has this id. */
  revoke: (id: string) => boolean
  /** Withdraws every grant, the seed's included. */
  clear: () => void
}

/** The handle groups of interactive sign-in, in the grouped style of EmulatorControls. */
export interface SignInControls {
  users: UserControls
  consents: ConsentControls
}

export function createSignInControls (directory: Directory, signIn: SignInState): SignInControls {
  const user = (tenantId: string, objectId: string): SeedTenant => {
    const tenant = directory.tenant(tenantId)
    if (tenant === undefined) throw new ControlError('not_found', `no tenant '${tenantId}' in this emulator`)
    if (directory.userByObjectId(tenant, objectId) === undefined) throw new ControlError('not_found', `no user with object id '${objectId}' in tenant '${tenantId}'`)
    return tenant
  }
  return {
    users: {
      disable: (tenantId, objectId) => { signIn.accounts.setEnabled(user(tenantId, objectId).id, objectId, false) },
      enable: (tenantId, objectId) => { signIn.accounts.setEnabled(user(tenantId, objectId).id, objectId, true) }
    },
    consents: {
      grant: (tenantId, consent) => {
        const tenant = directory.tenant(tenantId)
        if (tenant === undefined) throw new ControlError('not_found', `no tenant '${tenantId}' in this emulator`)
        if (directory.application(tenant, consent.clientId) === undefined) throw new ControlError('not_found', `no application '${consent.clientId}' in tenant '${tenantId}'`)
        const resource = directory.resource(tenant, consent.resource)
        if (resource === undefined) throw new ControlError('not_found', `no application '${consent.resource}' in tenant '${tenantId}'`)
        const exposed = directory.exposedScopes(resource).map((s) => s.toLowerCase())
        const unknown = consent.scopes.filter((s) => !exposed.includes(s.toLowerCase()))
        if (unknown.length > 0) throw new ControlError('invalid_request', `${resource.displayName} exposes no scope ${unknown.map((s) => `'${s}'`).join(', ')}`)
        return signIn.consents.add(tenant, consent)
      },
      revoke: (id) => signIn.consents.remove(id),
      clear: () => { signIn.consents.clear() }
    }
  }
}
