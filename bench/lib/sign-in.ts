import { ConfidentialClientApplication, PublicClientApplication, type Configuration } from '@azure/msal-node'
import type { Agent } from 'undici'
import { createMsalNetworkClient } from '../../src/acquisition/msal-network-client'
import { DEV_IDS } from '../../src/emulator'
import { createHttpsAgent } from '../../src/net/https-agent'

/** The parts of a running emulator msal-node needs (RunningEmulator fits). */
export interface EmulatorEndpoint {
  url: string
  host: string
  caPem: string
}

/**
 * msal-node clients of the emulator's development seed, over TLS with the emulator's CA, through
 * the gateway's own msal network client: how a bench gets a real user token and a real OBO call.
 */
export class SeedClients {
  readonly agent: Agent
  constructor (private readonly emulator: EmulatorEndpoint) {
    this.agent = createHttpsAgent({ ca: [emulator.caPem] })
  }

  private config (clientId: string, clientSecret?: string): Configuration {
    return {
      auth: {
        clientId,
        authority: `${this.emulator.url}/${DEV_IDS.tenantId}`,
        knownAuthorities: [this.emulator.host],
        ...(clientSecret === undefined ? {} : { clientSecret })
      },
      system: { networkClient: createMsalNetworkClient(this.agent) }
    }
  }

  /** Alice's access token for the gateway, signed in through the seed's public dev client (ROPC). */
  async aliceToken (): Promise<string> {
    const pca = new PublicClientApplication(this.config(DEV_IDS.devClient.clientId))
    const result = await pca.acquireTokenByUsernamePassword({
      username: DEV_IDS.alice.username,
      password: DEV_IDS.alice.password,
      scopes: [`${DEV_IDS.gateway.identifierUri}/${DEV_IDS.gateway.scope}`]
    })
    if (result === null) throw new Error('msal-node returned no result for the password grant')
    return result.accessToken
  }

  /** The gateway's own confidential client, a fresh msal-node instance with an empty cache. */
  gatewayClient (): ConfidentialClientApplication {
    return new ConfidentialClientApplication(this.config(DEV_IDS.gateway.clientId, DEV_IDS.gateway.secret))
  }

  async close (): Promise<void> {
    await this.agent.close()
  }
}

/** The payload of a JWT, not verified: the bench reads claims of a token it just obtained. */
export function jwtClaims (token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>
}
