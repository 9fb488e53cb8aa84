import { resolve } from 'node:path'
import type { FastifyInstance, FastifyServerOptions } from 'fastify'
import { buildGateway } from '../app'
import { resolveConfig } from '../config/load'
import type { GatewayConfig } from '../config/types'
import { DEV_IDS, startEmulator, type RunningEmulator } from '../emulator'
import { prepareTls } from '../emulator/ca'
import { DEMO_IDS, demoSeed, demoSpaUris } from './demo-seed'
import { buildDemoSpaServer, type DemoSpaConfig } from './demo-spa-server'
import { devGatewayIdentity } from './dev-identity'
import { freePort } from '../net/free-port'
import { listenOrExplain } from '../net/listen'
import { buildSampleApi } from './sample-api'
import { buildSampleMcpServer } from './sample-mcp-server'

export interface DevStackOptions {
  host?: string
  gatewayPort?: number
  emulatorPort?: number
  sampleApiPort?: number
  mcpServerPort?: number
  /** The demo SPA's HTTPS port (default 8444). */
  spaPort?: number
  /** Where the emulator keeps its CA, so the printed curl command keeps working across restarts. */
  dataDir?: string
  logger?: FastifyServerOptions['logger']
}

export interface DevStack {
  emulator: RunningEmulator
  sampleApi: FastifyInstance
  sampleApiUrl: string
  mcpServer: FastifyInstance
  /** The sample MCP server's streamable HTTP endpoint (behind the gateway's /mcp route). */
  mcpServerUrl: string
  gateway: FastifyInstance
  gatewayUrl: string
  /** The demo SPA, e.g. https://127.0.0.1:8444 (HTTPS from the emulator's CA: the emulator's site). */
  spaUrl: string
  spaConfig: DemoSpaConfig
  config: GatewayConfig
  close: () => Promise<void>
}

/** Emulator + sample API + gateway on loopback, wired with a generated config. */
export async function startDevStack (options: DevStackOptions = {}): Promise<DevStack> {
  const host = options.host ?? '127.0.0.1'
  const publicHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host
  const dataDir = options.dataDir ?? resolve('.obo-gateway/dev')
  // The SPA's redirect URIs are in the seed, so its port is settled before the emulator starts.
  const spaPort = options.spaPort === 0 ? await freePort(host) : options.spaPort ?? 8444
  const spaUrl = `https://${publicHost}:${spaPort}`
  // Five fixed ports by default: a refusal names the one in use and what wanted it.
  const listen = async <T>(start: () => Promise<T>, port: number, part: string): Promise<T> => await listenOrExplain(start, `${host}:${port} (the dev stack's ${part})`)
  const emulatorPort = options.emulatorPort ?? 8443
  const emulator = await listen(() => startEmulator({ host, port: emulatorPort, dataDir, seed: demoSeed(spaUrl) }), emulatorPort, 'Entra ID emulator')
  const started: Array<{ close: () => Promise<unknown> }> = [emulator]
  try {
    const sampleApi = await buildSampleApi({
      instance: emulator.url,
      tenantId: DEV_IDS.tenantId,
      clientId: DEV_IDS.sampleApi.clientId,
      identifierUri: DEV_IDS.sampleApi.identifierUri,
      alsoAccept: [DEMO_IDS.mfaApi.clientId, DEMO_IDS.mfaApiDocsShape.clientId],
      ca: [emulator.caPem],
      // A CAE-enabled resource: emulator.sessions.revoke() makes it refuse older tokens like Graph does.
      revocationTime: (tenantId, userObjectId) => emulator.sessions.revocationTime(tenantId, userObjectId)
    })
    started.push(sampleApi)
    const sampleApiPort = options.sampleApiPort ?? 8081
    const sampleApiUrl = await listen(() => sampleApi.listen({ host, port: sampleApiPort }), sampleApiPort, 'sample API')
    const mcpServer = await buildSampleMcpServer({
      instance: emulator.url,
      tenantId: DEV_IDS.tenantId,
      clientId: DEV_IDS.mcpServer.clientId,
      identifierUri: DEV_IDS.mcpServer.identifierUri,
      requireScope: DEV_IDS.mcpServer.scope,
      ca: [emulator.caPem]
    })
    started.push(mcpServer)
    const mcpServerPort = options.mcpServerPort ?? 8083
    const mcpServerUrl = `${await listen(() => mcpServer.listen({ host, port: mcpServerPort }), mcpServerPort, 'sample MCP server')}/mcp`

    // The MCP route's publicUrl names the gateway's port, so "any port" is settled before the config.
    const gatewayPort = options.gatewayPort === 0 ? await freePort(host) : options.gatewayPort ?? 8080
    const read = `${DEV_IDS.sampleApi.identifierUri}/Items.Read`
    const config = resolveConfig({
      server: { host, port: gatewayPort, cors: { origins: [spaUrl] } },
      identity: devGatewayIdentity(emulator),
      routes: [{
        prefix: '/api',
        upstream: sampleApiUrl,
        user: { requireScopes: [DEV_IDS.gateway.scope], scopes: [`${DEV_IDS.sampleApi.identifierUri}/Items.Read`] },
        app: { requireRoles: [DEV_IDS.gateway.appRole], scopes: [`${DEV_IDS.sampleApi.identifierUri}/.default`] }
      },
      ...demoRoutes(sampleApiUrl, read),
      {
        prefix: '/mcp',
        upstream: mcpServerUrl,
        user: { requireScopes: [DEV_IDS.gateway.scope], scopes: [`${DEV_IDS.mcpServer.identifierUri}/${DEV_IDS.mcpServer.scope}`] },
        mcp: {
          publicUrl: `http://${publicHost}:${gatewayPort}/mcp`,
          clientId: DEV_IDS.mcpClient.clientId,
          redirectUris: ['http://127.0.0.1/callback', 'http://localhost/callback'],
          scopesSupported: [`${DEV_IDS.gateway.identifierUri}/${DEV_IDS.gateway.scope}`],
          tools: { delete_item: { requireScopes: [DEV_IDS.gateway.toolsAdminScope] } }
        }
      }]
    }, { source: 'the generated dev config' })
    const gateway = await buildGateway(config, { logger: options.logger ?? false })
    started.push(gateway)
    const gatewayUrl = await listen(() => gateway.listen({ host: config.server.host, port: config.server.port }), gatewayPort, 'gateway')

    // Its own certificate from the emulator's CA, so a browser told to trust one server's key is not trusting the other's.
    const spaTls = await prepareTls(dataDir, [publicHost])
    const spaConfig = demoSpaConfig(emulator, `http://${publicHost}:${gatewayPort}`)
    const spa = buildDemoSpaServer({ config: spaConfig, tls: spaTls })
    started.push(spa)
    await listen(() => spa.listen({ host, port: spaPort }), spaPort, 'demo SPA')

    return {
      emulator,
      sampleApi,
      sampleApiUrl,
      mcpServer,
      mcpServerUrl,
      gateway,
      gatewayUrl,
      spaUrl,
      spaConfig,
      config,
      close: async () => { await closeAll(started) }
    }
  } catch (err) {
    await closeAll(started)
    throw err
  }
}

