import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import { randomBytes } from 'node:crypto'
import { prepareTls } from './ca'
import { ClientAssertionVerifier } from './client-assertions'
import { ConditionalAccess } from './conditional-access'
import { createControls, type EmulatorControls } from './controls'
import { Directory } from './directory'
import { FailureInjector } from './failure-rules'
import { Keyring } from './keyring'
import { MANAGED_IDENTITY_PATH, type ManagedIdentityRequestRecord } from './managed-identity'
import { defaultSeed } from './default-seed'
import { parseSeed } from './seed'
import type { EmulatorSeed } from './seed-schema'
import { buildServer } from './server'
import { createSignInControls, type SignInControls } from './signin/controls'
import { createSignInState } from './signin/state'
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
  /**
   * Milliseconds since the epoch, for the lifetimes of sign-in state (codes 10 min, device codes
   * 15 min, spa refresh tokens 24 h); tests pass a clock they can move forward. Default Date.now.
   */
  clock?: () => number
  /** The HTTP control API under `/_emulator/` (default on); false answers 404 there. */
  controlApi?: boolean
}

/** Hosted Kubernetes-style OIDC issuers (seed `workloadIssuers`), for workload identity federation. */
export interface WorkloadControls {
  /** A service account token from a hosted issuer (default: the first one). */
  serviceAccountToken: (request: ServiceAccountTokenRequest) => string
  /** The issuer URL (`iss`) of a hosted issuer; default the first one. */
  issuerUrl: (name?: string) => string
}

/**
 * A running emulator. Besides where it is and what it trusts, the handle groups what a test can
 * change or read at run time by what it acts on (the HTTP control API under `/_emulator/` offers
 * the same): `failures`, `sessions`, `mfa`, `keys`, `records`, `workloads`.
 */
export interface RunningEmulator extends EmulatorControls, SignInControls {
  /** e.g. https://127.0.0.1:53211, no trailing slash: the authority "instance". */
  url: string
  /** '127.0.0.1:53211', what msal-node needs in knownAuthorities. */
  host: string
  /** The port it listens on (differs from the URL's behind a publicUrl). */
  port: number
  /** The CA that issued the emulator's TLS certificate (PEM file; trust it, e.g. NODE_EXTRA_CA_CERTS). */
  caFile: string
  caPem: string
  seed: EmulatorSeed
  /** Whether the HTTP control API answers under `/_emulator/`. */
  controlApi: boolean
  workloads: WorkloadControls
  /** App Service style managed identity endpoint: set IDENTITY_ENDPOINT and IDENTITY_HEADER to these. */
  managedIdentity: { endpoint: string, header: string }
  close: () => Promise<void>
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
  const miRequests: ManagedIdentityRequestRecord[] = []
  const jwksFetches = new Map<string, number>()
  const issuer = new TokenIssuer(keyring, { url: () => url, lifetimeSeconds: options.tokenLifetimeSeconds ?? 3600 })
  const failures = new FailureInjector()
  for (const rule of seed.failures ?? []) failures.add(rule)
  const conditionalAccess = new ConditionalAccess(directory)
  for (const policy of seed.mfaPolicies ?? []) conditionalAccess.addMfaPolicy(policy)
  const signIn = createSignInState(directory, conditionalAccess, options.clock ?? Date.now)
  const controls = { ...createControls({ directory, keyring, failures, conditionalAccess, tokenRequests: requests, managedIdentityRequests: miRequests, jwksFetches }), ...createSignInControls(directory, signIn) }
  // Federated credentials name issuers by URL; the emulator reaches its own hosted issuers over HTTPS too.
  const outbound = createHttpsAgent({ ca: [tls.caPem] })
  const identityHeader = randomBytes(24).toString('base64url')
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
    signIn,
    identityHeader,
    recordManagedIdentityRequest: (entry) => { miRequests.push(entry) },
    workloadIssuers,
    recordJwksFetch: (tenantId) => { jwksFetches.set(tenantId, (jwksFetches.get(tenantId) ?? 0) + 1) },
    ...(options.controlApi === false ? {} : { controlApi: { controls, directory } })
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
    controlApi: options.controlApi !== false,
    ...controls,
    workloads: {
      serviceAccountToken: (request) => workloadIssuers.mint(request),
      issuerUrl: (name) => workloadIssuers.issuerUrl(name ?? workloadIssuers.names()[0] ?? '')
    },
    managedIdentity: { endpoint: `${url}${MANAGED_IDENTITY_PATH}`, header: identityHeader },
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
