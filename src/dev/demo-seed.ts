import { defaultSeed, DEV_IDS, type EmulatorSeed } from '../emulator'

/**
 * What the demo SPA adds to the development seed: downstream APIs whose OBO needs MFA (one per
 * Entra refusal shape), a second factor for Alice, and consent enforced so that one downstream
 * scope asks for it.
 */
export const DEMO_IDS = {
  /** OBO for it answers invalid_grant + suberror basic_action + AADSTS50076 (what Entra usually sends). */
  mfaApi: {
    clientId: 'bf8d80f9-9098-4972-b203-500f535113b2',
    identifierUri: 'api://bf8d80f9-9098-4972-b203-500f535113b2'
  },
  /** OBO for it answers interaction_required + AADSTS50079 (the shape Entra's docs show). */
  mfaApiDocsShape: {
    clientId: 'bf8d80f9-9098-4972-b203-500f535113b3',
    identifierUri: 'api://bf8d80f9-9098-4972-b203-500f535113b3'
  },
  /** The auth context the step-up route demands (`acrs`). */
  authContext: 'c1',
  /** The sample API scope nobody consented to: the consent button's route asks for it. */
  ungrantedScope: 'Items.Write',
  /** Alice's second factor in the dev stack (the plain default seed gives her none). */
  aliceMfaCode: '246810'
} as const

/** The SPA's pages under its origin: MSAL's redirect bridge, the page logout returns to, the consent landing page. */
export function demoSpaUris (origin: string): { redirectUri: string, home: string, consentRedirectUri: string } {
  return { redirectUri: `${origin}/redirect.html`, home: `${origin}/`, consentRedirectUri: `${origin}/consent.html` }
}

/** The development seed with the demo SPA's registrations for an SPA served at `origin`. */
export function demoSeed (origin: string): EmulatorSeed {
  const uris = demoSpaUris(origin)
  const [tenant, ...others] = defaultSeed.tenants
  if (tenant === undefined) throw new Error('the default seed has no tenant')
  const gatewayScopes = [DEV_IDS.gateway.scope, DEV_IDS.gateway.toolsAdminScope]
  const readScope = DEV_IDS.sampleApi.scopes[0]
  const mfaApis = [
    { ...DEMO_IDS.mfaApi, displayName: 'sample-api (MFA required)' },
    { ...DEMO_IDS.mfaApiDocsShape, displayName: 'sample-api (MFA required, docs shape)' }
  ]
  return {
    ...defaultSeed,
    tenants: [{
      ...tenant,
      applications: [
        ...(tenant.applications ?? []).map((app) => {
          if (app.clientId === DEV_IDS.devSpa.clientId) {
            return { ...app, redirectUris: { ...app.redirectUris, spa: [...(app.redirectUris?.spa ?? []), uris.redirectUri, uris.home] } }
          }
          // The consent URI the gateway hands out names the gateway itself; it lands on the SPA's page.
          if (app.clientId === DEV_IDS.gateway.clientId) return { ...app, redirectUris: { ...app.redirectUris, web: [uris.consentRedirectUri] } }
          return app
        }),
        ...mfaApis.map((api) => ({
          clientId: api.clientId,
          displayName: api.displayName,
          secrets: [],
          publicClient: false,
          identifierUris: [api.identifierUri],
          scopes: [readScope],
          accessTokenAcceptedVersion: 2 as const
        }))
      ],
      users: (tenant.users ?? []).map((user) => user.objectId === DEV_IDS.alice.objectId ? { ...user, mfaCode: DEMO_IDS.aliceMfaCode } : user),
      enforceConsent: true,
      // Admin consent (no userObjectId) for everything the dev stack asks for but the one ungranted scope.
      consents: [
        ...(tenant.consents ?? []),
        ...[DEV_IDS.devSpa.clientId, DEV_IDS.devClient.clientId, DEV_IDS.mcpClient.clientId].map((clientId) => ({ clientId, resource: DEV_IDS.gateway.clientId, scopes: gatewayScopes })),
        { clientId: DEV_IDS.gateway.clientId, resource: DEV_IDS.sampleApi.clientId, scopes: [readScope] },
        { clientId: DEV_IDS.gateway.clientId, resource: DEV_IDS.mcpServer.clientId, scopes: [DEV_IDS.mcpServer.scope] },
        ...mfaApis.map((api) => ({ clientId: DEV_IDS.gateway.clientId, resource: api.clientId, scopes: [readScope] }))
      ]
    }, ...others],
    mfaPolicies: [
      ...(defaultSeed.mfaPolicies ?? []),
      { resource: DEMO_IDS.mfaApi.clientId, shape: 'basic_action' },
      { resource: DEMO_IDS.mfaApiDocsShape.clientId, shape: 'interaction_required' }
    ]
  }
}
