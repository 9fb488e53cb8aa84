import type { EmulatorSeed } from './seed-schema'

/** The identities the dev stack and the tests rely on; change them and both break. */
export const DEV_IDS = {
  tenantId: '7d3c1b52-6e5c-4a1f-9c0e-2f4b8a6d9e10',
  tenantName: 'contoso',
  gateway: {
    clientId: '5617d05d-1e0b-4a47-9d1a-3f2c3b7a9e11',
    secret: 'dev-gateway-secret',
    identifierUri: 'api://5617d05d-1e0b-4a47-9d1a-3f2c3b7a9e11',
    scope: 'access_as_user',
    appRole: 'Gateway.Relay',
    /** What the dev stack's MCP route asks of a tools/call of its guarded tool (a step-up). */
    toolsAdminScope: 'Tools.Admin'
  },
  sampleApi: {
    clientId: 'bf8d80f9-9098-4972-b203-500f535113b1',
    identifierUri: 'api://bf8d80f9-9098-4972-b203-500f535113b1',
    scopes: ['Items.Read', 'Items.Write'],
    appRole: 'Items.Read.All'
  },
  /** The public client for CLIs and desktop tools: ROPC, device code, loopback redirects on any port. */
  devClient: {
    clientId: 'c0ffee00-1234-4abc-8def-000000000001',
    redirectUri: 'http://localhost'
  },
  /** A single-page app (MSAL.js): codes and refresh tokens redeemable only cross-origin. */
  devSpa: {
    clientId: 'c0ffee00-1234-4abc-8def-000000000002',
    redirectUris: ['http://localhost:8080/', 'http://127.0.0.1:8080/']
  },
  /** The sample MCP server's own app registration: the audience of the OBO tokens it receives. */
  mcpServer: {
    clientId: '3c0de000-0000-4000-8000-0000000003c0',
    identifierUri: 'api://3c0de000-0000-4000-8000-0000000003c0',
    scope: 'Tools.Invoke'
  },
  /** The public client MCP clients sign in with (what the gateway's registration endpoint hands out). */
  mcpClient: {
    clientId: '3c0de000-0000-4000-8000-0000000003c1'
  },
  daemon: {
    clientId: 'd4e40000-0000-4000-8000-000000000003',
    secret: 'dev-daemon-secret'
  },
  alice: {
    username: 'alice@contoso.example',
    password: 'alice-dev-password',
    objectId: 'a11ce000-0000-4000-8000-00000000a11c',
    name: 'Alice Example'
  },
  bob: {
    username: 'bob@contoso.example',
    password: 'bob-dev-password',
    objectId: 'b0b00000-0000-4000-8000-00000000b0b0',
    name: 'Bob Example'
  },
  /** Signing in to the gateway asks her for a second factor (a seeded MFA policy). */
  dana: {
    username: 'dana@contoso.example',
    password: 'dana-dev-password',
    objectId: 'da4a0000-0000-4000-8000-00000000da4a',
    name: 'Dana Example',
    mfaCode: '123456'
  }
} as const

export const defaultSeed: EmulatorSeed = {
  tenants: [{
    id: DEV_IDS.tenantId,
    name: DEV_IDS.tenantName,
    applications: [
      {
        clientId: DEV_IDS.gateway.clientId,
        displayName: 'obo-gateway',
        secrets: [DEV_IDS.gateway.secret],
        publicClient: false,
        identifierUris: [DEV_IDS.gateway.identifierUri],
        scopes: [DEV_IDS.gateway.scope, DEV_IDS.gateway.toolsAdminScope],
        appRoles: [DEV_IDS.gateway.appRole],
        accessTokenAcceptedVersion: 2
      },
      {
        clientId: DEV_IDS.sampleApi.clientId,
        displayName: 'sample-api',
        secrets: [],
        publicClient: false,
        identifierUris: [DEV_IDS.sampleApi.identifierUri],
        scopes: [...DEV_IDS.sampleApi.scopes],
        appRoles: [DEV_IDS.sampleApi.appRole],
        accessTokenAcceptedVersion: 2
      },
      {
        clientId: DEV_IDS.devClient.clientId,
        displayName: 'dev-client',
        publicClient: true,
        scopes: [],
        accessTokenAcceptedVersion: 2,
        redirectUris: { publicClient: [DEV_IDS.devClient.redirectUri] }
      },
      {
        clientId: DEV_IDS.devSpa.clientId,
        displayName: 'dev-spa',
        accessTokenAcceptedVersion: 2,
        redirectUris: { spa: [...DEV_IDS.devSpa.redirectUris] }
      },
      {
        clientId: DEV_IDS.mcpServer.clientId,
        displayName: 'sample-mcp-server',
        secrets: [],
        publicClient: false,
        identifierUris: [DEV_IDS.mcpServer.identifierUri],
        scopes: [DEV_IDS.mcpServer.scope],
        accessTokenAcceptedVersion: 2
      },
      {
        clientId: DEV_IDS.mcpClient.clientId,
        displayName: 'mcp-client',
        publicClient: true,
        // Loopback redirects match any port, as Entra's do for public clients (RFC 8252).
        redirectUris: { publicClient: ['http://127.0.0.1/callback', 'http://localhost/callback'] },
        scopes: [],
        accessTokenAcceptedVersion: 2
      },
      {
        clientId: DEV_IDS.daemon.clientId,
        displayName: 'dev-daemon',
        secrets: [DEV_IDS.daemon.secret],
        publicClient: false,
        accessTokenAcceptedVersion: 2
      }
    ],
    users: [
      { username: DEV_IDS.alice.username, password: DEV_IDS.alice.password, objectId: DEV_IDS.alice.objectId, name: DEV_IDS.alice.name },
      { username: DEV_IDS.bob.username, password: DEV_IDS.bob.password, objectId: DEV_IDS.bob.objectId, name: DEV_IDS.bob.name },
      { username: DEV_IDS.dana.username, password: DEV_IDS.dana.password, objectId: DEV_IDS.dana.objectId, name: DEV_IDS.dana.name, mfaCode: DEV_IDS.dana.mfaCode }
    ],
    appRoleAssignments: [
      { clientId: DEV_IDS.daemon.clientId, resource: DEV_IDS.gateway.clientId, role: DEV_IDS.gateway.appRole },
      { clientId: DEV_IDS.gateway.clientId, resource: DEV_IDS.sampleApi.clientId, role: DEV_IDS.sampleApi.appRole }
    ]
  }],
  mfaPolicies: [{ resource: DEV_IDS.gateway.clientId, username: DEV_IDS.dana.username }]
}
