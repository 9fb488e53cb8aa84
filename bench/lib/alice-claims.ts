import type { DEV_IDS } from '../../src/emulator'

/**
 * The claims of an access token for the gateway as the emulator issues Alice one (v2, delegated,
 * one hour), for benches that sign many distinct tokens directly instead of signing users in.
 * `ids` is passed in so that importing this does not load the emulator.
 */
export function aliceAccessClaims (ids: typeof DEV_IDS, emulatorUrl: string, now: number): Record<string, unknown> {
  return {
    aud: ids.gateway.clientId,
    iss: `${emulatorUrl}/${ids.tenantId}/v2.0`,
    tid: ids.tenantId,
    oid: ids.alice.objectId,
    sub: 'bench-subject',
    azp: ids.devClient.clientId,
    scp: 'access_as_user',
    name: 'Alice',
    preferred_username: 'alice@contoso.example',
    ver: '2.0',
    iat: now,
    nbf: now,
    exp: now + 3600
  }
}
