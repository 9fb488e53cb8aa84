import { readFile } from 'node:fs/promises'
import {
  ConfidentialClientApplication, LogLevel, ManagedIdentityApplication, type Configuration, type INetworkModule,
  type NodeAuthOptions, type NodeSystemOptions
} from '@azure/msal-node'
import type { FastifyBaseLogger } from 'fastify'
import type { GatewayCredential, IdentityConfig } from '../config/types'
import { GatewayCredentialError } from '../errors'
import { fileProblem, readClientCertificate, upper } from './client-certificate'
import { EntraUnavailableError, MsalNetworkClient } from './msal-network-client'

type CredentialOptions = Pick<NodeAuthOptions, 'clientSecret' | 'clientCertificate' | 'clientAssertion'>

const DAY_MS = 86_400_000

/**
 * One msal-node application per tenant and capability set, created on first use and kept: OBO must
 * go to the caller's own tenant (guests, multi-tenant), each application caches its authority
 * metadata, and client capabilities are fixed per msal-node application, so callers that declare
 * cp1 and callers that do not need separate ones.
 *
 * The credential is prepared once, at construction. When it cannot be used (unreadable or
 * mismatched certificate files, an expired certificate...) the problem is logged at error level —
 * what is wrong, never the secret — and every acquisition fails with a GatewayCredentialError (503)
 * instead of the gateway failing to start, so health checks and other routes keep answering.
 */
export class ConfidentialClients {
  private readonly apps = new Map<string, ConfidentialClientApplication>()
  private readonly credential: CredentialOptions | undefined
  private readonly problem: GatewayCredentialError | undefined
  private readonly networkClient: INetworkModule
  private readonly loggerOptions: NonNullable<NodeSystemOptions['loggerOptions']>

  constructor (private readonly identity: IdentityConfig, networkClient: INetworkModule, private readonly log: FastifyBaseLogger) {
    this.networkClient = bounded(networkClient, identity.timeoutMs)
    this.loggerOptions = {
      logLevel: LogLevel.Warning,
      piiLoggingEnabled: false,
      loggerCallback: (_level: LogLevel, message: string) => this.log.warn({ msal: message }, 'msal-node')
    }
    try {
      this.credential = this.credentialOptions(identity.credential)
    } catch (err) {
      this.problem = err instanceof GatewayCredentialError ? err : new GatewayCredentialError('The gateway credential cannot be used (the gateway log says why)', undefined, `The gateway credential cannot be used: ${(err as Error).message}`)
      this.log.error({ credential: identity.credential.kind, problem: this.problem.detail }, `gateway credential unusable: ${this.problem.detail}`)
    }
  }

  /**
   * Readiness probe: can the gateway produce its credential right now? Reads the federated token
   * file, or fetches the managed identity token; does not call Entra's token endpoint, so a secret
   * or certificate Entra refuses shows up on the first token request instead (503 + error log).
   */
  async checkCredential (): Promise<string | undefined> {
    if (this.problem !== undefined) return this.problem.message
    const assertion = this.credential?.clientAssertion
    if (typeof assertion !== 'function') return undefined
    try {
      await assertion({ clientId: this.identity.clientId, tokenEndpoint: '' })
      return undefined
    } catch (err) {
      const detail = err instanceof GatewayCredentialError ? err.detail : (err as Error).message
      this.log.error({ credential: this.identity.credential.kind, problem: detail }, `gateway credential unusable: ${detail}`)
      return (err as Error).message
    }
  }

  /** `capable`: the caller declared cp1, so Entra may answer with claims challenges it can handle. */
  forTenant (tenantId: string, capable = false): ConfidentialClientApplication {
    if (this.problem !== undefined || this.credential === undefined) throw this.problem ?? new GatewayCredentialError('The gateway has no usable credential')
    const key = `${tenantId}|${capable ? 'cp1' : ''}`
    let app = this.apps.get(key)
    if (app === undefined) {
      const capabilities = capable ? this.identity.clientCapabilities : []
      const config: Configuration = {
        auth: {
          clientId: this.identity.clientId,
          authority: `${this.identity.instance}/${tenantId}`,
          // Listing the host stops msal-node from asking login.microsoftonline.com for instance discovery.
          knownAuthorities: [new URL(this.identity.instance).host],
          ...(capabilities.length > 0 ? { clientCapabilities: capabilities } : {}),
          ...this.credential
        },
        system: {
          networkClient: this.networkClient,
          loggerOptions: this.loggerOptions
        }
      }
      app = new ConfidentialClientApplication(config)
      this.apps.set(key, app)
    }
    return app
  }