/** The gateway routes behind the demo SPA's challenge buttons, one challenge each. */
function demoRoutes (sampleApiUrl: string, read: string): Array<{ prefix: string, upstream: string, user: { requireScopes: string[], scopes: string[], authContext?: string } }> {
  const requireScopes = [DEV_IDS.gateway.scope]
  return [
    { prefix: '/mfa', upstream: sampleApiUrl, user: { requireScopes, scopes: [`${DEMO_IDS.mfaApi.identifierUri}/Items.Read`] } },
    { prefix: '/mfa-docs-shape', upstream: sampleApiUrl, user: { requireScopes, scopes: [`${DEMO_IDS.mfaApiDocsShape.identifierUri}/Items.Read`] } },
    { prefix: '/step-up', upstream: sampleApiUrl, user: { requireScopes, scopes: [read], authContext: DEMO_IDS.authContext } },
    { prefix: '/consent', upstream: sampleApiUrl, user: { requireScopes, scopes: [`${DEV_IDS.sampleApi.identifierUri}/${DEMO_IDS.ungrantedScope}`] } }
  ]
}

function demoSpaConfig (emulator: RunningEmulator, gatewayUrl: string): DemoSpaConfig {
  return {
    authority: `${emulator.url}/${DEV_IDS.tenantId}`,
    knownAuthorities: [emulator.host],
    clientId: DEV_IDS.devSpa.clientId,
    scopes: [`${DEV_IDS.gateway.identifierUri}/${DEV_IDS.gateway.scope}`],
    gatewayUrl,
    calls: [
      { id: 'api', label: 'Call the sample API', path: '/api/items', explains: 'OBO for the sample API, no challenge' },
      { id: 'mfa', label: 'MFA (invalid_grant + basic_action)', path: '/mfa/items', explains: 'OBO needs MFA: Entra answers invalid_grant, suberror basic_action, AADSTS50076, capolids claims' },
      { id: 'mfa-docs-shape', label: 'MFA (interaction_required)', path: '/mfa-docs-shape/items', explains: 'OBO needs MFA: Entra answers interaction_required, AADSTS50079, polids claims' },
      { id: 'step-up', label: `Auth context step-up (${DEMO_IDS.authContext})`, path: '/step-up/items', explains: `the route demands acrs ${DEMO_IDS.authContext}: the gateway answers cc_type=authcontext` },
      { id: 'cae', label: 'CAE: revoke my sessions, then call', path: '/api/items', explains: 'the emulator revokes the user\'s sessions; the sample API (CAE-enabled) refuses the older token' },
      { id: 'consent', label: `Consent (${DEMO_IDS.ungrantedScope})`, path: '/consent/items', explains: `nobody consented to the gateway's ${DEMO_IDS.ungrantedScope} on the sample API: 403 proposedAction=consent` }
    ],
    ...(emulator.controlApi ? { controlApi: { url: `${emulator.url}/_emulator`, tenantId: DEV_IDS.tenantId } } : {}),
    trust: { openUrl: `${emulator.url}/${DEV_IDS.tenantId}/v2.0/.well-known/openid-configuration`, caFile: emulator.caFile },
    hint: `${DEV_IDS.alice.username} / ${DEV_IDS.alice.password}, second factor code ${DEMO_IDS.aliceMfaCode}`
  }
}

