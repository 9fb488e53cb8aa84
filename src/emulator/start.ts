import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import { randomBytes } from 'node:crypto'
import { prepareTls } from './ca'
import { ClientAssertionVerifier } from './client-assertions'
import { ConditionalAccess, type MfaPolicyHandle } from './conditional-access'
import { Directory } from './directory'
import { FailureInjector, type FailureHandle } from './failure-rules'
import { Keyring } from './keyring'
import { MANAGED_IDENTITY_PATH, type ManagedIdentityRequestRecord } from './managed-identity'
import { defaultSeed } from './default-seed'
import { parseSeed } from './seed'
import type { EmulatorSeed, FailureRule, MfaPolicy } from './seed-schema'
import { buildServer } from './server'
import type { TokenRequestRecord } from './token-endpoint'
import { TokenIssuer } from './tokens'
import { WorkloadIssuers, type ServiceAccountTokenRequest } from './workload-issuers'
import { createHttpsAgent } from '../net/https-agent'

export interface EmulatorOptions {
  host?: string
  port?: number
  seed?: EmulatorSeed
  /** Where ca.pem (and the CA key) live; reused across restarts. Default: a fresh temp dir. */
  dataDir?: string
  tokenLifetimeSeconds?: number
  logger?: boolean
  /**
   * The URL clients use when it is not the listen address, e.g. https://emulator:8443 inside
   * docker compose: it becomes the issuer, the metadata's endpoints and a name on the certificate.
   */
  publicUrl?: string
}

export interface RunningEmulator {
  /** e.g. https://127.0.0.1:53211, no trailing slash: the authority "instance". */
  url: string
  /** '127.0.0.1:53211', what msal-node needs in knownAuthorities. */
  host: string
  /** The port it listens on (differs from the URL's behind a publicUrl). */
  port: number
  caFile: string
  caPem: string
  seed: EmulatorSeed
  /** Signs an arbitrary payload with the tenant's current signing key (tests use this for expired / odd tokens). */
  signToken (tenantId: string, payload: Record<string, unknown>, header?: Record<string, unknown>): string
  /** Every token request received, oldest first (tests assert "Entra was called N times"). */
  tokenRequests (): TokenRequestRecord[]
  /** Rolls the tenant's signing key over: a new key signs and is published, the old signing key is withdrawn. Returns the new kid. */
  rotateKeys (tenantId: string): Promise<string>
  /** How many times each tenant's JWKS was fetched (tests assert refetch behaviour). */
  jwksFetches (tenantId: string): number
  /** Makes matching token requests fail (or wait) the way Entra does; the handle removes it. */
  injectFailure (rule: FailureRule): FailureHandle
  /** Removes every injected failure, the seed's included (MFA policies stay: see clearMfaPolicies). */
  clearFailures (): void
  /**
   * Revokes the user's sessions (an admin's "revoke sessions", a password reset): returns the
   * revocation time in seconds. Tokens issued before it are refused as OBO assertions with
   * interaction_required + AADSTS50173 + `nbf` claims; a new sign-in gets tokens issued at or after it.
   */
  revokeSessions (tenantId: string, userObjectId: string): number
  /** The user's latest revocation time (seconds), what a CAE-enabled resource compares `iat` with. */
  revocationTime (tenantId: string, userObjectId: string): number | undefined
  /**
   * A conditional-access style policy: OBO requests for `resource` (client id or identifier URI)
   * fail with MFA claims (interaction_required/50079/polids or basic_action/50076/capolids) unless
   * the assertion's `amr` has `mfa`. A sign-in whose claims request names the policy id gets
   * `amr: ['pwd', 'mfa']`, and OBO tokens carry the assertion's `amr` through.
   */
  requireMfa (policy: MfaPolicy): MfaPolicyHandle
  /** Removes every MFA policy, the seed's included. */
  clearMfaPolicies (): void
  /** A service account token from a hosted Kubernetes-style issuer (seed `workloadIssuers`). */
  mintServiceAccountToken (request: ServiceAccountTokenRequest): string
  /** The issuer URL (`iss`) of a hosted workload issuer; default the first one. */
  workloadIssuerUrl (name?: string): string
  /** App Service style managed identity endpoint: set IDENTITY_ENDPOINT and IDENTITY_HEADER to these. */
  managedIdentity: { endpoint: string, header: string }
  /** Every managed identity token request, oldest first. */
  managedIdentityRequests (): ManagedIdentityRequestRecord[]
  close (): Promise<void>
}