  private credentialOptions (credential: GatewayCredential): CredentialOptions {
    switch (credential.kind) {
      case 'clientSecret':
        return { clientSecret: credential.clientSecret }
      case 'certificate': {
        const certificate = readClientCertificate(credential.certificateFile, credential.privateKeyFile)
        if (certificate.expiresAt.getTime() - Date.now() < 14 * DAY_MS) {
          this.log.warn({ certificate: certificate.thumbprint, expires: certificate.expiresAt.toISOString() }, 'the gateway certificate expires within 14 days')
        }
        return { clientCertificate: certificate.msal }
      }
      case 'federatedTokenFile':
        return { clientAssertion: this.federatedTokenFile(credential.federatedTokenFile) }
      case 'managedIdentity':
        return { clientAssertion: this.managedIdentityAssertion(credential.clientId) }
    }
  }

  /**
   * Kubernetes workload identity: the kubelet rotates the projected service account token, so the
   * file is read for every new assertion (msal-node calls this for each token request), never cached.
   */
  private federatedTokenFile (file: string): () => Promise<string> {
    const read = async (): Promise<string> => {
      let token: string
      try {
        token = (await readFile(file, 'utf8')).trim()
      } catch (err) {
        throw fileProblem((name) => `Cannot read ${name} (${(err as NodeJS.ErrnoException).code ?? String(err)})`, 'federated token', file)
      }
      if (token === '') throw fileProblem((name) => `${upper(name)} is empty`, 'federated token', file)
      return token
    }
    // Said at start rather than on the first request: a missing projected token is a deployment mistake.
    read().catch((err: GatewayCredentialError) => this.log.error({ credential: 'federatedTokenFile', problem: err.detail }, `gateway credential unusable: ${err.detail}`))
    return read
  }

  /**
   * Managed identity as a federated credential: a managed identity token for the token exchange
   * audience is the client assertion (Entra's documented flow; the app registration has a federated
   * credential whose subject is the identity's object id). msal-node's ManagedIdentityApplication
   * finds the endpoint from the environment (IDENTITY_ENDPOINT/IDENTITY_HEADER on App Service and
   * similar, IMDS otherwise) and caches the token until shortly before it expires.
   */
  private managedIdentityAssertion (clientId: string | undefined): () => Promise<string> {
    const managedIdentity = new ManagedIdentityApplication({
      ...(clientId !== undefined ? { managedIdentityIdParams: { userAssignedClientId: clientId } } : {}),
      // No internal retries: they sleep between attempts and would break the identity deadline.
      system: { networkClient: this.networkClient, disableInternalRetries: true, loggerOptions: this.loggerOptions }
    })
    const resource = tokenExchangeAudience(this.identity.instance)
    const which = clientId !== undefined ? `user-assigned managed identity ${clientId}` : 'the system-assigned managed identity'
    return async () => {
      try {
        return (await managedIdentity.acquireToken({ resource })).accessToken
      } catch (err) {
        if (err instanceof EntraUnavailableError) throw err
        const message = firstLine((err as { errorMessage?: string }).errorMessage ?? (err as Error).message)
        throw new GatewayCredentialError(`No token from ${which} for ${resource}: ${message}`)
      }
    }
  }
}

/** api://AzureADTokenExchange, or its sovereign-cloud form (Microsoft's workload identity federation documentation). */
export function tokenExchangeAudience (instance: string): string {
  const host = new URL(instance).hostname
  if (host.endsWith('.us')) return 'api://AzureADTokenExchangeUSGov'
  if (host.endsWith('.cn')) return 'api://AzureADTokenExchangeChina'
  return 'api://AzureADTokenExchange'
}

/** Applies identity.timeoutMs to the network client msal gets. */
function bounded (client: INetworkModule, timeoutMs: number | undefined): INetworkModule {
  if (timeoutMs === undefined) return client
  if (client instanceof MsalNetworkClient) return client.withTimeout(timeoutMs)
  // A foreign client cannot be aborted; at least the caller stops waiting at the deadline.
  const race = async <T>(pending: Promise<T>, url: string): Promise<T> => {
    let timer: NodeJS.Timeout | undefined
    const deadline = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => { reject(new EntraUnavailableError('timeout', `${new URL(url).origin} did not answer within ${timeoutMs} ms`)) }, timeoutMs)
    })
    try {
      return await Promise.race([pending, deadline])
    } finally {
      clearTimeout(timer)
    }
  }
  return {
    sendGetRequestAsync: async (url, options) => await race(client.sendGetRequestAsync(url, options), url),
    sendPostRequestAsync: async (url, options) => await race(client.sendPostRequestAsync(url, options), url)
  }
}

function firstLine (text: string): string {
  return text.split(/\r?\n/)[0] ?? ''
}
