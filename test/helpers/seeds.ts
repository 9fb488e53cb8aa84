import { DEV_IDS, defaultSeed, type EmulatorSeed } from '../../src/emulator'

export const FABRIKAM = { tenantId: 'fab00000-0000-4000-8000-00000000fab0', name: 'fabrikam', user: { username: 'carol@fabrikam.example', password: 'carol-dev-password', objectId: 'ca401000-0000-4000-8000-0000000ca401' } }
export const EVIL = { tenantId: 'e1100000-0000-4000-8000-0000000e1100', name: 'evil', user: { username: 'mallory@evil.example', password: 'mallory-dev-password', objectId: 'de110000-0000-4000-8000-00000000de11' } }

/**
 * The dev seed plus two more tenants where the (multi-tenant) gateway, sample API and dev client
 * are registered too, each with its own user: for multi-tenant and cross-tenant tests.
 */
export function multiTenantSeed (options: { gatewayTokenVersion?: 1 | 2 } = {}): EmulatorSeed {
  const home = defaultSeed.tenants[0]!
  const apps = home.applications
    .filter((a) => ([DEV_IDS.gateway.clientId, DEV_IDS.sampleApi.clientId, DEV_IDS.devClient.clientId] as string[]).includes(a.clientId))
    .map((a) => a.clientId === DEV_IDS.gateway.clientId && options.gatewayTokenVersion !== undefined
      ? { ...a, accessTokenAcceptedVersion: options.gatewayTokenVersion }
      : a)
  const other = (t: typeof FABRIKAM) => ({
    id: t.tenantId,
    name: t.name,
    applications: apps,
    users: [{ ...t.user, name: t.user.username }]
  })
  return { tenants: [{ ...home, applications: home.applications.map((a) => apps.find((b) => b.clientId === a.clientId) ?? a) }, other(FABRIKAM), other(EVIL)] }
}
