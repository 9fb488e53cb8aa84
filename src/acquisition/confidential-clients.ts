import { X509Certificate, createHash, createPrivateKey, type KeyObject } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import {
  ConfidentialClientApplication, LogLevel, ManagedIdentityApplication, type Configuration, type INetworkModule,
  type NodeAuthOptions, type NodeSystemOptions
} from '@azure/msal-node'
import type { FastifyBaseLogger } from 'fastify'
import type { GatewayCredential, IdentityConfig } from '../config/types'
import { GatewayCredentialError } from '../errors'
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
      case 'certificate':
        return { clientCertificate: loadCertificate(credential.certificateFile, credential.privateKeyFile, this.log) }
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

/** Reads and checks the certificate credential so a mistake is reported at start, not as Entra's AADSTS700027 later. */
function loadCertificate (certificateFile: string, privateKeyFile: string, log: FastifyBaseLogger): NonNullable<NodeAuthOptions['clientCertificate']> {
  const read = (file: string, what: string): string => {
    try {
      return readFileSync(file, 'utf8')
    } catch (err) {
      throw fileProblem((name) => `Cannot read ${name} (${(err as NodeJS.ErrnoException).code ?? String(err)})`, what, file)
    }
  }
  const certificatePem = read(certificateFile, 'certificate')
  const keyPem = read(privateKeyFile, 'private key')
  // The file may hold a chain; the first certificate is the one registered on the app.
  const pems = certificatePem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []
  let leaf: X509Certificate
  try {
    leaf = new X509Certificate(pems[0] ?? '')
  } catch {
    throw fileProblem((name) => `${upper(name)} holds no PEM certificate`, 'certificate', certificateFile)
  }
  let key: KeyObject
  try {
    key = createPrivateKey(keyPem)
  } catch (err) {
    const encrypted = /ENCRYPTED/.test(keyPem)
    throw fileProblem((name) => `${upper(name)} holds no usable private key${encrypted ? ' (it is encrypted; mount it decrypted)' : ''}: ${(err as Error).message}`, 'private key', privateKeyFile)
  }
  // Entra signs nothing but RSA client assertions, and msal-node refuses RSA keys under 2048 bits.
  if (key.asymmetricKeyType !== 'rsa' || (key.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) {
    const found = `${key.asymmetricKeyType ?? 'unknown'} ${key.asymmetricKeyDetails?.modulusLength ?? ''}`.trim()
    throw fileProblem((name) => `${upper(name)} must hold an RSA key of at least 2048 bits for Entra (found ${found})`, 'private key', privateKeyFile)
  }
  if (!leaf.checkPrivateKey(key)) {
    throw new GatewayCredentialError(`The private key does not belong to the certificate (thumbprint ${thumbprint(leaf)})`, undefined,
      `The private key in ${privateKeyFile} does not belong to the certificate in ${certificateFile} (thumbprint ${thumbprint(leaf)})`)
  }
  const now = Date.now()
  const validTo = Date.parse(leaf.validTo)
  if (validTo <= now) throw fileProblem((name) => `The certificate in ${name} (thumbprint ${thumbprint(leaf)}) expired on ${new Date(validTo).toISOString()}`, 'certificate', certificateFile)
  if (Date.parse(leaf.validFrom) > now) throw fileProblem((name) => `The certificate in ${name} (thumbprint ${thumbprint(leaf)}) is not valid before ${new Date(Date.parse(leaf.validFrom)).toISOString()}`, 'certificate', certificateFile)
  if (validTo - now < 14 * DAY_MS) log.warn({ certificate: thumbprint(leaf), expires: new Date(validTo).toISOString() }, 'the gateway certificate expires within 14 days')
  return {
    // SHA-256 thumbprint: msal-node then signs PS256 with `x5t#S256`, the form Entra documents today.
    thumbprintSha256: createHash('sha256').update(leaf.raw).digest('hex'),
    // PKCS#8 whatever the file's format (PKCS#1 "RSA PRIVATE KEY" too): what msal-node's signer expects.
    privateKey: key.export({ format: 'pem', type: 'pkcs8' }).toString(),
    // x5c lets Entra apply subject name + issuer authentication when the app is set up for it.
    x5c: pems.join('\n')
  }
}

/**
 * A problem with one of the credential's files: clients read "the certificate file", the log the
 * path too. Error bodies never carry server paths.
 */
function fileProblem (text: (name: string) => string, what: string, file: string): GatewayCredentialError {
  return new GatewayCredentialError(text(`the ${what} file`), undefined, text(`the ${what} file ${file}`))
}

function upper (text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1)
}

/** The SHA-1 thumbprint as the Entra portal shows it, to find the certificate among the app's credentials. */
function thumbprint (cert: X509Certificate): string {
  return cert.fingerprint.replace(/:/g, '')
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
