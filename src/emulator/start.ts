import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import { prepareTls } from './ca'
import { Directory } from './directory'
import { Keyring } from './keyring'
import { defaultSeed, parseSeed, type EmulatorSeed } from './seed'
import { buildServer } from './server'
import type { TokenRequestRecord } from './token-endpoint'
import { TokenIssuer } from './tokens'

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
  close (): Promise<void>
}

export async function startEmulator (options: EmulatorOptions = {}): Promise<RunningEmulator> {
  const host = options.host ?? '127.0.0.1'
  const seed = parseSeed(options.seed ?? defaultSeed, 'the seed option')
  const directory = new Directory(seed)
  const dataDir = options.dataDir ?? await mkdtemp(join(tmpdir(), 'obo-emulator-'))
  const publicUrl = options.publicUrl === undefined ? undefined : new URL(options.publicUrl)
  const names = publicUrl === undefined ? [host] : [host, publicUrl.hostname.replace(/^\[|\]$/g, '')]
  const [tls, keyring] = await Promise.all([prepareTls(dataDir, names), Keyring.create(seed.tenants)])

  let url = ''
  const requests: TokenRequestRecord[] = []
  const jwksFetches = new Map<string, number>()
  const issuer = new TokenIssuer(keyring, { url: () => url, lifetimeSeconds: options.tokenLifetimeSeconds ?? 3600 })
  const app = buildServer({
    tls,
    logger: options.logger ?? false,
    directory,
    keyring,
    issuer,
    url: () => url,
    record: (entry) => { requests.push(entry) },
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
    close: async () => { await app.close() }
  }
}

/** A wildcard listen address is no name a client can use; the certificate covers localhost. */
function urlHost (host: string): string {
  if (host === '0.0.0.0' || host === '::') return 'localhost'
  return host.includes(':') ? `[${host}]` : host
}