async function closeAll (parts: Array<{ close: () => Promise<unknown> }>): Promise<void> {
  for (const part of [...parts].reverse()) await part.close()
}

/** What `npm start` prints: where things run and one command that exercises the whole path. */
export function devStackBanner (stack: DevStack): string {
  const { emulator, gatewayUrl, sampleApiUrl, mcpServerUrl, spaUrl } = stack
  const tokenUrl = `${emulator.url}/${DEV_IDS.tenantId}/oauth2/v2.0/token`
  const signIn = [
    `curl -s --cacert '${emulator.caFile}' ${tokenUrl}`,
    '-d grant_type=password',
    `-d client_id=${DEV_IDS.devClient.clientId}`,
    `-d 'scope=${DEV_IDS.gateway.identifierUri}/${DEV_IDS.gateway.scope}'`,
    `-d username=${DEV_IDS.alice.username}`,
    `-d password=${DEV_IDS.alice.password}`
  ].join(' ')
  const extract = 'node -pe \'JSON.parse(require("fs").readFileSync(0)).access_token\''
  return [
    '',
    'obo-gateway: LOCAL DEVELOPMENT STACK (an Entra ID emulator with test users; not for production)',
    '',
    `  open ${spaUrl}/ in a browser: the demo SPA (sign in as ${DEV_IDS.alice.username} / ${DEV_IDS.alice.password}, second factor ${DEMO_IDS.aliceMfaCode})`,
    `  (a browser that does not trust ${emulator.caFile}: open ${stack.spaConfig.trust?.openUrl ?? emulator.url} once and accept its certificate, or import that file)`,
    '',
    `  Entra ID emulator  ${emulator.url}   tenant ${DEV_IDS.tenantName} (${DEV_IDS.tenantId})`,
    `                     CA certificate: ${emulator.caFile}`,
    `  sample API         ${sampleApiUrl}   (downstream; accepts tokens for ${DEV_IDS.sampleApi.identifierUri})`,
    `  sample MCP server  ${mcpServerUrl}   (accepts tokens for ${DEV_IDS.mcpServer.identifierUri})`,
    `  gateway            ${gatewayUrl}   route /api -> ${sampleApiUrl}`,
    `                     routes /mfa, /mfa-docs-shape, /step-up, /consent -> ${sampleApiUrl} (one challenge each, the demo SPA's buttons)`,
    `                     MCP route ${gatewayUrl}/mcp -> ${mcpServerUrl} (point an MCP client at it)`,
    '',
    `  users: ${DEV_IDS.alice.username} / ${DEV_IDS.alice.password} (second factor code ${DEMO_IDS.aliceMfaCode}), ${DEV_IDS.bob.username} / ${DEV_IDS.bob.password}`,
    `         ${DEV_IDS.dana.username} / ${DEV_IDS.dana.password} (MFA for the gateway: code ${DEV_IDS.dana.mfaCode})`,
    `  sign-in: SPA ${DEV_IDS.devSpa.clientId} (redirect ${[...DEV_IDS.devSpa.redirectUris, demoSpaUris(spaUrl).redirectUri].join(', ')}),`,
    `           public client for CLIs ${DEV_IDS.devClient.clientId} (device code, loopback ${DEV_IDS.devClient.redirectUri} on any port)`,
    `           authorize ${emulator.url}/${DEV_IDS.tenantId}/oauth2/v2.0/authorize, device code page ${emulator.url}/common/oauth2/deviceauth`,
    '',
    'Sign Alice in against the emulator and call the sample API through the gateway:',
    '',
    `  TOKEN=$(${signIn} | ${extract}) && curl -s ${gatewayUrl}/api/items -H "Authorization: Bearer $TOKEN"`,
    '',
    'The answer comes from the sample API and shows the token the gateway obtained on Alice\'s behalf',
    `(aud = the sample API, scp = Items.Read, oid = Alice, azp = the gateway ${DEV_IDS.gateway.clientId}).`,
    'Run the gateway alone against your own tenant with OBO_GATEWAY_CONFIG=FILE npm start. Ctrl-C stops.',
    ''
  ].join('\n')
}
