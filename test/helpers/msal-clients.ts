import { ConfidentialClientApplication, PublicClientApplication, type AuthenticationResult, type Configuration } from '@azure/msal-node'
import type { Agent } from 'undici'
import { createMsalNetworkClient } from '../../src/acquisition/msal-network-client'
import { DEV_IDS } from '../../src/emulator/default-seed'
import { startEmulator, type EmulatorOptions, type RunningEmulator } from '../../src/emulator/start'
import { createHttpsAgent } from '../../src/net/https-agent'

/** The parts of a running emulator msal-node needs (RunningEmulator fits). */
export interface EmulatorEndpoint {
  url: string
  host: string
  caPem: string
}

/**
 * Real msal-node clients pointed at the emulator over TLS, trusting its CA through the project's
 * own network client. One kit per emulator; close() releases its connection pool.
 */
export class MsalKit {
  readonly agent: Agent
  constructor (readonly emulator: EmulatorEndpoint) {
    this.agent = createHttpsAgent({ ca: [emulator.caPem] })
  }

  authority (tenant: string = DEV_IDS.tenantId): string {
    return `${this.emulator.url}/${tenant}`
  }

  config (clientId: string, extra: { clientSecret?: string, clientCapabilities?: string[], tenant?: string } = {}): Configuration {
    return {
      auth: {
        clientId,
        authority: this.authority(extra.tenant),
        knownAuthorities: [this.emulator.host],
        ...(extra.clientSecret === undefined ? {} : { clientSecret: extra.clientSecret }),
        ...(extra.clientCapabilities === undefined ? {} : { clientCapabilities: extra.clientCapabilities })
      },
      system: { networkClient: createMsalNetworkClient(this.agent) }
    }
  }

  /** The gateway's middle-tier client (or any confidential client) as a fresh msal instance, empty cache. */
  confidentialClient (options: { clientId?: string, clientSecret?: string, clientCapabilities?: string[], tenant?: string } = {}): ConfidentialClientApplication {
    const { clientId = DEV_IDS.gateway.clientId, clientSecret = DEV_IDS.gateway.secret, ...extra } = options
    return new ConfidentialClientApplication(this.config(clientId, { clientSecret, ...extra }))
  }

  /** Signs a seeded user in through the public dev client (ROPC), by default alice for the gateway's scope. */
  async signIn (options: { username?: string, password?: string, scopes?: string[], clientId?: string, tenant?: string, clientCapabilities?: string[], claims?: string } = {}): Promise<AuthenticationResult> {
    const pca = new PublicClientApplication(this.config(options.clientId ?? DEV_IDS.devClient.clientId, {
      ...(options.tenant === undefined ? {} : { tenant: options.tenant }),
      ...(options.clientCapabilities === undefined ? {} : { clientCapabilities: options.clientCapabilities })
    }))
    const result = await pca.acquireTokenByUsernamePassword({
      username: options.username ?? DEV_IDS.alice.username,
      password: options.password ?? DEV_IDS.alice.password,
      scopes: options.scopes ?? [`${DEV_IDS.gateway.identifierUri}/${DEV_IDS.gateway.scope}`],
      ...(options.claims === undefined ? {} : { claims: options.claims })
    })
    if (result === null) throw new Error('msal-node returned no result for the password grant')
    return result
  }

  /** A client credentials token, by default the daemon's for the gateway. */
  async appToken (options: { clientId?: string, clientSecret?: string, scopes?: string[], tenant?: string } = {}): Promise<AuthenticationResult> {
    const cca = new ConfidentialClientApplication(this.config(options.clientId ?? DEV_IDS.daemon.clientId, {
      clientSecret: options.clientSecret ?? DEV_IDS.daemon.secret,
      ...(options.tenant === undefined ? {} : { tenant: options.tenant })
    }))
    const result = await cca.acquireTokenByClientCredential({ scopes: options.scopes ?? [`${DEV_IDS.gateway.identifierUri}/.default`] })
    if (result === null) throw new Error('msal-node returned no result for client credentials')
    return result
  }

  async close (): Promise<void> {
    await this.agent.close()
  }
}

/** The payload of a JWT, unverified: for asserting on claims in tests. */
export function jwtClaims (token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>
}

export function jwtHeader (token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>
}

/** An emulator and a kit for it, both closed when the test `t` ends. */
export async function startEmulatorWithKit (t: { teardown: (fn: () => Promise<void>) => void }, options: EmulatorOptions = {}): Promise<{ emulator: RunningEmulator, kit: MsalKit }> {
  const emulator = await startEmulator(options)
  const kit = new MsalKit(emulator)
  t.teardown(async () => {
    await kit.close()
    await emulator.close()
  })
  return { emulator, kit }
}