export async function startEmulator (options: EmulatorOptions = {}): Promise<RunningEmulator> {
  const host = options.host ?? '127.0.0.1'
  const seed = parseSeed(options.seed ?? defaultSeed, 'the seed option')
  const directory = new Directory(seed)
  const dataDir = options.dataDir ?? await mkdtemp(join(tmpdir(), 'obo-emulator-'))
  const publicUrl = options.publicUrl === undefined ? undefined : new URL(options.publicUrl)
  const names = publicUrl === undefined ? [host] : [host, publicUrl.hostname.replace(/^\[|\]$/g, '')]
  let url = ''
  const [tls, keyring, workloadIssuers] = await Promise.all([
    prepareTls(dataDir, names),
    Keyring.create(seed.tenants),
    WorkloadIssuers.create(seed.workloadIssuers ?? [], () => url)
  ])

  const requests: TokenRequestRecord[] = []
  const jwksFetches = new Map<string, number>()
  const issuer = new TokenIssuer(keyring, { url: () => url, lifetimeSeconds: options.tokenLifetimeSeconds ?? 3600 })
  const failures = new FailureInjector()
  for (const rule of seed.failures ?? []) failures.add(rule)
  const conditionalAccess = new ConditionalAccess(directory)
  for (const policy of seed.mfaPolicies ?? []) conditionalAccess.addMfaPolicy(policy)
  // Federated credentials name issuers by URL; the emulator reaches its own hosted issuers over HTTPS too.
  const outbound = createHttpsAgent({ ca: [tls.caPem] })
  const identityHeader = randomBytes(24).toString('base64url')
  const miRequests: ManagedIdentityRequestRecord[] = []
  const app = buildServer({
    tls,
    logger: options.logger ?? false,
    directory,
    keyring,
    issuer,
    url: () => url,
    record: (entry) => { requests.push(entry) },
    assertionVerifier: new ClientAssertionVerifier({ directory, keyring, url: () => url, dispatcher: outbound }),
    failures,
    conditionalAccess,
    identityHeader,
    recordManagedIdentityRequest: (entry) => { miRequests.push(entry) },
    workloadIssuers,
    recordJwksFetch: (tenantId) => { jwksFetches.set(tenantId, (jwksFetches.get(tenantId) ?? 0) + 1) }
  })
  await app.listen({ host, port: options.port ?? 0 })
  const { port } = app.server.address() as AddressInfo
  const authorityHost = publicUrl?.host ?? `${urlHost(host)}:${port}`
  url = `https://${authorityHost}`

  return {
    url,
    host: authorityHost,
    port,
    caFile: tls.caFile,
    caPem: tls.caPem,
    seed,
    signToken: (tenantId, payload, header) => {
      const tenant = directory.tenant(tenantId)
      if (tenant === undefined) throw new Error(`no tenant '${tenantId}' in this emulator`)
      return keyring.signRaw(tenant.id, payload, header)
    },
    tokenRequests: () => requests.map((r) => ({ ...r })),
    rotateKeys: async (tenantId) => {
      const tenant = directory.tenant(tenantId)
      if (tenant === undefined) throw new Error(`no tenant '${tenantId}' in this emulator`)
      return await keyring.rotate(tenant.id)
    },
    jwksFetches: (tenantId) => jwksFetches.get(tenantId) ?? 0,
    injectFailure: (rule) => failures.add(rule),
    clearFailures: () => { failures.clear() },
    revokeSessions: (tenantId, userObjectId) => {
      const tenant = directory.tenant(tenantId)
      if (tenant === undefined) throw new Error(`no tenant '${tenantId}' in this emulator`)
      return conditionalAccess.revoke(tenant.id, userObjectId)
    },
    revocationTime: (tenantId, userObjectId) => {
      const tenant = directory.tenant(tenantId)
      return tenant === undefined ? undefined : conditionalAccess.revocationTime(tenant.id, userObjectId)
    },
    requireMfa: (policy) => conditionalAccess.addMfaPolicy(policy),
    clearMfaPolicies: () => { conditionalAccess.clearMfaPolicies() },
    mintServiceAccountToken: (request) => workloadIssuers.mint(request),
    workloadIssuerUrl: (name) => workloadIssuers.issuerUrl(name ?? workloadIssuers.names()[0] ?? ''),
    managedIdentity: { endpoint: `${url}${MANAGED_IDENTITY_PATH}`, header: identityHeader },
    managedIdentityRequests: () => miRequests.map((r) => ({ ...r })),
    close: async () => {
      await app.close()
      await outbound.close()
    }
  }
}

/** A wildcard listen address is no name a client can use; the certificate covers localhost. */
function urlHost (host: string): string {
  if (host === '0.0.0.0' || host === '::') return 'localhost'
  return host.includes(':') ? `[${host}]` : host
}
