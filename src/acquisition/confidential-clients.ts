import { X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { ConfidentialClientApplication, LogLevel, type Configuration, type INetworkModule, type NodeAuthOptions } from '@azure/msal-node'
import type { FastifyBaseLogger } from 'fastify'
import type { GatewayCredential, IdentityConfig } from '../config/types'

/**
 * One msal-node application per tenant and capability set, created on first use and kept: OBO must
 * go to the caller's own tenant (guests, multi-tenant), each application caches its authority
 * metadata, and client capabilities are fixed per msal-node application, so callers that declare
 * cp1 and callers that do not need separate ones.
 */
export class ConfidentialClients {
  private readonly apps = new Map<string, ConfidentialClientApplication>()
  private readonly credential: Pick<NodeAuthOptions, 'clientSecret' | 'clientCertificate' | 'clientAssertion'>

  constructor (private readonly identity: IdentityConfig, private readonly networkClient: INetworkModule, private readonly log: FastifyBaseLogger) {
    this.credential = credentialOptions(identity.credential)
  }

  /** `capable`: the caller declared cp1, so Entra may answer with claims challenges it can handle. */
  forTenant (tenantId: string, capable = false): ConfidentialClientApplication {
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
          loggerOptions: {
            logLevel: LogLevel.Warning,
            piiLoggingEnabled: false,
            loggerCallback: (_level, message) => this.log.warn({ msal: message }, 'msal-node')
          }
        }
      }
      app = new ConfidentialClientApplication(config)
      this.apps.set(key, app)
    }
    return app
  }
}

function credentialOptions (credential: GatewayCredential): Pick<NodeAuthOptions, 'clientSecret' | 'clientCertificate' | 'clientAssertion'> {
  switch (credential.kind) {
    case 'clientSecret':
      return { clientSecret: credential.clientSecret }
    case 'certificate': {
      const certificatePem = readFileSync(credential.certificateFile, 'utf8')
      const thumbprintSha256 = new X509Certificate(certificatePem).fingerprint256.replace(/:/g, '').toLowerCase()
      return { clientCertificate: { thumbprintSha256, privateKey: readFileSync(credential.privateKeyFile, 'utf8'), x5c: certificatePem } }
    }
    case 'federatedTokenFile': {
      // Kubernetes rotates the projected token; read it for every new assertion.
      const file = credential.federatedTokenFile
      return { clientAssertion: async () => readFileSync(file, 'utf8').trim() }
    }
    case 'managedIdentity':
      throw new Error('identity.credential.managedIdentity is not supported yet (issue #4); use clientSecret, certificate or federatedTokenFile')
  }
}
